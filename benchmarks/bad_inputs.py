"""Bad inputs, side by side: what nbnumba says and what the reference nanoBragg does.

    python benchmarks/bad_inputs.py [--ref /tmp/ref/nanoBragg] [--out reports/bad_inputs.md]

Each case is one defect away from a good command (tests/test_bad_input.py's BASE): a bad flag or
value, or a damaged input file.  Both programs run as subprocesses in a fresh temporary directory.
The reference gets 20 s and a 4 GiB address-space limit (RLIMIT_AS); for it we record the exit
code, whether it wrote an image, and the last line of its output.  For nbnumba we record the
exit code, its `nbnumba:` line, and whether anything else reached stderr or the directory.
Set NB_C_BIN instead of --ref to point at the reference binary.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from test_bad_input import BASE, replace  # noqa: E402 - the catalogue's good command

from nbnumba.model.options import looks_numeric  # noqa: E402

REF_TIMEOUT_S = 20
REF_MEMORY = 4 << 30
IMAGE_NAMES = {"out.bin", "out.img", "floatimage.bin", "intimage.img", "image.pgm", "noiseimage.img", "x.bin",
               "x.img", "n.img"}


def smv(width: int = 128, height: int = 96) -> bytes:
    header = (f"{{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\nSIZE1={width};\n"
              f"SIZE2={height};\nPIXEL_SIZE=0.1;\nDISTANCE=100.0;\nWAVELENGTH=6.2;\nBEAM_CENTER_X=0.8;\n"
              "BEAM_CENTER_Y=0.8;\n}\f").encode()
    return header.ljust(512, b" ") + bytes(2 * width * height)


def fdump(h=(0, 1), k=(0, 1), l=(0, 1), data_bytes: int | None = None) -> bytes:
    header = f"{h[0]} {h[1]} {k[0]} {k[1]} {l[0]} {l[1]}\n\f".encode()
    size = 8 * (h[1] - h[0] + 2) * (k[1] - k[0] + 2) * (l[1] - l[0] + 2)
    return header + bytes(size if data_bytes is None else data_bytes)


MAT = "0.01 0 0\n0 0.01 0\n0 0 0.01\n"
NO_CELL = replace("-cell")
NO_F = replace("-default_F")


@dataclass
class Case:
    what: str
    args: list[str]
    files: dict[str, bytes | str] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    kind: str = "command line"


CASES = [
    # --- input files (the catalogue's, then more) ---
    Case("-hkl names a missing file", [*BASE, "-hkl", "nope.hkl"], kind="file"),
    Case("-mat names a directory", [*NO_CELL, "-mat", "A.mat"], dirs=["A.mat"], kind="file"),
    Case("-mat file is binary junk", [*NO_CELL, "-mat", "A.mat"], {"A.mat": bytes(range(256)) * 4}, kind="file"),
    Case("-mat names a missing file", [*NO_CELL, "-mat", "nope.mat"], kind="file"),
    Case("HKL file: a word where F should be", [*BASE, "-hkl", "bad.hkl"],
         {"bad.hkl": "0 0 0 10\n1 0 0 x\n2 0 0 5\n"}, kind="file"),
    Case("matrix file with 8 numbers", [*NO_CELL, "-mat", "short.mat"], {"short.mat": "0.01 0 0\n0 0.01 0\n0 0\n"},
         kind="file"),
    Case("matrix file empty", [*NO_CELL, "-mat", "short.mat"], {"short.mat": ""}, kind="file"),
    Case("matrix of zeros", [*NO_CELL, "-mat", "zero.mat"], {"zero.mat": "0 0 0\n0 0 0\n0 0 0\n"}, kind="file"),
    Case("matrix with a 1e300 element", [*NO_CELL, "-mat", "big.mat"], {"big.mat": "1e300 0 0\n0 0.01 0\n0 0 0.01\n"},
         kind="file"),
    Case("-img SMV truncated to 1000 bytes", [*BASE, "-img", "trunc.img"], {"trunc.img": smv()[:1000]}, kind="file"),
    Case("-img SMV shorter than its header", [*BASE, "-img", "tiny.img"], {"tiny.img": "{\nHEADER_BYTES=512;\n"},
         kind="file"),
    Case("-img file is not SMV (binary junk)", [*BASE, "-img", "junk.img"], {"junk.img": bytes(range(256)) * 8},
         kind="file"),
    Case("-img SMV header claims SIZE1=1e9", [*BASE, "-img", "huge.img"],
         {"huge.img": smv().replace(b"SIZE1=128;", b"SIZE1=1e9;")}, kind="file"),
    Case("-mask of the wrong size (128x96 for 16x16)", [*BASE, "-mask", "mask.img"], {"mask.img": smv()}, kind="file"),
    Case("-sourcefile names a missing file", [*BASE, "-sourcefile", "nope.txt"], kind="file"),
    Case("-sourcefile empty", [*BASE, "-sourcefile", "src.txt"], {"src.txt": ""}, kind="file"),
    Case("HKL file empty", [*BASE, "-hkl", "empty.hkl"], {"empty.hkl": ""}, kind="file"),
    Case("HKL file: incomplete last record", [*BASE, "-hkl", "cut.hkl"], {"cut.hkl": "0 0 0 10\n1 0 0\n"}, kind="file"),
    Case("HKL file: F is nan", [*BASE, "-hkl", "nan.hkl"], {"nan.hkl": "0 0 0 10\n1 0 0 nan\n"}, kind="file"),
    Case("HKL file: index 1e10", [*BASE, "-hkl", "big.hkl"], {"big.hkl": "0 0 0 10\n1e10 0 0 5\n"}, kind="file"),
    Case("HKL file is binary junk", [*BASE, "-hkl", "junk.hkl"], {"junk.hkl": bytes(range(256)) * 4}, kind="file"),
    Case("Fdump.bin truncated (no -hkl, no -default_F)", NO_F, {"Fdump.bin": fdump(data_bytes=20)}, kind="file"),
    Case("Fdump.bin with a text header only", NO_F, {"Fdump.bin": "0 1 0 1 0 1\n"}, kind="file"),
    Case("-stol names a missing file", [*BASE, "-stol", "nope.stol"], kind="file"),
    # --- the command line ---
    Case("unknown flag -lamda", [*BASE, "-lamda", "1"]),
    Case("stray argument", [*BASE, "stray"]),
    Case("-distance without a value, at the end", [*replace("-distance"), "-distance"]),
    Case("-cell with 2 of 6 values", replace("-cell", "100", "100")),
    Case("-distance abc", replace("-distance", "abc")),
    Case("-pixel nan", replace("-pixel", "nan")),
    Case("-lambda inf", replace("-lambda", "inf")),
    Case("-distance -inf", replace("-distance", "-inf")),
    Case("-N 2.5", replace("-N", "2.5")),
    Case("-pixel -0.1", replace("-pixel", "-0.1")),
    Case("-pixel 0", replace("-pixel", "0")),
    Case("-lambda 0", replace("-lambda", "0")),
    Case("-lambda -1", replace("-lambda", "-1")),
    Case("-N -1", replace("-N", "-1")),
    Case("-distance 0", replace("-distance", "0")),
    Case("-energy 0", [*replace("-lambda"), "-energy", "0"]),
    Case("-detpixels 0", replace("-detpixels", "0")),
    Case("flat cell (gamma 180)", replace("-cell", *"100 100 100 90 90 180".split())),
    Case("coplanar cell (60 60 120)", replace("-cell", *"100 100 100 60 60 120".split())),
    Case("impossible cell angles", replace("-cell", *"100 100 100 0.001 0.001 179.99".split())),
    Case("cell edge 0", replace("-cell", *"0 100 100 90 90 90".split())),
    Case("no crystal (no -cell, no -mat)", NO_CELL),
    Case("no structure factors", NO_F),
    Case("-detpixels 2000000", [*replace("-detpixels"), "-detpixels", "2000000"]),
    Case("-detpixels_x 2000000000", [*replace("-detpixels"), "-detpixels_x", "2000000000", "-detpixels_y", "16"]),
    Case("-precision triple", [*BASE, "-precision", "triple"]),
    Case("-device tpu", [*BASE, "-device", "tpu"]),
    Case("-pivot middle", [*BASE, "-pivot", "middle"]),
    Case("-nthreads 100000", [*BASE, "-nthreads", "100000"]),
    Case("-oversample 1000", [*BASE, "-oversample", "1000"]),
    Case("-misset with 2 of 3 angles", [*BASE, "-misset", "10", "20"]),
    Case("-roi with 3 of 4 values", [*BASE, "-roi", "0", "8", "0"]),
    # found by the fuzzer (each was an internal error before)
    Case("-mosaic_seed 1e300", [*BASE, "-mosaic_seed", "1e300"]),
    Case("-roi 0 1e20 0 8", [*BASE, "-roi", "0", "1e20", "0", "8"]),
    Case("-cell 1e300 1 1 90 90 90", replace("-cell", *"1e300 1 1 90 90 90".split())),
    Case("-samplesize 1e308", [*BASE, "-samplesize", "1e308"]),
    Case("-distance 1e-320", replace("-distance", "1e-320")),
    Case("-detector_abs 1e-320", [*BASE, "-detector_abs", "1e-320"]),
    Case("unknown flag with a newline in it", [*BASE, "-a\nb"]),
    # --- outputs ---
    Case("-floatfile in a missing directory", replace("-floatfile", "nodir/x.bin"), kind="output"),
    Case("-floatfile names a directory", replace("-floatfile", "taken"), dirs=["taken"], kind="output"),
    Case("-intfile in a missing directory", replace("-intfile", "nodir/x.img"), kind="output"),
    Case("-noisefile in a missing directory", [a for a in BASE if a != "-nonoise"] + ["-noisefile", "nodir/n.img"],
         kind="output"),
]


def prepare(directory: Path, case: Case) -> None:
    for name in case.dirs:
        (directory / name).mkdir()
    for name, content in case.files.items():
        path = directory / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _limit_reference() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (REF_MEMORY, REF_MEMORY))
    os.setsid()  # its own process group, so a timeout can kill all of it


def _new_images(directory: Path, before: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in before and p.name in IMAGE_NAMES)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def run_reference(binary: str, case: Case) -> dict:
    with tempfile.TemporaryDirectory() as name:
        cwd = Path(name)
        prepare(cwd, case)
        before = {p.name for p in cwd.iterdir()}
        start = time.perf_counter()
        proc = subprocess.Popen([binary, *case.args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=_limit_reference)
        try:
            out, _ = proc.communicate(timeout=REF_TIMEOUT_S)
            code = proc.returncode
            ran_away = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            code, ran_away = None, True
        seconds = time.perf_counter() - start
        text = out.decode(errors="replace")
        if ran_away:
            last = f"ran away (killed at the {REF_TIMEOUT_S} s limit)"
        elif code is not None and code < 0:
            last = f"killed by {signal.Signals(-code).name}; last output: {_last_line(text)}"
        else:
            last = _last_line(text)
        return dict(code=code, images=_new_images(cwd, before), last=last, seconds=seconds)


def run_nbnumba(case: Case) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    with tempfile.TemporaryDirectory() as name:
        cwd = Path(name)
        prepare(cwd, case)
        before = sorted(p.name for p in cwd.iterdir())
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "nbnumba", "run", *case.args], cwd=cwd, env=env,
                              capture_output=True, timeout=300)
        seconds = time.perf_counter() - start
        err = proc.stderr.decode(errors="replace")
        lines = [ln for ln in err.splitlines() if ln.strip()]
        message = next((ln for ln in lines if ln.startswith("nbnumba:")), _last_line(err))
        after = sorted(p.name for p in cwd.iterdir())
        return dict(code=proc.returncode, message=message, other_stderr=len(lines) - (message in lines),
                    traceback="Traceback" in err, left=sorted(set(after) - set(before)), seconds=seconds,
                    stdout_lines=len(proc.stdout.splitlines()))


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", "\\n")


def _groups(args: list[str]) -> list[tuple[str, ...]]:
    """Flags with their values (a token that starts with '-' and is not a number starts a group)."""
    groups: list[list[str]] = []
    for token in args:
        if not groups or (token.startswith("-") and not looks_numeric(token)):
            groups.append([token])
        else:
            groups[-1].append(token)
    return [tuple(g) for g in groups]


def shown_args(case: Case) -> str:
    """How the command line differs from BASE: flags added or changed, flags removed."""
    base, mine = _groups(BASE), _groups(case.args)
    added = [" ".join(repr(t) if ("\n" in t or not t) else t for t in g) for g in mine if g not in base]
    flags = {g[0] for g in mine}
    removed = [g[0] for g in base if g[0] not in flags]
    return "; ".join(added + [f"without {f}" for f in removed])


def report(rows: list[tuple[Case, dict, dict | None]], binary: str, total: float) -> str:
    ok = [r for r in rows if r[1]["code"] in (1, 2) and not r[1]["traceback"] and not r[1]["left"]
          and r[1]["message"].startswith("nbnumba: error:")]
    clean_stderr = [r for r in rows if r[1]["other_stderr"] == 0]
    lines = [
        "# Bad inputs: nbnumba and the reference",
        "",
        "Written by `benchmarks/bad_inputs.py`. Each case is one defect away from the good command of",
        "`tests/test_bad_input.py`:",
        "",
        "```",
        "nbnumba run " + " ".join(BASE),
        "```",
        "",
        f"Both programs ran in a fresh temporary directory. The reference (`{binary}`) had {REF_TIMEOUT_S} s and a",
        f"{REF_MEMORY >> 30} GiB address-space limit (`RLIMIT_AS`). Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; {total:.0f} s in all.",
        "",
        "## Summary",
        "",
        f"- {len(rows)} bad inputs. nbnumba refused {len(ok)} of them cleanly: exit 1 or 2, one",
        "  `nbnumba: error:` line, no traceback, nothing left in the directory. In "
        f"{len(clean_stderr)} cases that line was all of stderr.",
    ]
    not_ok = [r for r in rows if r not in ok]
    for case, nb, _ in not_ok:
        lines.append(f"  - not clean: {cell(case.what)}: exit {nb['code']}, `{cell(nb['message'])}`")
    if rows[0][2] is not None:
        ref = [r[2] for r in rows]
        accepted = sum(1 for r in ref if r["code"] == 0 and r["images"])
        zero_no_image = sum(1 for r in ref if r["code"] == 0 and not r["images"])
        failed = sum(1 for r in ref if r["code"] not in (0, None) and (r["code"] > 0))
        crashed = sum(1 for r in ref if r["code"] is not None and r["code"] < 0)
        away = sum(1 for r in ref if r["code"] is None)
        lines += [
            f"- The reference exited 0 and wrote an image in {accepted} cases (it used the bad value or",
            f"  ignored it), exited 0 without an image in {zero_no_image}, exited non-zero in {failed}, was killed by",
            f"  a signal (crash or memory) in {crashed} and ran away (killed at the {REF_TIMEOUT_S} s limit) "
            f"in {away}.",
        ]
    lines += [
        "",
        "## Cases",
        "",
        "| # | kind | defect | arguments beyond BASE | nbnumba exit | nbnumba message | reference exit "
        "| reference image | reference's last line |",
        "| ---: | --- | --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for i, (case, nb, ref) in enumerate(rows, 1):
        extra = f" (+{nb['other_stderr']} other stderr lines)" if nb["other_stderr"] else ""
        if nb["left"]:
            extra += f" (left {', '.join(nb['left'])})"
        if ref is None:
            rcode, rimg, rlast = "-", "-", "not run"
        else:
            rcode = "timeout" if ref["code"] is None else str(ref["code"])
            rimg = ", ".join(ref["images"]) or "no"
            rlast = ref["last"][:140]
        lines.append(f"| {i} | {case.kind} | {cell(case.what)} | `{cell(shown_args(case))[:80]}` | {nb['code']} | "
                     f"{cell(nb['message'])[:200]}{cell(extra)} | {rcode} | {rimg} | {cell(rlast)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default=os.environ.get("NB_C_BIN", "/tmp/ref/nanoBragg"))
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bad_inputs.md")
    args = parser.parse_args()
    have_ref = os.access(args.ref, os.X_OK)
    if not have_ref:
        print(f"no reference binary at {args.ref}: its columns stay empty", file=sys.stderr)
    start = time.perf_counter()
    rows = []
    for i, case in enumerate(CASES, 1):
        nb = run_nbnumba(case)
        ref = run_reference(args.ref, case) if have_ref else None
        print(f"{i:3d} {case.what[:45]:45s} nbnumba {nb['code']}  reference "
              f"{'-' if ref is None else ref['code']}", flush=True)
        rows.append((case, nb, ref))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(rows, args.ref, time.perf_counter() - start))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

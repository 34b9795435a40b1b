"""A fingerprint of the compiled code: the CPU assembly of every kernel a set of runs compiles, and
the PTX of the GPU kernels, written one file per kernel and signature, so that a change meant to
leave the compiled code alone (moving modules, renaming) can be checked with `diff -r`.

    python benchmarks/compiled_code.py OUTDIR [--no-ptx]
    diff -r BEFORE AFTER

Symbol names carry the module path of each function (Numba's mangling), so they are replaced by
one placeholder, and the source-location comments are dropped: what is compared is the
instruction stream.  Everything is compiled afresh (a temporary cache).  The PTX needs the `nbnumba[cuda]` extra (no GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# feature mixes that compile every CPU kernel variant the golden set uses
CASES = ["supervisor_roi", "comprehensive", "curved_det", "oversample_3_flags", "hkl_interpolate", "xtal_round",
         "xtal_gauss", "xtal_tophat", "sourcefile"]
SYMBOL = re.compile(r"(_ZN|\$)[\w$.@]+|\b__main__\w*|\bnbnumba[\w.]*")


def normalize(text: str) -> str:
    """The instruction stream: no comments, source locations, symbol names, or the constants that
    spell a module's path (error messages and pickled exceptions, and their lengths)."""
    lines = []
    in_pickle = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith(":"):
            in_pickle = "pickle" in stripped
        if (stripped.startswith(("#", ".file", ".loc", "//", ".ident")) or not stripped or "pickle" in stripped
                or in_pickle or (stripped.startswith(".size") and ".const." in stripped)):
            continue
        lines.append(SYMBOL.sub("SYM", line.split("#")[0].rstrip()))
    return "\n".join(lines) + "\n"


def cpu_dispatchers():
    import numba

    seen = {}
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("nbnumba"):
            continue
        for value in vars(module).values():
            if isinstance(value, numba.core.registry.CPUDispatcher) and value.__module__.startswith("nbnumba"):
                seen[value.py_func.__qualname__ + "@" + value.py_func.__code__.co_filename.split("nbnumba/")[-1]
                     .replace("/", ".").removesuffix(".py").rsplit(".", 1)[-1]] = value
    return seen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--no-ptx", action="store_true", help="CPU assembly only")
    opts = parser.parse_args(argv)
    # a cached kernel has no assembly to show: compile everything afresh
    os.environ["NBNUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="nbnumba-cc-")
    import contextlib

    import golden

    from nbnumba import api

    out = opts.outdir
    (out / "cpu").mkdir(parents=True, exist_ok=True)
    for case in CASES:
        args = golden.CASES[case]["args"]
        with contextlib.chdir(golden.GOLDEN):
            sim = api.simulation(list(args))
        for precision in ("double", "single"):
            api.render(sim, precision=precision)
    golden.invoke_line(["trace", "--pixel", "0", "0", *golden.CASES["simple_cubic"]["args"]], golden.GOLDEN)
    suite = golden.GOLDEN.parent / "suite"
    cases = json.loads((suite / "manifest.json").read_text())["cases"]
    scratch = Path(tempfile.mkdtemp(prefix="nbnumba-cc-run-"))
    (scratch / "inputs").symlink_to(suite / "inputs")
    for case in ("nonbragg/water_basic", "nonbragg/water_oversample", "noisify/psf_gauss", "noisify/psf_fiber"):
        program = case.split("/")[0]
        extra = ["-floatfile", "float.bin"] if program == "nonbragg" else []
        golden.invoke_line([program, *cases[case]["args"], *extra, "-intfile", "int.img", "-noisefile", "noise.img"],
                           scratch)
    for key, dispatcher in sorted(cpu_dispatchers().items()):
        for i, sig in enumerate(sorted(dispatcher.signatures, key=str)):
            (out / "cpu" / f"{key}-{i}.s").write_text(normalize(dispatcher.inspect_asm(sig)))
    if not opts.no_ptx:
        import gpu_static

        ptx_dir = out / "ptx_raw"
        for case in ["supervisor_roi", "comprehensive", "curved_det", "xtal_round"]:
            gpu_static.measure(gpu_static.golden_args(case), "sm_90", ptx_dir / case, cwd=golden.GOLDEN)
        for path in sorted(ptx_dir.rglob("*.ptx")):
            target = out / "ptx" / path.relative_to(ptx_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(normalize(path.read_text()))
    print(f"wrote {out}: {len(list((out / 'cpu').iterdir()))} CPU kernels")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""End-to-end CPU benchmark of nbnumba against the reference nanoBragg.

Every measurement is a separate subprocess (`nbnumba run ...`, or the reference binary), so the
times are wall-clock times a user sees: interpreter start-up, imports, JIT compile or cache load,
rendering and writing the images.

    python benchmarks/cpu_bench.py                       # everything, writes reports/cpu_benchmark.*
    NB_C_BIN=/path/to/nanoBragg python benchmarks/cpu_bench.py
    python benchmarks/cpu_bench.py --quick --workloads tiny64,heavy --out /tmp/bench

Environment:
    NB_C_BIN    the reference nanoBragg binary (optional: without it reference columns are "n/a")
    NB_GOLDEN   the golden corpus (default: <repo>/tests/data/golden), for the supervisor inputs

Measured per workload, precision and thread count:
    first   one run with NBNUMBA_CACHE_DIR pointing at a new empty folder (JIT compile included)
    warm    the median of --repeat runs with that same cache folder
    compile first - warm
    peak    the child's maximum resident set size (/usr/bin/time -f %M; n/a without it)
    corr    Pearson correlation of nbnumba's float image with the reference's
    render  (thread scaling) the median time of the render alone, in a process that has already
            rendered once: `nbnumba.api.render` at 1 and at all threads, so the fixed start-up
            (interpreter, imports, cache load, writing files), which no thread can share, is left out
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from nbnumba.runtime.jitcache import source_hash

REPO = Path(__file__).resolve().parents[1]
OUTPUT_ARGS = ["-floatfile", "out.bin", "-intfile", "out.img", "-nonoise", "-nopgm", "-noprogress"]
PRECISIONS = ("double", "single")
TRACE_PIXEL = (1039, 685)
RUN_TIMEOUT_S = 3600

TARGETS = {
    "supervisor_double_ratio": 0.5,
    "supervisor_double_corr": 0.999999,
    "supervisor_single_ratio": 0.25,
    "supervisor_single_corr": 0.9999,
    "first_run_s": 20.0,
    "tiny64_warm_s": 1.0,
    "supervisor_peak_mib": 400.0,
    "two_thread_speedup": 1.7,
}


# --------------------------------------------------------------------------------------------
# workloads

def golden_dir() -> Path:
    return Path(os.environ.get("NB_GOLDEN") or (REPO / "tests" / "data" / "golden")).resolve()


def strip_roi(args: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(args):
        if args[i] == "-roi":
            i += 5
            continue
        out.append(args[i])
        i += 1
    return out


def supervisor_args(keep_roi: bool = False) -> list[str]:
    manifest = json.loads((golden_dir() / "cases" / "manifest.json").read_text())
    args = list(manifest["cases"]["supervisor_roi"]["args"])
    return args if keep_roi else strip_roi(args)


def workloads(keep_roi: bool) -> dict[str, dict]:
    cubic = "-cell 100 100 100 90 90 90 -default_F 100 -lambda 6.2 -N 5 -distance 100 -pixel 0.1"
    return {
        "supervisor": {
            "title": "supervisor command (golden supervisor_roi" + (", WITH its -roi: smoke test" if keep_roi
                                                                     else " without -roi") + ")",
            "args": lambda: supervisor_args(keep_roi),
            "needs_inputs": True,
        },
        "cubic1024": {
            "title": "1024x1024 cubic crystal",
            "args": lambda: (cubic + " -detpixels 1024").split(),
            "needs_inputs": False,
        },
        "heavy": {
            "title": "heavy case (triclinic, oversample 2, 5 mosaic domains, 4 phi steps)",
            "args": lambda: ("-cell 70 80 90 75 85 95 -default_F 100 -N 8 -lambda 1 -distance 100 "
                             "-detpixels 512 -pixel 0.1 -oversample 2 -mosaic 0.5 -mosaic_dom 5 "
                             "-phi 0 -osc 1 -phisteps 4 -misset 10 20 30").split(),
            "needs_inputs": False,
        },
        "tiny64": {
            "title": "64x64 image (start-up cost)",
            "args": lambda: (cubic + " -detpixels 64").split(),
            "needs_inputs": False,
        },
    }


# --------------------------------------------------------------------------------------------
# running one child and measuring it

def _peak_method() -> str | None:
    """The child's peak resident memory comes from /usr/bin/time: the rusage this process could
    read itself starts from its own (a child's peak includes the memory of the process it was
    forked or spawned from, here the benchmark with its images)."""
    try:
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "true"], capture_output=True, text=True)
    except OSError:
        return None
    lines = done.stderr.strip().splitlines()
    return "/usr/bin/time" if done.returncode == 0 and lines and lines[-1].isdigit() else None


PEAK_METHOD = _peak_method()


def run_child(cmd: list[str], cwd: Path, env: dict) -> dict:
    """Run cmd to completion; return wall seconds, peak RSS (MiB), exit status and an error tail.

    The wait blocks in wait4 (a timer kills a child past RUN_TIMEOUT_S): subprocess's own wait
    with a timeout polls, sleeping up to 50 ms between looks, which rounded a 0.4 s run up by as
    much."""
    out_path, err_path = cwd / "stdout.txt", cwd / "stderr.txt"
    mem_file = cwd / "peak_kib.txt"
    if PEAK_METHOD:
        cmd = ["/usr/bin/time", "-f", "%M", "-o", str(mem_file), *cmd]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        timer = threading.Timer(RUN_TIMEOUT_S, proc.kill)
        timer.start()
        _, status, _ = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        timed_out = not timer.is_alive()
        timer.cancel()
    rc = 124 if timed_out else os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    peak_kib = None
    try:
        lines = mem_file.read_text().split() if PEAK_METHOD else []
        peak_kib = int(lines[-1]) if lines and lines[-1].isdigit() else None
    except OSError:
        pass
    result = {"wall_s": wall, "peak_mib": None if peak_kib is None else peak_kib / 1024.0, "rc": rc,
              "load1_after": os.getloadavg()[0]}
    if rc != 0:
        err_text = err_path.read_text(errors="replace").strip()
        out_text = out_path.read_text(errors="replace").strip()
        result["error"] = (err_text[-600:] if err_text else "") or ("stdout: " + out_text[-300:])
    return result


def read_float_image(path: Path) -> np.ndarray | None:
    try:
        return np.fromfile(path, dtype="<f4")
    except OSError:
        return None


def correlation(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None or a.size != b.size or a.size == 0:
        return None
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if not (np.isfinite(a64).all() and np.isfinite(b64).all()):
        return float("nan")
    if a64.std() == 0 or b64.std() == 0:
        return 1.0 if np.array_equal(a64, b64) else float("nan")
    return float(np.corrcoef(a64, b64)[0, 1])


def nbnumba_cmd() -> list[str]:
    beside = Path(sys.executable).parent / "nbnumba"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("nbnumba")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from nbnumba.cli import main; sys.argv[0]='nbnumba'; main()"]


def tree_hash(package: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


RENDER_CHILD = """
import json, statistics, sys
from nbnumba import api
argv, precision, repeat = json.loads(sys.argv[1])
sim = api.simulation(argv)
api.render(sim, precision=precision)  # loads (or compiles) the kernels
times = [api.render(sim, precision=precision).seconds for _ in range(repeat)]
print(json.dumps({"render_s": statistics.median(times), "pixels": int(sim.shape[0] * sim.shape[1])}))
"""


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.scratch = Path(tempfile.mkdtemp(prefix="nbnumba_bench_"))
        self.nb = nbnumba_cmd()
        self.package = REPO / "nbnumba"
        self.pythonpath = None
        if opts.snapshot:
            # a frozen copy of the package, imported first through PYTHONPATH, so edits made to the
            # work tree while the benchmark runs neither change what is measured nor force recompiles
            snap = self.scratch / "snapshot"
            shutil.copytree(REPO / "nbnumba", snap / "nbnumba",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            self.package = snap / "nbnumba"
            self.pythonpath = str(snap)
        self.ref = os.environ.get("NB_C_BIN") or None
        if self.ref and not os.access(self.ref, os.X_OK):
            print(f"warning: NB_C_BIN={self.ref} is not executable; reference columns will be n/a",
                  file=sys.stderr)
            self.ref = None
        self.golden = golden_dir()
        self._counter = 0

    def workdir(self, needs_inputs: bool) -> Path:
        self._counter += 1
        d = self.scratch / f"run{self._counter:03d}"
        d.mkdir()
        if needs_inputs:
            (d / "inputs").symlink_to(self.golden / "inputs", target_is_directory=True)
        return d

    def env(self, threads: int, cache: Path | None) -> dict:
        env = dict(os.environ)
        env.pop("NBNUMBA_DEBUG", None)
        # an installed package's modules are compiled to bytecode once; a PYTHONDONTWRITEBYTECODE
        # inherited from a sandbox would make every run compile nbnumba's sources again (~0.1 s)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(self.scratch / "pycache")
        env["NUMBA_NUM_THREADS"] = str(threads)
        env["OMP_NUM_THREADS"] = str(threads)
        if cache is not None:
            env["NBNUMBA_CACHE_DIR"] = str(cache)
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join([self.pythonpath] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                                                                     else []))
        return env

    def imported_from(self) -> str:
        """Where a child imports nbnumba from (checks the snapshot is the one used)."""
        r = subprocess.run([sys.executable, "-c", "import nbnumba; print(nbnumba.__file__)"],
                           cwd=self.scratch, env=self.env(1, None), capture_output=True, text=True)
        return r.stdout.strip() or r.stderr.strip()[-300:]

    @staticmethod
    def recompiled(cache: Path) -> bool:
        """More than one source-hash folder in a cache: the compiled sources changed during the runs.
        (The cache also holds other folders, such as the parsed tables'.)"""
        return sum(1 for p in cache.iterdir() if p.is_dir() and re.fullmatch(r"[0-9a-f]{16}", p.name)) > 1

    def log(self, msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {msg}", flush=True)

    def first_and_warm(self, cmd: list[str], d: Path, env: dict, repeat: int, label: str):
        """A first run (on the fresh cache `env` names), then `repeat` warm ones: (first, warm, ok)."""
        first = run_child(cmd, d, env)
        self.log(f"  {label} first {first['wall_s']:.2f} s rc={first['rc']}")
        warm = []
        for _ in range(repeat):
            warm.append(run_child(cmd, d, env))
            self.log(f"  {label} warm  {warm[-1]['wall_s']:.2f} s rc={warm[-1]['rc']}")
        return first, warm, first["rc"] == 0 and all(r["rc"] == 0 for r in warm)

    # ---- one configuration of nbnumba: a fresh-cache first run, then warm runs --------------
    def nbnumba_config(self, wl: dict, prec: str, threads: int, repeat: int) -> dict:
        args = wl["args"]() + OUTPUT_ARGS + ["-precision", prec, "-nthreads", str(threads)]
        cache = Path(tempfile.mkdtemp(prefix="cache_", dir=self.scratch))
        env = self.env(threads, cache)
        d = self.workdir(wl["needs_inputs"])
        first, warm, ok = self.first_and_warm(self.nb + ["run"] + args, d, env, repeat,
                                              f"nbnumba {prec:6s} {threads}T")
        if self.recompiled(cache):
            self.log("  WARNING: nbnumba's compiled sources changed during these runs (a second cache folder)")
        image = read_float_image(d / "out.bin") if ok else None
        warm_s = statistics.median(r["wall_s"] for r in warm) if ok and warm else None
        peaks = [r["peak_mib"] for r in [first] + warm if r["peak_mib"] is not None]
        return {
            "impl": "nbnumba", "precision": prec, "threads": threads, "ok": ok,
            "first_s": first["wall_s"] if first["rc"] == 0 else None,
            "warm_s": warm_s,
            "compile_s": (first["wall_s"] - warm_s) if ok and warm_s is not None else None,
            "peak_mib": max(peaks) if peaks else None,
            "peak_warm_mib": max((r["peak_mib"] for r in warm if r["peak_mib"] is not None), default=None),
            "runs": {"first": first, "warm": warm},
            "cache_dir": str(cache), "workdir": str(d),
            "sources_changed_during_runs": self.recompiled(cache),
            "_image": image,
        }

    def render_time(self, wl: dict, prec: str, threads: int, repeat: int, cache: str) -> dict:
        """The render alone, warm, in one process (see the module docstring)."""
        d = self.workdir(wl["needs_inputs"])
        payload = json.dumps([wl["args"](), prec, repeat])
        r = subprocess.run([sys.executable, "-c", RENDER_CHILD, payload], cwd=d, capture_output=True, text=True,
                           env=self.env(threads, Path(cache)), timeout=RUN_TIMEOUT_S)
        if r.returncode != 0:
            self.log(f"  render {prec} {threads}T failed: {r.stderr.strip()[-300:]}")
            return {"render_s": None, "pixels": None}
        out = json.loads(r.stdout.strip().splitlines()[-1])
        self.log(f"  render {prec:6s} {threads}T {out['render_s']:.3f} s")
        return out

    def reference_config(self, wl: dict, threads: int, repeat: int) -> dict:
        args = wl["args"]() + OUTPUT_ARGS
        d = self.workdir(wl["needs_inputs"])
        runs = []
        for _ in range(repeat):
            r = run_child([self.ref] + args, d, self.env(threads, None))
            runs.append(r)
            self.log(f"  reference      {threads}T       {r['wall_s']:.2f} s rc={r['rc']}")
        ok = all(r["rc"] == 0 for r in runs)
        peaks = [r["peak_mib"] for r in runs if r["peak_mib"] is not None]
        return {
            "impl": "reference", "threads": threads, "ok": ok,
            "wall_s": statistics.median(r["wall_s"] for r in runs) if ok else None,
            "peak_mib": max(peaks) if peaks else None,
            "runs": runs, "workdir": str(d),
            "_image": read_float_image(d / "out.bin") if ok else None,
        }

    def trace(self, threads: int, repeat: int, keep_roi: bool) -> dict:
        cache = Path(tempfile.mkdtemp(prefix="cache_trace_", dir=self.scratch))
        env = self.env(threads, cache)
        d = self.workdir(True)
        cmd = self.nb + ["trace", "--pixel", str(TRACE_PIXEL[0]), str(TRACE_PIXEL[1])] + supervisor_args(keep_roi)
        first, warm, ok = self.first_and_warm(cmd, d, env, repeat, "trace")
        lines = (d / "stdout.txt").read_text(errors="replace").splitlines() if ok else []
        return {
            "ok": ok, "threads": threads, "pixel_slow_fast": list(TRACE_PIXEL),
            "first_s": first["wall_s"],
            "warm_s": statistics.median(r["wall_s"] for r in warm) if ok and warm else None,
            "peak_mib": max((r["peak_mib"] for r in [first] + warm if r["peak_mib"] is not None), default=None),
            "trace_lines": len(lines),
            "wrote_image": (d / "out.bin").exists() or any(p.suffix in (".bin", ".img") and p.name != "Fdump.bin"
                                                          for p in d.iterdir()),
            "runs": {"first": first, "warm": warm},
            "sources_changed_during_runs": self.recompiled(cache),
        }


# --------------------------------------------------------------------------------------------
# machine description

def machine_info() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
    except (OSError, ValueError):
        nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_total = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    def git(*args):
        try:
            r = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
            return r.stdout.strip() if r.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {
        "nproc": nproc, "cpu_model": model, "mem_total_gib": mem_total,
        "python": platform.python_version(), "numba": version("numba"), "numpy": version("numpy"),
        "nbnumba": version("nbnumba"), "platform": platform.platform(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_modified_tracked_files": None if dirty is None else len([x for x in dirty.splitlines() if x.strip()]),
        "peak_memory_method": PEAK_METHOD,
    }


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# report

def fmt(x, spec=".2f", na="n/a"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return na
    return format(x, spec)


def fmt_corr(c):
    if c is None:
        return "n/a"
    if isinstance(c, float) and math.isnan(c):
        return "nan"
    return f"{c:.9f}"


def verdict(ok):
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def find(results, workload, prec, threads):
    for r in results["workloads"].get(workload, {}).get("nbnumba", []):
        if r["precision"] == prec and r["threads"] == threads:
            return r
    return None


def find_ref(results, workload, threads):
    for r in results["workloads"].get(workload, {}).get("reference", []):
        if r["threads"] == threads:
            return r
    return None


def acceptance(results) -> list[dict]:
    """Each target: its value, the limit and PASS/FAIL/n-a, computed from the results."""
    n_all = results["threads_all"]
    rows = []

    for prec, rkey, ckey in (("double", "supervisor_double_ratio", "supervisor_double_corr"),
                             ("single", "supervisor_single_ratio", "supervisor_single_corr")):
        nb = find(results, "supervisor", prec, n_all)
        ratio = nb.get("ratio") if nb else None
        corr = nb.get("corr") if nb else None
        ref = find_ref(results, "supervisor", n_all)
        rows.append({
            "target": f"supervisor {prec} warm wall <= {TARGETS[rkey]} x reference ({n_all} threads)",
            "value": (f"nbnumba {fmt(nb and nb['warm_s'])} s, reference {fmt(ref and ref['wall_s'])} s, "
                      f"ratio {fmt(ratio, '.3f')}"),
            "ok": None if ratio is None else ratio <= TARGETS[rkey],
        })
        rows.append({
            "target": f"supervisor {prec} correlation with reference >= {TARGETS[ckey]}",
            "value": f"corr {fmt_corr(corr)}",
            "ok": None if corr is None else (not math.isnan(corr) and corr >= TARGETS[ckey]),
        })

    firsts = [(r["first_s"], f"{w} {r['precision']} {r['threads']}T")
              for w, d in results["workloads"].items() for r in d.get("nbnumba", [])]
    known = [f for f in firsts if f[0] is not None]
    worst = max(known, key=lambda f: f[0]) if known else None
    tiny_first = [r["first_s"] for r in results["workloads"].get("tiny64", {}).get("nbnumba", [])
                  if r["first_s"] is not None]
    rows.append({
        "target": f"first run on a fresh cache (compile included) <= {TARGETS['first_run_s']:.0f} s (every run)",
        "value": (f"worst {fmt(worst[0])} s ({worst[1]})" if worst else "n/a")
                 + (f"; 64x64 first runs {', '.join(fmt(t) for t in tiny_first)} s" if tiny_first else "")
                 + (f"; {len(firsts) - len(known)} first runs failed" if len(known) < len(firsts) else ""),
        "ok": None if not firsts else (len(known) == len(firsts) and worst[0] <= TARGETS["first_run_s"]),
    })

    tiny = [r for r in results["workloads"].get("tiny64", {}).get("nbnumba", []) if r["threads"] == n_all]
    tiny_vals = [(r["warm_s"], r["precision"]) for r in tiny]
    rows.append({
        "target": f"warm 64x64 run <= {TARGETS['tiny64_warm_s']:.0f} s ({n_all} threads, both precisions)",
        "value": ", ".join(f"{p} {fmt(v)} s" for v, p in tiny_vals) or "n/a",
        "ok": None if not tiny_vals else all(v is not None and v <= TARGETS["tiny64_warm_s"] for v, _ in tiny_vals),
    })

    sup = results["workloads"].get("supervisor", {}).get("nbnumba", [])
    peaks = [(r["peak_mib"], f"{r['precision']} {r['threads']}T") for r in sup if r["peak_mib"] is not None]
    worst_peak = max(peaks, key=lambda p: p[0]) if peaks else None
    warm_peaks = [r["peak_warm_mib"] for r in sup if r.get("peak_warm_mib") is not None]
    rows.append({
        "target": f"supervisor peak memory <= {TARGETS['supervisor_peak_mib']:.0f} MiB (every supervisor run, "
                  "compiling first runs included)",
        "value": (f"max {fmt(worst_peak[0], '.0f')} MiB ({worst_peak[1]})" if worst_peak else "n/a")
                 + (f"; warm runs only: max {max(warm_peaks):.0f} MiB" if warm_peaks else ""),
        "ok": None if not worst_peak else worst_peak[0] <= TARGETS["supervisor_peak_mib"],
    })

    rs = results.get("render_scaling", {})
    vals = [(f"{w} {p}", v.get("speedup")) for w, per in rs.items() for p, v in per.items()]
    rows.append({
        "target": f"render throughput, 2 threads >= {TARGETS['two_thread_speedup']} x 1 thread "
                  f"({', '.join(rs) or 'supervisor, heavy'}; both precisions)",
        "value": ", ".join(f"{k} {fmt(v, '.2f')}x" for k, v in vals) or "n/a",
        "ok": None if not vals or any(v is None for _, v in vals)
        else all(v >= TARGETS["two_thread_speedup"] for _, v in vals),
    })
    return rows


def write_markdown(results: dict, path: Path, plot_note: str) -> None:
    m = results["machine"]
    L = []
    L.append("# nbnumba CPU benchmark")
    L.append("")
    L.append(f"Generated by `benchmarks/cpu_bench.py` ({'--quick' if results['quick'] else 'full run'}, "
             f"repeat={results['repeat']}) on {m['date_utc']}. Wall times are end-to-end for a separate "
             "process (start-up, imports, JIT compile or cache load, render, image writing). "
             "`first` uses a new empty `NBNUMBA_CACHE_DIR`; `warm` is the median of the repeats with "
             "that cache; `compile` = first - warm.")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"- CPU: {m['cpu_model']}, `nproc` = {m['nproc']}"
             + (f", {m['mem_total_gib']:.1f} GiB RAM" if m.get("mem_total_gib") else ""))
    L.append(f"- Python {m['python']}, numba {m['numba']}, numpy {m['numpy']}, nbnumba {m['nbnumba']} "
             f"(git {m['git_commit']}, {m['git_modified_tracked_files']} tracked files modified in the work tree)")
    L.append(f"- {m['platform']}")
    src = results.get("sources", {})
    if m.get("snapshot"):
        L.append(f"- Measured a frozen snapshot of the package (`--snapshot`, imported from a temporary copy; "
                 f"package hash {src.get('package_hash_before')}, compiled-source hash "
                 f"{src.get('compiled_source_hash_before')}), so concurrent edits to the work tree did not "
                 "affect the numbers")
    else:
        changed = src.get("package_hash_before") != src.get("package_hash_after")
        L.append(f"- Package imported from `{m.get('nbnumba_imported_from')}`; package hash "
                 f"{src.get('package_hash_before')}"
                 + (f" -> {src.get('package_hash_after')} (**the sources changed while the benchmark ran**)"
                    if changed else " (unchanged during the run)"))
    if src.get("configs_recompiled_mid_run"):
        L.append(f"- **Warning:** compiled sources changed during these configurations, so their warm runs "
                 f"include a recompile: {', '.join(src['configs_recompiled_mid_run'])}")
    ref = results["reference"]
    if ref["path"]:
        L.append(f"- Reference: `{ref['path']}` (sha256 {ref['sha256'][:16]}...), threads via `OMP_NUM_THREADS`")
    else:
        L.append("- Reference: not given (set `NB_C_BIN`); reference columns are n/a")
    L.append(f"- Threads: 1 and {results['threads_all']} (all); nbnumba via `NUMBA_NUM_THREADS` and `-nthreads`")
    L.append(f"- Peak memory: max RSS of the child via {m['peak_memory_method']}")
    la0, la1 = results["loadavg_before"], results["loadavg_after"]
    busy = max(la0[0], la1[0]) > 0.5 or results.get("loadavg_max_seen", 0) > 0.5
    L.append(f"- Load average (1/5/15 min) before: {la0[0]:.2f} / {la0[1]:.2f} / {la0[2]:.2f}; "
             f"after: {la1[0]:.2f} / {la1[1]:.2f} / {la1[2]:.2f}. "
             f"Total benchmark time {results['elapsed_s'] / 60:.1f} min.")
    if busy:
        L.append(f"- **Note:** the machine was shared while this ran (other processes were using CPU; "
                 f"the 1-minute load average before the run was {la0[0]:.2f} on {m['nproc']} cores). "
                 "Times, especially the multi-threaded ones and the thread scaling, may be pessimistic.")
    L.append("")

    L.append("## Results")
    L.append("")
    L.append("Ratio = nbnumba warm / reference at the same thread count (lower is better). "
             "Correlation: Pearson correlation of the float images (nbnumba vs reference).")
    for name, wl in results["workloads"].items():
        L.append("")
        L.append(f"### {name}: {wl['title']}")
        L.append("")
        L.append(f"`{' '.join(wl['args'])}`")
        L.append("")
        L.append("| precision | threads | nbnumba first (s) | warm (s) | compile (s) | reference (s) | ratio "
                 "| nbnumba peak MiB (first / warm) | reference peak (MiB) | correlation |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in wl["nbnumba"]:
            rf = find_ref(results, name, r["threads"])
            L.append(f"| {r['precision']} | {r['threads']} | {fmt(r['first_s'])} | {fmt(r['warm_s'])} "
                     f"| {fmt(r['compile_s'])} | {fmt(rf and rf['wall_s'])} | {fmt(r.get('ratio'), '.3f')} "
                     f"| {fmt(r['runs']['first']['peak_mib'], '.0f')} / {fmt(r['peak_warm_mib'], '.0f')} "
                     f"| {fmt(rf and rf['peak_mib'], '.0f')} "
                     f"| {fmt_corr(r.get('corr'))} |")
        errors = [(r, run) for r in wl["nbnumba"] + wl["reference"]
                  for run in ([r["runs"]["first"]] + r["runs"]["warm"] if r["impl"] == "nbnumba" else r["runs"])
                  if run["rc"] != 0]
        for r, run in errors[:3]:
            L.append("")
            msg = " ".join(run.get("error", "").split())[-300:].replace("`", "'")
            L.append(f"- failed: {r['impl']} {r.get('precision', '')} {r['threads']}T rc={run['rc']}: `{msg}`")
    L.append("")

    L.append("## Thread scaling")
    L.append("")
    L.append("Render throughput: the render alone, warm, in one process (`nbnumba.api.render`, median of the "
             "repeats); the end-to-end runs above also carry about half a second of start-up and file "
             "writing that no thread count changes.")
    L.append("")
    L.append("| workload | precision | render 1 thread (s) | render 2 threads (s) | Mpixel/s at 2 threads "
             "| throughput 2T / 1T | end to end 2T / 1T |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    for w, per in results.get("render_scaling", {}).items():
        for prec, sc in per.items():
            e1, e2 = find(results, w, prec, 1), find(results, w, prec, 2)
            ends = (e1["warm_s"] / e2["warm_s"]) if e1 and e2 and e1["warm_s"] and e2["warm_s"] else None
            rate = sc["pixels"] / sc["t2_s"] / 1e6 if sc.get("pixels") and sc.get("t2_s") else None
            L.append(f"| {w} | {prec} | {fmt(sc['t1_s'], '.3f')} | {fmt(sc['t2_s'], '.3f')} | {fmt(rate, '.1f')} "
                     f"| **{fmt(sc['speedup'])}x** | {fmt(ends)}x |")
    if not results.get("render_scaling"):
        L.append("| not measured | | | | | | |")
    L.append("")

    L.append("## Trace cost")
    L.append("")
    tr = results.get("trace")
    if tr:
        full = find(results, "supervisor", "double", tr["threads"])
        full_s = full["warm_s"] if full else None
        frac = (tr["warm_s"] / full_s) if tr["warm_s"] and full_s else None
        L.append(f"- `nbnumba trace --pixel {tr['pixel_slow_fast'][0]} {tr['pixel_slow_fast'][1]} "
                 f"<supervisor args>`: warm {fmt(tr['warm_s'])} s (first, fresh cache {fmt(tr['first_s'])} s), "
                 f"{tr['trace_lines']} output lines, peak {fmt(tr['peak_mib'], '.0f')} MiB, "
                 f"image written: {'yes' if tr['wrote_image'] else 'no'}; "
                 f"full supervisor render (double, {tr['threads']} threads, warm): {fmt(full_s)} s"
                 + (f" -> trace costs {frac * 100:.0f}% of a render" if frac is not None else ""))
    else:
        L.append("- not measured")
    L.append("")

    L.append("## Acceptance")
    L.append("")
    L.append("| target | measured | result |")
    L.append("|---|---|---|")
    for row in results["acceptance"]:
        L.append(f"| {row['target']} | {row['value']} | **{verdict(row['ok'])}** |")
    L.append("")
    L.append(plot_note)
    L.append("")
    path.write_text("\n".join(L))


def write_plot(results: dict, path: Path) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if path.exists():
            path.unlink()  # never leave a stale plot beside fresh numbers
        return "Plot not written: matplotlib is not installed (`pip install matplotlib`)."
    n_all = results["threads_all"]
    names = list(results["workloads"])
    series = [("nbnumba double", lambda w: (find(results, w, "double", n_all) or {}).get("warm_s")),
              ("nbnumba single", lambda w: (find(results, w, "single", n_all) or {}).get("warm_s")),
              ("reference", lambda w: (find_ref(results, w, n_all) or {}).get("wall_s"))]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.26
    for i, (label, get) in enumerate(series):
        vals = [get(w) for w in names]
        xs = [j + (i - 1) * width for j in range(len(names))]
        bars = ax.bar(xs, [v if v else 0 for v in vals], width, label=label)
        for b, v in zip(bars, vals):
            if v:
                ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                            fontsize=7)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_ylabel("warm wall time per run (s, log scale)")
    ax.set_title(f"nbnumba vs reference nanoBragg, {n_all} threads, {results['machine']['cpu_model'][:40]}",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"Plot: `{path.name}` (warm wall per workload at {n_all} threads, log scale)."


# --------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="repeat=1 and skip the 1-thread runs except the supervisor scaling pair")
    ap.add_argument("--workloads", default="supervisor,cubic1024,heavy,tiny64",
                    help="comma-separated subset of supervisor,cubic1024,heavy,tiny64")
    ap.add_argument("--repeat", type=int, default=None, help="warm runs per configuration (default 3, --quick 1)")
    ap.add_argument("--threads", type=int, default=None, help="'all threads' count (default: nproc)")
    ap.add_argument("--out", type=Path, default=REPO / "reports", help="folder for cpu_benchmark.{md,json,png}")
    ap.add_argument("--no-trace", action="store_true", help="skip the trace measurement")
    ap.add_argument("--supervisor-roi", action="store_true",
                    help="keep the golden case's -roi (smoke test of the supervisor path only)")
    ap.add_argument("--snapshot", action="store_true",
                    help="benchmark a frozen copy of the nbnumba package (for a work tree others are editing)")
    ap.add_argument("--keep-scratch", action="store_true", help="keep the temporary run folders")
    opts = ap.parse_args(argv)

    repeat = opts.repeat if opts.repeat is not None else (1 if opts.quick else 3)
    all_wl = workloads(opts.supervisor_roi)
    chosen = [w.strip() for w in opts.workloads.split(",") if w.strip()]
    unknown = [w for w in chosen if w not in all_wl]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; choose from {list(all_wl)}")

    machine = machine_info()
    n_all = opts.threads or machine["nproc"] or 1
    bench = Bench(opts)
    loadavg_before = os.getloadavg()
    t_start = time.perf_counter()
    max_load = loadavg_before[0]
    imported = bench.imported_from()
    hash_before = source_hash(bench.package)
    tree_before = tree_hash(bench.package)
    print(f"scratch {bench.scratch}; nbnumba {' '.join(bench.nb)} (package {imported}); "
          f"reference {bench.ref or 'n/a'}; peak memory via {PEAK_METHOD}; load {loadavg_before}", flush=True)
    machine["nbnumba_imported_from"] = imported
    machine["snapshot"] = bool(opts.snapshot)

    results = {
        "quick": opts.quick, "repeat": repeat, "threads_all": n_all, "machine": machine,
        "reference": {"path": bench.ref, "sha256": sha256(bench.ref) if bench.ref else None},
        "targets": TARGETS, "workloads": {}, "loadavg_before": list(loadavg_before),
    }
    if "supervisor" in chosen and not (bench.golden / "cases" / "manifest.json").exists():
        print(f"error: golden corpus not found at {bench.golden} (set NB_GOLDEN)", file=sys.stderr)
        return 2

    for name in chosen:
        wl = all_wl[name]
        threads_list = sorted({n_all, 1}) if not opts.quick else [n_all]
        nb_threads = {p: list(threads_list) for p in PRECISIONS}
        if name == "supervisor":
            for p in PRECISIONS:  # the scaling pair, 1 and 2 threads, is always measured
                nb_threads[p] = sorted(set(nb_threads[p]) | ({1, 2} if n_all >= 2 else {1}))
        entry = {"title": wl["title"], "args": wl["args"]() + OUTPUT_ARGS, "nbnumba": [], "reference": []}
        results["workloads"][name] = entry
        bench.log(f"workload {name}")
        if bench.ref:
            for t in threads_list:
                entry["reference"].append(bench.reference_config(wl, t, repeat))
                max_load = max(max_load, os.getloadavg()[0])
        for t in sorted(set(nb_threads["double"]) | set(nb_threads["single"]), reverse=True):
            for p in PRECISIONS:
                if t not in nb_threads[p]:
                    continue
                r = bench.nbnumba_config(wl, p, t, repeat)
                rf = find_ref(results, name, t)
                r["ratio"] = (r["warm_s"] / rf["wall_s"]) if rf and rf["wall_s"] and r["warm_s"] else None
                r["corr"] = correlation(r["_image"], rf["_image"]) if rf else None
                if r["corr"] is None and rf is None:
                    # no reference at this thread count: compare with the reference at another count
                    other = next((x for x in entry["reference"] if x["_image"] is not None), None)
                    r["corr"] = correlation(r["_image"], other["_image"]) if other else None
                entry["nbnumba"].append(r)
                max_load = max(max_load, os.getloadavg()[0])
        for r in entry["nbnumba"] + entry["reference"]:
            r.pop("_image", None)

    results["render_scaling"] = {}
    for name in (w for w in ("supervisor", "heavy") if w in chosen and n_all >= 2):
        per = {}
        for p in PRECISIONS:
            cache = next((r["cache_dir"] for r in results["workloads"][name]["nbnumba"] if r["precision"] == p), None)
            t1 = bench.render_time(all_wl[name], p, 1, repeat, cache)
            t2 = bench.render_time(all_wl[name], p, 2, repeat, cache)
            speedup = t1["render_s"] / t2["render_s"] if t1["render_s"] and t2["render_s"] else None
            per[p] = {"t1_s": t1["render_s"], "t2_s": t2["render_s"], "pixels": t2["pixels"], "speedup": speedup}
        results["render_scaling"][name] = per
    if "supervisor" in chosen:
        if not opts.no_trace:
            bench.log("trace")
            results["trace"] = bench.trace(n_all, repeat, opts.supervisor_roi)

    results["sources"] = {
        "compiled_source_hash_before": hash_before, "compiled_source_hash_after": source_hash(bench.package),
        "package_hash_before": tree_before, "package_hash_after": tree_hash(bench.package),
        "configs_recompiled_mid_run": [
            f"{w} {r['precision']} {r['threads']}T" for w, d in results["workloads"].items()
            for r in d["nbnumba"] if r.get("sources_changed_during_runs")],
    }
    results["loadavg_after"] = list(os.getloadavg())
    results["loadavg_max_seen"] = max(max_load, results["loadavg_after"][0])
    results["elapsed_s"] = time.perf_counter() - t_start
    results["acceptance"] = acceptance(results)

    opts.out.mkdir(parents=True, exist_ok=True)
    md, js, png = opts.out / "cpu_benchmark.md", opts.out / "cpu_benchmark.json", opts.out / "cpu_benchmark.png"
    plot_note = write_plot(results, png)
    write_markdown(results, md, plot_note)
    js.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {md}, {js}" + (f", {png}" if png.exists() and "not written" not in plot_note else
                                 f" ({plot_note})"))
    print()
    for row in results["acceptance"]:
        print(f"{verdict(row['ok']):4s}  {row['target']}: {row['value']}")
    if not opts.keep_scratch:
        shutil.rmtree(bench.scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

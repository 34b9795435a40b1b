"""Where one `nbnumba run` spends its time, stage by stage, and what the render kernel compiles to.

    python benchmarks/stage_profile.py [--threads 2] [--out reports/stage_profile.md]

Stages of the supervisor command (warm compile cache, each in a fresh interpreter, median of
--repeat): the interpreter alone; importing the `run` command's modules (Numba included); building
the simulation (parsing, geometry, reading A.mat and scaled.hkl); loading the cached kernel and
dispatching it; the render; the statistics; writing the
float and int images.  Beside them: the whole command end to end, a 64x64 image end to end, the
first run on an empty compile cache, the render alone on 1 and 2 threads (its scaling), and the
render kernel's instruction mix (packed against scalar float64 arithmetic: what LLVM vectorised).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from cpu_bench import golden_dir, machine_info, nbnumba_cmd, supervisor_args  # noqa: E402

OUTPUTS = ["-floatfile", "out.bin", "-intfile", "out.img", "-nonoise", "-nopgm", "-noprogress"]
TINY = ("-cell 100 100 100 90 90 90 -default_F 100 -lambda 6.2 -N 5 -distance 100 -pixel 0.1 "
        "-detpixels 64").split()

# one child per measurement: the stages of one run in the order `nbnumba run` takes them
STAGES_CHILD = """
import json, os, sys, time
t0 = time.perf_counter()
from nbnumba.commands import run  # noqa: F401 - the command module, as the CLI imports it
from nbnumba.model.simulation import build
from nbnumba.kernels.backends import backend_for
from nbnumba.kernels.render import render
from nbnumba.outputs.images import statistics, write_outputs
t1 = time.perf_counter()
argv = json.loads(sys.argv[1])
sim = build(argv, say=None)
t2 = time.perf_counter()
backend = backend_for(sim.params)
render(sim, backend, sim.params.precision)
t3 = time.perf_counter()
image = render(sim, backend, sim.params.precision).image
t4 = time.perf_counter()
# the first render loads the cached kernel and dispatches it: what it took beyond a warm render
dispatch = max(0.0, (t3 - t2) - (t4 - t3))
stats = statistics(sim, image)
t5 = time.perf_counter()
write_outputs(sim, image, stats, lambda line: None)
t6 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "build": t2 - t1, "cache_and_dispatch": dispatch, "render": t4 - t3,
                  "statistics": t5 - t4, "writing": t6 - t5}))
"""

RENDER_CHILD = """
import json, sys
from nbnumba import api
argv, precision, repeat = json.loads(sys.argv[1])
sim = api.simulation(argv)
api.render(sim, precision=precision)
print(json.dumps(sorted(api.render(sim, precision=precision).seconds for _ in range(repeat))))
"""

ASM_CHILD = """
import json, os, sys, tempfile
os.environ["NBNUMBA_CACHE_DIR"] = tempfile.mkdtemp()
from nbnumba import api
from nbnumba.kernels import cpu
sim = api.simulation(json.loads(sys.argv[1]))
out = {}
for precision in ("double", "single"):
    api.render(api.simulation(json.loads(sys.argv[1]) + ["-roi", "0", "0", "0", "0"]), precision=precision)
for sig in cpu.plain_rows_kernel.signatures:
    out[str(sig[0].dtype)] = cpu.plain_rows_kernel.inspect_asm(sig)
print(json.dumps(out))
"""


def child(code: str, payload, env: dict, cwd: Path) -> dict | list:
    done = subprocess.run([sys.executable, "-c", code, json.dumps(payload)], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def wall(cmd: list[str], env: dict, cwd: Path) -> float:
    return timed(cmd, env, cwd)[0]


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one run: on a shared machine the CPU time
    moves much less with the other users' load than the wall-clock time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def instruction_mix(asm: str) -> dict:
    """Arithmetic instructions of the kernel: packed (vector) against scalar, per width."""
    ops = re.findall(r"^\s+(v?(?:add|sub|mul|div|fmadd\w*|fmsub\w*|fnmadd\w*|sqrt|max|min)(p|s)(d|s))\s", asm, re.M)
    count = {"packed_double": 0, "scalar_double": 0, "packed_single": 0, "scalar_single": 0}
    for _, kind, width in ops:
        count[f"{'packed' if kind == 'p' else 'scalar'}_{'double' if width == 'd' else 'single'}"] += 1
    count["uses_zmm"] = "zmm" in asm
    count["uses_ymm"] = "ymm" in asm
    return count


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "stage_profile.md")
    opts = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="nbnumba-profile-"))
    (work / "inputs").symlink_to(golden_dir() / "inputs")
    env = dict(os.environ, NUMBA_NUM_THREADS=str(opts.threads), PYTHONPATH=str(ROOT))
    # an installed package's modules are compiled to bytecode once; a PYTHONDONTWRITEBYTECODE
    # inherited from a sandbox would make every run compile nbnumba's sources again (~0.1 s)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    args = supervisor_args() + OUTPUTS
    print("warming the compile cache ...", flush=True)
    subprocess.run(nbnumba_cmd() + args, cwd=work, env=env, capture_output=True, check=True)

    results = {"machine": machine_info(), "threads": opts.threads, "load_before": os.getloadavg()[0]}
    results["interpreter_s"] = statistics.median(wall([sys.executable, "-c", "pass"], env, work)
                                                 for _ in range(opts.repeat))
    stages = [child(STAGES_CHILD, args, env, work) for _ in range(opts.repeat)]
    results["stages_s"] = {key: statistics.median(s[key] for s in stages) for key in stages[0]}
    results["end_to_end_s"], results["end_to_end_cpu_s"] = medians(
        [timed(nbnumba_cmd() + args, env, work) for _ in range(opts.repeat)])
    results["tiny64_s"], results["tiny64_cpu_s"] = medians(
        [timed(nbnumba_cmd() + TINY + OUTPUTS, env, work) for _ in range(opts.repeat)])
    fresh = dict(env, NBNUMBA_CACHE_DIR=tempfile.mkdtemp(prefix="nbnumba-fresh-"))
    results["first_run_s"], results["first_run_cpu_s"] = timed(nbnumba_cmd() + args, fresh, work)
    scaling = {}
    for threads in (1, 2):
        for precision in ("double", "single"):
            one = dict(env, NUMBA_NUM_THREADS=str(threads))
            scaling[f"{precision}_{threads}"] = child(RENDER_CHILD, [supervisor_args(), precision, opts.repeat],
                                                      one, work)[opts.repeat // 2]
    results["render_s"] = scaling
    asm = child(ASM_CHILD, supervisor_args(), env, work)
    results["render_kernel"] = {dtype: instruction_mix(text) for dtype, text in asm.items()}
    results["load_after"] = os.getloadavg()[0]
    opts.out.parent.mkdir(exist_ok=True)
    opts.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    opts.out.write_text(markdown(results))
    print(opts.out.read_text())
    return 0


def markdown(r: dict) -> str:
    s = r["stages_s"]
    total = sum(s.values()) + r["interpreter_s"]
    lines = ["# One `nbnumba run`, stage by stage", "",
             f"`python benchmarks/stage_profile.py --threads {r['threads']}`: the supervisor command (golden "
             f"`supervisor_roi` without its ROI, 2463x2527 pixels, 10 φ steps, float64), warm compile cache, "
             f"{r['threads']} threads, medians; load average {r['load_before']:.1f} before and {r['load_after']:.1f} "
             f"after (the machine is shared); {r['machine']['cpu_model']}, Python {r['machine']['python']}, Numba {r['machine']['numba']}.", "",
             "| stage | seconds | share |", "| --- | ---: | ---: |",
             f"| interpreter start | {r['interpreter_s']:.3f} | {r['interpreter_s'] / total:.0%} |"]
    names = {"imports": "imports (the run command's modules, Numba)", "build": "set-up (flags, geometry, A.mat, scaled.hkl)",
             "cache_and_dispatch": "cached kernel loaded and dispatched", "render": "render",
             "statistics": "statistics", "writing": "writing float and int images"}
    for key, label in names.items():
        lines.append(f"| {label} | {s[key]:.3f} | {s[key] / total:.0%} |")
    lines += [f"| sum | {total:.3f} | |", "",
              f"End to end (`nbnumba run`, one process): **{r['end_to_end_s']:.2f} s**; a 64x64 image end to end: "
              f"**{r['tiny64_s']:.2f} s**; the first run on an empty compile cache: **{r['first_run_s']:.1f} s**. "
              f"CPU seconds (user + system; the load of a shared machine moves them less): "
              f"{r['end_to_end_cpu_s']:.2f}, {r['tiny64_cpu_s']:.2f} and {r['first_run_cpu_s']:.1f}.", "",
              "## The render alone (in process, warm)", "", "| precision | 1 thread | 2 threads | scaling |",
              "| --- | ---: | ---: | ---: |"]
    for precision in ("double", "single"):
        one, two = r["render_s"][f"{precision}_1"], r["render_s"][f"{precision}_2"]
        lines.append(f"| {precision} | {one:.3f} s | {two:.3f} s | {one / two:.2f}x |")
    lines += ["", "## What the render kernel compiles to", "",
              "Arithmetic instructions in `kernels.cpu.plain_rows_kernel` (the kernel the supervisor command runs), "
              "packed (vectorised across the strip's pixels) against scalar:", "",
              "| kernel | packed f64 | scalar f64 | packed f32 | scalar f32 | ymm | zmm |",
              "| --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for dtype, mix in r["render_kernel"].items():
        lines.append(f"| {dtype} | {mix['packed_double']} | {mix['scalar_double']} | {mix['packed_single']} | "
                     f"{mix['scalar_single']} | {mix['uses_ymm']} | {mix['uses_zmm']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

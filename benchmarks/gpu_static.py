"""What the GPU kernels cost in registers, compiled without a GPU.

    python benchmarks/gpu_static.py [--ptx-dir DIR] [--arch sm_90] -- RUN_FLAGS...
    python benchmarks/gpu_static.py --report [--arch sm_90]

The first form compiles the kernels that `nbnumba run -device cuda RUN_FLAGS` would launch, in
both precisions, to PTX (written to DIR as KERNEL-double.ptx / KERNEL-single.ptx when given) and
with `ptxas -v` to a cubin, and prints per kernel its registers, spill stores and loads, stack
frame and local memory (bytes).  The second does so for the supervisor command and the golden
cases of every other feature key and writes reports/gpu_static.md.

Needs the `nbnumba[cuda]` extra (NVVM and ptxas from pip; no CUDA toolkit, no GPU): the compute
capability of the absent GPU is stood in for, from --arch.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GOLDEN = Path(os.environ.get("NB_GOLDEN", ROOT / "tests" / "data" / "golden"))
REPORT = ROOT / "reports" / "gpu_static.md"

# nanoBraggCUDA's render kernel, same toolchain (nvcc/ptxas 13.5, sm_90, -O3): it has one kernel per
# precision for every command
NANOBRAGG_CUDA = {"double": 64, "single": 80}
# ours before the feature keys (commit 818846a, same toolchain): registers, spill stores (bytes)
BEFORE = {"double": (255, 84), "single": (197, 0)}
TARGET = {"double": 96, "single": 56}  # issue 12: supervisor render kernel, no spills
PRECISIONS = ("double", "single")
# (label, golden case, extra flags): the supervisor and a case for every other feature key
REPORT_CASES = [
    ("supervisor (supervisor_roi without -roi)", "supervisor_roi", []),
    ("interpolation (hkl_interpolate)", "hkl_interpolate", []),
    ("curved detector (curved_det)", "curved_det", []),
    ("oversample 3 + thickness + flags (oversample_3_flags)", "oversample_3_flags", []),
    ("sourcefile (sourcefile)", "sourcefile", []),
    ("heavy mosaic (simple_cubic_mosaic)", "simple_cubic_mosaic", []),
    ("everything at once (comprehensive)", "comprehensive", []),
    ("supervisor + oversample 2, 10 mosaic domains", "supervisor_roi",
     ["-oversample", "2", "-mosaic", "0.3", "-mosaic_dom", "10"]),
    ("round crystal (xtal_round)", "xtal_round", []),
    ("Gaussian crystal (xtal_gauss)", "xtal_gauss", []),
    ("top-hat crystal (xtal_tophat)", "xtal_tophat", []),
]


def golden_args(case: str) -> list[str]:
    """A golden case's command line; the supervisor's without its -roi (the full detector)."""
    args = json.loads((GOLDEN / "cases" / "manifest.json").read_text())["cases"][case]["args"]
    if case == "supervisor_roi":
        i = args.index("-roi")
        args = args[:i] + args[i + 5:]
    return args


def toolchain() -> dict:
    """Where NVVM and ptxas come from (the point of the extra: pip's wheels, not a toolkit)."""
    from nbnumba.kernels import cuda as gpu

    ptxas = gpu.ptxas_path()
    if ptxas is None:
        raise SystemExit("gpu_static: no ptxas found: pip install 'nbnumba[cuda]' (or put a CUDA toolkit's on PATH)")
    try:
        from cuda import pathfinder
        nvvm = pathfinder.load_nvidia_dynamic_lib("nvvm")
        nvvm_path = f"{nvvm.abs_path} (found via {nvvm.found_via})"
    except Exception as error:  # noqa: BLE001 - reported, the compile below then says what fails
        nvvm_path = f"not found ({error})"
    return {"ptxas": ptxas, "ptxas_version": gpu.ptxas_version(ptxas), "nvvm": nvvm_path,
            "numba_cuda": importlib.metadata.version("numba-cuda")}


def compute_capability(arch: str) -> tuple[int, int]:
    """sm_90 -> (9, 0), sm_100a -> (10, 0)."""
    digits = "".join(c for c in arch.split("_")[-1] if c.isdigit())
    if len(digits) < 2:
        raise SystemExit(f"gpu_static: --arch {arch}: expected a name like sm_90")
    return int(digits[:-1]), int(digits[-1])


def measure(argv: list[str], arch: str, ptx_dir: Path | None = None, cwd: Path | None = None) -> list[dict]:
    """Per precision and kernel: the kernel's feature key and ptxas's figures."""
    from nbnumba.kernels import cuda as gpu
    from nbnumba.kernels.render import kernel_arrays
    from nbnumba.model.simulation import build
    from nbnumba.physics import features_of

    cc = compute_capability(arch)
    ptxas = toolchain()["ptxas"]
    with contextlib.chdir(cwd or os.getcwd()):
        sim = build(argv)
    rows = []
    for precision in PRECISIONS:
        arrays = kernel_arrays(sim, precision)
        started = time.perf_counter()
        ptx = gpu.compile_ptx(arrays, cc)
        for name, text in ptx.items():
            cubin = None
            if ptx_dir is not None:
                ptx_dir.mkdir(parents=True, exist_ok=True)
                (ptx_dir / f"{name}-{precision}.ptx").write_text(text)
                cubin = str(ptx_dir / f"{name}-{precision}.cubin")
            figures = gpu.assemble(text, arch, ptxas, cubin)
            key = gpu.key_tag(arrays["geo"].dtype, features_of(arrays["ints"])) if name == "render_window" else "-"
            rows.append(dict(kernel=name, precision=precision, key=key, seconds=time.perf_counter() - started,
                             **figures))
    return rows


# derivative kernels (issue 21): the benchmark's 16 parameters, and the cases where N replaces them
SIXTEEN = ("rotx roty rotz a b c alpha beta gamma scale distance Xbeam Ybeam lambda detector_rotx "
           "detector_roty").split()
DERIVATIVE_CASES = [
    ("supervisor, 16 parameters", "supervisor_roi", [], SIXTEEN),
    ("Gaussian crystal, N and cell", "xtal_gauss", [], ["Na", "Nb", "Nc", "a", "b", "c", "rotx", "distance"]),
    ("interpolation, 4 parameters", "hkl_interpolate", [], ["rotx", "a", "distance", "lambda"]),
    ("oversample 3 + thickness + flags, 4 parameters", "oversample_3_flags", [], ["rotx", "a", "distance", "lambda"]),
]


def measure_derivatives(argv: list[str], names: list[str], arch: str, cwd: Path | None = None) -> list[dict]:
    """Per precision: the derivative kernel (K = len(names) directions) and ptxas's figures."""
    import numpy as np

    from nbnumba.derivatives.directions import directions
    from nbnumba.derivatives.passes import _arrays
    from nbnumba.kernels import cuda as gpu
    from nbnumba.kernels import derivatives_cuda
    from nbnumba.physics import features_of
    from nbnumba.model.simulation import build

    cc = compute_capability(arch)
    ptxas = toolchain()["ptxas"]
    with contextlib.chdir(cwd or os.getcwd()):
        sim = build(argv)
    rows = []
    for precision in PRECISIONS:
        real = np.float32 if precision == "single" else np.float64
        arrays = _arrays(sim, real)
        started = time.perf_counter()
        ptx = derivatives_cuda.compile_ptx(arrays, directions(sim, names, real), cc)
        figures = gpu.assemble(ptx, arch, ptxas)
        rows.append(dict(kernel=f"tangent_window (K={len(names)})", precision=precision,
                         key=gpu.key_tag(arrays["geo"].dtype, features_of(arrays["ints"])),
                         seconds=time.perf_counter() - started, **figures))
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = ["| kernel | precision | feature key | registers | spill stores | spill loads | stack frame | local memory |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['kernel']} | {r['precision']} | {r['key']} | {r['registers']} | {r['spill_stores']} | "
                     f"{r['spill_loads']} | {r['stack_frame']} | {r['local_memory']} |")
    return lines


def report(arch: str) -> int:
    tools = toolchain()
    results = []
    for label, case, extra in REPORT_CASES:
        rows = measure(golden_args(case) + extra, arch, cwd=GOLDEN)
        results.append((label, rows))
        print(f"{label}: " + ", ".join(f"{r['precision']} {r['registers']}" for r in rows
                                        if r["kernel"] == "render_window"), flush=True)
    supervisor = {r["precision"]: r for r in results[0][1] if r["kernel"] == "render_window"}
    met = all(supervisor[p]["registers"] <= TARGET[p] and supervisor[p]["spill_stores"] == 0
              and supervisor[p]["spill_loads"] == 0 for p in PRECISIONS)
    spill_free = all(r["spill_stores"] == 0 and r["spill_loads"] == 0 for _, rows in results for r in rows)
    lines = ["# GPU kernels compiled without a GPU", "",
             f"`python benchmarks/gpu_static.py --report --arch {arch}`: every kernel that `nbnumba run -device cuda` "
             f"launches for each command, compiled for {arch} by numba-cuda {tools['numba_cuda']} and assembled by "
             f"`ptxas -v` ({tools['ptxas_version']}). NVVM: {tools['nvvm']}; ptxas: {tools['ptxas']}. "
             "Sizes in bytes; local memory is the stack frame (ptxas's cumulative stack size).", "",
             "## The supervisor command's render kernel", "",
             "| precision | registers | spills (bytes, stores/loads) | target | nanoBraggCUDA | before the feature keys |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for p in PRECISIONS:
        r = supervisor[p]
        before = BEFORE[p]
        lines.append(f"| {p} | {r['registers']} | {r['spill_stores']}/{r['spill_loads']} | <= {TARGET[p]}, no spills | "
                     f"{NANOBRAGG_CUDA[p]} | {before[0]} ({before[1]} B spilled) |")
    lines += ["", f"Supervisor target {'met' if met else 'NOT met'}; every kernel below "
              f"{'compiles without spills' if spill_free else 'does NOT compile without spills'}.",
              "nanoBraggCUDA's figures are its render kernel (its cuda/ folder, double-float and single modes) "
              "compiled by the same nvcc/ptxas 13.5 for sm_90 at -O3; 'before' is this project's one kernel with "
              "every feature chosen at run time (commit 818846a).",
              "The stack frame of the kernels that call sin or cos (curved detector, round crystal) is the "
              "scratch array of libdevice's argument reduction for huge angles, used only on that path.", ""]
    for label, rows in results:
        lines += [f"## {label}", "", *table(rows), ""]
    derivative_results = [(label, measure_derivatives(golden_args(case) + extra, names, arch, cwd=GOLDEN))
                          for label, case, extra, names in DERIVATIVE_CASES]
    derivatives_spill_free = all(r["spill_stores"] == 0 and r["spill_loads"] == 0
                                 for _, rows in derivative_results for r in rows)
    lines += ["# Derivative kernels", "",
              "The kernels of `api.jacobian`/`api.gradient` and `nbnumba derivatives -device cuda` (one per precision, "
              "feature key and number K of parameters).  Their local memory is the thread's tangent rows (15 x K "
              "reals), an array by design, not a spill.  They "
              f"{'compile without spills' if derivatives_spill_free else 'do NOT compile without spills'}; the "
              "render kernels above are unchanged by them.", ""]
    for label, rows in derivative_results:
        lines += [f"## {label}", "", *table(rows), ""]
    spill_free = spill_free and derivatives_spill_free
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(lines))
    print(f"wrote {REPORT}")
    return 0 if met and spill_free else 1


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    run_flags = []
    if "--" in argv:
        i = argv.index("--")
        argv, run_flags = argv[:i], argv[i + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     usage="%(prog)s [--ptx-dir DIR] [--arch sm_90] -- RUN_FLAGS... | --report")
    parser.add_argument("--ptx-dir", type=Path, default=None, help="write KERNEL-PRECISION.ptx (and .cubin) here")
    parser.add_argument("--arch", default="sm_90", help="GPU architecture to compile for (default sm_90)")
    parser.add_argument("--report", action="store_true", help=f"the golden set, written to {REPORT.relative_to(ROOT)}")
    opts = parser.parse_args(argv)
    if opts.report:
        return report(opts.arch)
    if not run_flags:
        parser.error("give the run flags after --, or --report")
    rows = measure(run_flags, opts.arch, opts.ptx_dir)
    print("\n".join(table(rows)))
    return 0 if all(r["spill_stores"] == 0 and r["spill_loads"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

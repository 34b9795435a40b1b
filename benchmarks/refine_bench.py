"""`nbnumba refine` on the supervisor geometry: the golden case `supervisor_roi`'s flags (the real
A.mat and scaled.hkl, the Pilatus 6M geometry), the whole 2463x2527 detector, one phi step of 0.1
deg.  The target is the true model's image; the start is 0.1 deg off in each rotation and 0.5 mm
off in distance (and 1.5x in scale); rotx, roty, rotz, distance and scale are refined jointly.

    python benchmarks/refine_bench.py [--threads 2] [--noise] [--out reports/refine_benchmark.md]

Reports the wall time of the fit on the given CPU threads (Numba compiled and cached by an untimed
warm-up first), its iterations and evaluations, the time per evaluation (model image and the
Jacobian on the window pixels) against the forward render of the whole detector, and how far
each refined parameter lies from the truth (the orientation as the angle of the rotation between
the refined and the true crystal).  With --noise the target has Poisson noise (seed 1) and the
errors are compared with the standard errors.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASE = "supervisor_roi"


def flags(golden: Path, threads: int) -> list[str]:
    case = json.loads((golden / "cases" / "manifest.json").read_text())["cases"][CASE]
    args = list(case["args"])
    i = args.index("-roi")
    del args[i:i + 5]  # the whole detector
    args = [str(golden / a) if a.startswith("inputs/") else a for a in args]
    i = args.index("-phisteps")
    args[i + 1] = "1"
    return args + ["-nthreads", str(threads), "-noprogress"]


def orientation_error_deg(a, b) -> float:
    """The angle of the rotation taking crystal b's axes onto crystal a's (same cell)."""
    A = np.array([a.a, a.b, a.c], dtype=float).T
    B = np.array([b.a, b.b, b.c], dtype=float).T
    R = A @ np.linalg.inv(B)
    U, _, Vt = np.linalg.svd(R)
    R = U @ Vt
    return math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(R) - 1) / 2))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--noise", action="store_true")
    ap.add_argument("--golden", type=Path, default=ROOT / "tests" / "data" / "golden")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "refine_benchmark.md")
    opts = ap.parse_args()

    from nbnumba import api
    from nbnumba.runtime.threads import set_threads

    set_threads(opts.threads)
    truth = api.simulation(flags(opts.golden, opts.threads))
    api.render(truth)  # warm-up: compiled or loaded from the cache
    t0 = time.perf_counter()
    rendered = api.render(truth)
    render_s = time.perf_counter() - t0
    target = api.jacobian(truth).image
    if opts.noise:
        target = np.random.default_rng(1).poisson(target).astype(np.float64)
    start = api.set_parameters(truth, {"rotx": 0.1, "roty": 0.1, "rotz": 0.1, "distance": 231.274660 + 0.5,
                                       "scale": 1.5})
    names = "rot,distance,scale"
    api.refine(start, target, names, maxiter=2, cycles=1)  # warm-up of the derivative kernels
    lines = []
    t0 = time.perf_counter()
    done = api.refine(start, target, names, progress=lines.append)
    fit_s = time.perf_counter() - t0
    per_evaluation = done.seconds / max(done.evaluations, 1)

    distance_error = done.value("distance") - 231.274660
    scale_error = done.value("scale") * 1.5 - 1.0  # the start's fluence was 1.5x the truth's
    turn = orientation_error_deg(done.sim.crystal, truth.crystal)
    rows = [
        ("detector", f"{truth.shape[1]}x{truth.shape[0]} pixels (Pilatus 6M, 0.172 mm), 1 phi step of 0.1 deg"),
        ("target", "Poisson noise (seed 1)" if opts.noise else "noise-free image of the true model"),
        ("start", "rotx, roty, rotz +0.1 deg; distance +0.5 mm; scale x1.5"),
        ("refined", "rotx roty rotz distance scale"),
        ("CPU threads", str(opts.threads)),
        ("window pixels", f"{done.pixels} in {done.windows} windows"),
        ("fit wall time", f"{fit_s:.2f} s (target <= 60 s)"),
        ("iterations / evaluations", f"{done.iterations} / {done.evaluations}"),
        ("time per evaluation (model + 6 derivatives on the windows)", f"{per_evaluation * 1e3:.1f} ms"),
        ("forward render, whole detector", f"{render_s * 1e3:.1f} ms"),
        ("evaluation / forward render", f"{per_evaluation / render_s:.2f}"),
        ("orientation error after the fit", f"{turn:.2e} deg (start 0.17 deg)"),
        ("distance error", f"{distance_error:.2e} mm (standard error {done.error('distance'):.2e})"),
        ("scale error", f"{scale_error:.2e} (relative)"),
        ("converged", f"{done.converged} ({done.message})"),
    ]
    text = ["# refine on the supervisor geometry", "", f"`python benchmarks/refine_bench.py --threads {opts.threads}"
            f"{' --noise' if opts.noise else ''}`", "", "| quantity | value |", "| --- | --- |"]
    text += [f"| {k} | {v} |" for k, v in rows]
    text += ["", "The table `nbnumba refine` prints:", "", "```text", *done.table(), "```", ""]
    opts.out.parent.mkdir(exist_ok=True)
    opts.out.write_text("\n".join(text))
    print("\n".join(text))
    print(f"forward image max {float(rendered.image.max()):.4g}")


if __name__ == "__main__":
    main()

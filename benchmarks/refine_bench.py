"""`nbnumba refine` on the supervisor geometry: the golden case `supervisor_roi`'s flags (the real
A.mat and scaled.hkl, the Pilatus 6M geometry), the whole 2463x2527 detector, one phi step of 0.1
deg.  The target is the true model's image; the start is 0.1 deg off in each rotation and 0.5 mm
off in distance (and 1.5x in scale); rotx, roty, rotz, distance and scale are refined jointly.

    python benchmarks/refine_bench.py [--threads 2] [--out reports/refine_benchmark.md]

Reports the wall time of the fit on the given CPU threads (Numba compiled and cached by an untimed
warm-up first), its iterations and evaluations, the time per evaluation (model image and the
Jacobian on the window pixels) against the forward render of the whole detector, and how far
each refined parameter lies from the truth (the orientation as the angle of the rotation between
the refined and the true crystal).  Two targets: noise-free, and with Poisson noise (seed 1),
whose errors are compared with the standard errors.
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
    w = (R - R.T) / 2
    return math.degrees(math.atan2(math.sqrt(w[2, 1] ** 2 + w[0, 2] ** 2 + w[1, 0] ** 2), (np.trace(R) - 1) / 2))


def fit(api, truth, start, target, names):
    """The refinement, and one evaluation of the model and its derivatives on its windows, timed."""
    from nbnumba.refine.model import SimulationModel

    t0 = time.perf_counter()
    done = api.refine(start, target, names)
    seconds = time.perf_counter() - t0
    model = SimulationModel(start, done.names)
    windows = done.fit.windows
    model.evaluate(done.values, windows.flat, windows.shape)
    t0 = time.perf_counter()
    model.evaluate(done.values, windows.flat, windows.shape)
    return done, seconds, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--golden", type=Path, default=ROOT / "tests" / "data" / "golden")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "refine_benchmark.md")
    opts = ap.parse_args()

    from nbnumba import api
    from nbnumba.runtime.threads import set_threads

    set_threads(opts.threads)
    truth = api.simulation(flags(opts.golden, opts.threads))
    api.render(truth)  # warm-up: compiled or loaded from the cache
    t0 = time.perf_counter()
    api.render(truth)
    render_s = time.perf_counter() - t0
    clean = api.jacobian(truth).image
    start = api.set_parameters(truth, {"rotx": 0.1, "roty": 0.1, "rotz": 0.1, "distance": 231.274660 + 0.5,
                                       "scale": 1.5})
    names = "rot,distance,scale"
    api.refine(start, clean, names, maxiter=2, cycles=1)  # warm-up of the derivative kernels
    text = ["# refine on the supervisor geometry", "",
            f"`python benchmarks/refine_bench.py --threads {opts.threads}`", "",
            f"The golden case `{CASE}`'s flags (A.mat, scaled.hkl, the Pilatus 6M geometry) on the whole "
            f"{truth.shape[1]}x{truth.shape[0]} detector with one phi step of 0.1 deg; the start is 0.1 deg off in each "
            "rotation, 0.5 mm off in distance and 1.5x in scale; rotx, roty, rotz, distance and scale are refined "
            f"together on {opts.threads} CPU threads (Numba's code compiled and cached beforehand).", ""]
    for label, target in (("noise-free", clean),
                          ("Poisson noise (seed 1)", np.random.default_rng(1).poisson(clean).astype(np.float64))):
        done, fit_s, evaluation_s = fit(api, truth, start, target, names)
        distance = done.value("distance") - 231.274660
        scale = done.value("scale") * 1.5 - 1.0  # the start's fluence was 1.5x the truth's
        turn = orientation_error_deg(done.sim.crystal, truth.crystal)
        rows = [
            ("window pixels", f"{done.pixels} in {done.windows} windows"),
            ("fit wall time (target <= 60 s)", f"{fit_s:.2f} s"),
            ("iterations / evaluations", f"{done.iterations} / {done.evaluations}"),
            ("one evaluation: model and 4 derivative images on the windows", f"{evaluation_s * 1e3:.1f} ms"),
            ("forward render of the whole detector", f"{render_s * 1e3:.1f} ms"),
            ("fit / forward render", f"{fit_s / render_s:.1f}"),
            ("orientation error (start 0.17 deg)", f"{turn:.2e} deg"),
            ("distance error", f"{distance:.2e} mm (standard error {done.error('distance'):.2e} mm)"),
            ("scale error", f"{scale:.2e} (standard error {done.error('scale') * 1.5:.2e})"),
            ("rotation standard errors", ", ".join(f"{done.error(n):.2e}" for n in ("rotx", "roty", "rotz")) + " deg"),
            ("converged", f"{done.converged} ({done.message})"),
        ]
        text += [f"## {label} target", "", "| quantity | value |", "| --- | --- |"]
        text += [f"| {k} | {v} |" for k, v in rows]
        text += ["", "```text", *done.table(), "```", ""]
    opts.out.parent.mkdir(exist_ok=True)
    opts.out.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()

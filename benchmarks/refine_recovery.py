"""Recovery and calibration of `nbnumba refine` over random truths (the acceptance case of the
refinement issue): a detector of --pixels^2 pixels of 0.1 mm at 90 mm (to ~2 A at 1 A), a random
cell with edges in 60-80 A, -gauss_xtal with N around --N (20), mosaic spread --mosaic (0.5 deg) in --domains
(10) domains, a random orientation; the start carries errors typical of indexing times --errors (1: each rotation 0.1
deg, each edge +0.3 %, N x1.4, distance +0.5 mm, beam centre +1 pixel; the scale x3 always).
All are refined jointly.

    python benchmarks/refine_recovery.py [--truths 20] [--pixels 1024] [--errors 1] [--threshold 0.002]
                                         [--N 20] [--oversample 2] [--mosaic 0.5] [--domains 10]
                                         [--threads 2] [--clean]
                                         [--out reports/refine_recovery.md]

For each truth: Poisson data (or noise-free with --clean), the fit, each parameter's error
against the truth and in standard errors; the summary gives the largest errors, the fraction of
parameters within 3 standard errors and the time per fit.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAMES = "rot,edges,N,scale,distance,beam"
LIMITS = {"rot": 0.005, "edges": 0.05, "N": 5.0, "distance": 0.05, "beam": 0.05, "scale": 2.0}


def truth_flags(rng, pixels: int, N: float = 20.0, oversample: int = 2, mosaic: float = 0.5,
                domains: int = 10) -> tuple[list[str], dict]:
    cell = [round(float(x), 3) for x in rng.uniform(60, 80, 3)]
    misset = [round(float(x), 4) for x in rng.uniform(-180, 180, 3)]
    N = round(float(rng.uniform(0.85 * N, 1.15 * N)), 3)
    flags = ["-cell", *map(str, cell), "90", "90", "90", "-default_F", "100", "-lambda", "1", "-distance", "90",
             "-detpixels", str(pixels), "-pixel", "0.1", "-gauss_xtal", "-N", str(N), "-oversample", str(oversample),
             "-mosaic", str(mosaic), "-mosaic_dom", str(domains), "-misset", *map(str, misset), "-noprogress"]
    return flags, {"cell": cell, "N": N, "misset": misset}


def directions(sim) -> np.ndarray:
    axes = np.array([sim.crystal.a, sim.crystal.b, sim.crystal.c], dtype=np.float64).T
    return axes / np.linalg.norm(axes, axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--truths", type=int, default=20)
    ap.add_argument("--pixels", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clean", action="store_true")
    ap.add_argument("--errors", type=float, default=1.0)
    ap.add_argument("--threshold", type=float, default=0.002, help="-spot_threshold of the fits")
    ap.add_argument("--N", type=float, default=20.0, help="the crystals' mean N (each within 15 %%)")
    ap.add_argument("--oversample", type=int, default=2)
    ap.add_argument("--mosaic", type=float, default=0.5, help="the mosaic spread, deg")
    ap.add_argument("--domains", type=int, default=10, help="mosaic domains")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "refine_recovery.md")
    opts = ap.parse_args()

    from nbnumba import api
    from nbnumba.derivatives import base
    from nbnumba.errors import UserError
    from nbnumba.refine.flagsout import misset_angles
    from nbnumba.runtime.threads import set_threads

    set_threads(opts.threads)
    rng = np.random.default_rng(2026)
    records = []
    for i in range(opts.truths):
        flags, known = truth_flags(rng, opts.pixels, opts.N, opts.oversample, opts.mosaic, opts.domains)
        truth = api.simulation(flags)
        image = api.jacobian(truth).image
        data = image if opts.clean else rng.poisson(image).astype(np.float64)
        half = base(truth, "Xbeam")  # the default beam centre, where the truth has it
        assert abs(base(truth, "Ybeam") - half) < 1e-12
        f = opts.errors
        start = api.set_parameters(truth, {"rotx": 0.1 * f, "roty": -0.1 * f, "rotz": 0.1 * f,
                                           **{k: v * (1 + 0.003 * f) for k, v in zip("abc", known["cell"])},
                                           **{k: known["N"] * (1 + 0.4 * f) for k in ("Na", "Nb", "Nc")},
                                           "distance": 90 + 0.5 * f, "Xbeam": half + 0.1 * f,
                                           "Ybeam": half + 0.1 * f, "scale": 3.0})
        t0 = time.perf_counter()
        try:
            done = api.refine(start, data, NAMES, threshold=opts.threshold)
        except UserError as err:
            print(f"truth {i + 1}: refused: {err}", flush=True)
            records.append({"failed": str(err)})
            continue
        seconds = time.perf_counter() - t0
        x, y, z = misset_angles(directions(truth) @ directions(start).T)
        expected = dict(rotx=x, roty=y, rotz=z, a=known["cell"][0], b=known["cell"][1], c=known["cell"][2],
                        N=known["N"], scale=1 / 3.0, distance=90.0, Xbeam=half, Ybeam=half)
        record = {"seconds": seconds, "pixels": done.pixels, "iterations": done.iterations, "loss": done.loss,
                  "converged": done.converged}
        for name in done.names:
            error = done.value(name) - expected[name]
            record[name] = (error, error / done.error(name) if done.error(name) > 0 else math.inf)
        records.append(record)
        print(f"truth {i + 1}: {seconds:.1f} s, {done.iterations} iterations, " + " ".join(
            f"{n}={record[n][0]:+.2e}({record[n][1]:+.1f}s)" for n in done.names), flush=True)

    failed = [r for r in records if "failed" in r]
    records = [r for r in records if "failed" not in r]

    def worst(names, relative=None):
        values = []
        for r in records:
            for n in names:
                e = abs(r[n][0])
                values.append(e / relative[n] * 100 if relative else e)
        return max(values)

    cells = {r_n: None for r_n in ("a", "b", "c")}
    edge_rel = max(abs(r[n][0]) / 70.0 * 100 for r in records for n in cells)
    within = [abs(r[n][1]) < 3 for r in records for n in r if isinstance(r[n], tuple)]
    rows = [("truths", f"{len(records) + len(failed)} ({len(failed)} refused: no spot in the windows)"),
            ("largest rotation error (limit 0.005 deg)", f"{worst(['rotx', 'roty', 'rotz']):.2e} deg"),
            ("largest edge error (limit 0.05 %)", f"{edge_rel:.3f} %"),
            ("largest N error (limit 5 %)", f"{max(abs(r['N'][0]) / opts.N * 100 for r in records):.2f} %"),
            ("largest distance error (limit 0.05 mm)", f"{worst(['distance']):.2e} mm"),
            ("largest beam-centre error (limit 0.05 px)", f"{worst(['Xbeam', 'Ybeam']) / 0.1:.2e} px"),
            ("largest scale error (limit 2 %)", f"{max(abs(r['scale'][0]) * 3 * 100 for r in records):.2f} %"),
            ("parameters within 3 standard errors (target >= 90 %)", f"{100 * np.mean(within):.1f} %"),
            ("mean error / standard error of N (bias)", f"{np.mean([r['N'][1] for r in records]):+.2f} "
             f"(spread {np.std([r['N'][1] for r in records]):.2f})"),
            ("converged", f"{sum(r['converged'] for r in records)} of {len(records)}"),
            ("time per fit", f"median {np.median([r['seconds'] for r in records]):.1f} s, "
                             f"max {max(r['seconds'] for r in records):.1f} s on {opts.threads} threads")]
    text = ["# refine: recovery over random truths", "",
            f"`python benchmarks/refine_recovery.py --truths {opts.truths} --pixels {opts.pixels} "
            f"--errors {opts.errors:g} --threshold {opts.threshold:g} --N {opts.N:g} --oversample {opts.oversample} "
            f"--mosaic {opts.mosaic:g} --domains {opts.domains} "
            f"--threads {opts.threads}{' --clean' if opts.clean else ''}`", "",
            __doc__.split("\n\n")[0].replace("\n", " "), "", "| quantity | value |", "| --- | --- |"]
    text += [f"| {k} | {v} |" for k, v in rows]
    opts.out.write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()

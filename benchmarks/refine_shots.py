"""Many shots (the refinement issue's acceptance): stills of random orientation refined through
`nbnumba refine -list` on Dask, the run killed (SIGTERM) halfway and resumed.

    python benchmarks/refine_shots.py [--shots 20] [--pixels 128] [--workers 2] [--kill-after 10]
                                      [--out reports/refine_shots.md]

Each shot: a 60x70x80 A cell with a random orientation, -gauss_xtal N = 6, mosaic spread 0.5 deg
(5 domains), 0.1 mm pixels at 100 mm, lambda 1 A, rendered with Poisson noise (seed 2026) into a
float image of photons.  Its row in the list starts from errors typical of indexing: each misset
angle +-0.05 deg, each edge +0.3 %, N 7, distance +0.4 mm, beam centre +1 pixel, and refines
rot,edges,N,scale,distance,beam.  The first run is sent SIGTERM once --kill-after shots have
printed their rows; the second run is the same command.  Checked: every shot refined exactly
once over the two runs (no row printed twice, none missing, a JSON per shot), and each refined
value against the truth in its standard errors; a shot is recovered when its fit converged and
every parameter lies within 5 standard errors (a fit that fails lies hundreds away).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASE = ("-default_F 60 -lambda 1 -distance 100 -pixel 0.1 -gauss_xtal -oversample 1 "
        "-mosaic 0.5 -mosaic_dom 5 -seed 3 -noprogress").split()
REFINE = "rot,edges,N,scale,distance,beam"
TURN = np.array([0.05, -0.05, 0.05])  # deg, added to the misset angles
RECOVERED_Z = 5.0


def directions(sim) -> np.ndarray:
    axes = np.array([sim.crystal.a, sim.crystal.b, sim.crystal.c], dtype=np.float64).T
    return axes / np.linalg.norm(axes, axis=0)


def make_shots(folder: Path, count: int, pixels: int) -> dict:
    """Write the images and the list; return each row's true values (flag units)."""
    from nbnumba import api
    from nbnumba.derivatives import base
    from nbnumba.io.images import write_float_image
    from nbnumba.refine.flagsout import misset_angles

    rng = np.random.default_rng(2026)
    base_flags = BASE + ["-detpixels", str(pixels)]
    lines = ["# base: " + " ".join(base_flags) + " -N 7 -cell 60.18 70.21 80.24 90 90 90",
             "data,misset,distance,Xbeam,Ybeam"]
    truths = {}
    for row in range(1, count + 1):
        misset = rng.uniform(-180, 180, 3).round(3)
        truth = api.simulation(base_flags + ["-N", "6", "-cell", "60", "70", "80", "90", "90", "90",
                                             "-misset", *map(str, misset)])
        image = rng.poisson(api.jacobian(truth).image).astype(np.float32)
        write_float_image(folder / f"shot{row:02d}.bin", image)
        start = api.simulation(base_flags + ["-N", "7", "-cell", "60.18", "70.21", "80.24", "90", "90", "90",
                                             "-misset", *map(str, misset + TURN)])
        centre = base(truth, "Xbeam")
        x, y, z = misset_angles(directions(truth) @ directions(start).T)
        truths[str(row)] = dict(rotx=x, roty=y, rotz=z, a=60.0, b=70.0, c=80.0, N=6.0, scale=1.0, distance=100.0,
                                Xbeam=centre, Ybeam=centre)
        lines.append(f"shot{row:02d}.bin,{' '.join(map(str, misset + TURN))},100.4,{centre + 0.1:.6f},"
                     f"{centre + 0.1:.6f}")
    (folder / "shots.csv").write_text("\n".join(lines) + "\n")
    return truths


def rows(text: str) -> list[str]:
    return [line.split(":")[0].split()[1] for line in text.splitlines() if line.startswith("shot ")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=int, default=20)
    ap.add_argument("--pixels", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kill-after", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "refine_shots.md")
    opts = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="refine_shots_") as scratch:
        text = run(Path(scratch), opts)
    opts.out.write_text(text)
    print(text)


def run(folder: Path, opts) -> str:
    """Both runs in `folder`; the report's text."""
    truths = make_shots(folder, opts.shots, opts.pixels)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "nbnumba", "refine", "-list", "shots.csv", "-refine", REFINE, "-outdir", "out",
               "-workers", str(opts.workers), "-noprogress"]

    t0 = time.perf_counter()
    proc = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = []
    for line in proc.stdout:
        if line.startswith("shot "):
            first += rows(line)
            if len(first) >= opts.kill_after:
                proc.send_signal(signal.SIGTERM)
                break
    rest, errors = proc.communicate(timeout=600)
    first += rows(rest)
    first_seconds = time.perf_counter() - t0
    saved = sorted(p.name for p in (folder / "out").glob("shots_0*.json"))

    t1 = time.perf_counter()
    again = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
    second_seconds = time.perf_counter() - t1
    if again.returncode not in (0, 1):
        raise SystemExit(f"the resumed run failed ({again.returncode}): {again.stderr}")
    second = rows(again.stdout)

    results = {}
    for path in sorted((folder / "out").glob("shots_0*.json")):
        document = json.loads(path.read_text())
        key = str(document["row"])
        z = {p["name"]: (p["refined"] - truths[key][p["name"]]) / p["error"] for p in document["parameters"]}
        results[key] = (document["converged"], z)
    every = set(truths)
    twice = sorted(set(first) & set(second), key=int)
    lost = sorted(every - set(first) - set(second), key=int)
    recovered = [k for k, (ok, z) in results.items() if ok and max(abs(v) for v in z.values()) < RECOVERED_Z]
    within = [abs(v) < 3 for _, z in results.values() for v in z.values()]
    worst = max(abs(v) for _, z in results.values() for v in z.values())

    table = [("shots", str(opts.shots)),
             ("first run", f"SIGTERM after {opts.kill_after} rows: exit {proc.returncode}, {len(first)} rows printed, "
                           f"{len(saved)} shots saved, {first_seconds:.0f} s"),
             ("second run", f"exit {again.returncode}, {len(second)} rows printed, {second_seconds:.0f} s"),
             ("refined twice", ", ".join(twice) or "none"),
             ("lost", ", ".join(lost) or "none"),
             ("JSON files at the end", str(len(results))),
             ("recovered (converged, every parameter within 5 standard errors)", f"{len(recovered)} of {opts.shots}"),
             ("parameters within 3 standard errors", f"{100 * np.mean(within):.1f} % of {len(within)}"),
             ("largest |error| in standard errors", f"{worst:.2f}")]
    text = ["# refine: many shots through the list mode, killed and resumed", "",
            f"`python benchmarks/refine_shots.py --shots {opts.shots} --pixels {opts.pixels} --workers {opts.workers} "
            f"--kill-after {opts.kill_after}`", "", __doc__.split("\n\n")[2].replace("\n", " "), "",
            "| quantity | value |", "| --- | --- |"]
    text += [f"| {k} | {v} |" for k, v in table]
    text += ["", "| shot | converged | largest \\|error\\| / standard error | run |", "| --- | --- | --- | --- |"]
    for key in sorted(results, key=int):
        ok, z = results[key]
        run = "first" if key in first else "second" if key in second else "?"
        text.append(f"| {key} | {ok} | {max(abs(v) for v in z.values()):.2f} | {run} |")
    if errors.strip():
        text += ["", f"The first run's last line on stderr: `{errors.strip().splitlines()[-1]}`."]
    return "\n".join(text) + "\n"


if __name__ == "__main__":
    main()

"""nbnumba nonbragg against the reference nonBragg on the same cores: a 2463x2527 detector,
-oversample 2, 5 dispersion steps, every output written (float, int, noise, PGM).

    python benchmarks/nonbragg_bench.py --reference /path/to/nonBragg

The reference binary is built by the user from bl831/nanoBragg's nonBragg.c (e.g.
`gcc -O2 -o nonBragg nonBragg.c -lm`); nothing of it is kept here.  nonBragg.c has no OpenMP, so
it runs on one core whatever OMP_NUM_THREADS says; it is timed with OMP_NUM_THREADS=1 and 2 to
show that, and nbnumba with 1 and 2 threads.  Each command runs once, after one untimed nbnumba
run that fills the compile cache.  Writes reports/nonbragg_benchmark.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SUITE_INPUTS = ROOT / "tests" / "data" / "suite" / "inputs"
WORKLOAD = ["-stol", "water.stol", "-thickness", "0.1", "-density", "1", "-MW", "18", "-lambda", "1",
            "-dispersion", "2", "-dispsteps", "5", "-oversample", "2", "-flux", "1e12", "-exposure", "1",
            "-beamsize", "0.1", "-distance", "200", "-detpixels_x", "2463", "-detpixels_y", "2527",
            "-pixel", "0.172", "-seed", "1", "-noprogress"]
SHAPE = (2527, 2463)


def outputs(prefix: str) -> list[str]:
    return ["-floatfile", f"{prefix}.bin", "-intfile", f"{prefix}.img", "-noisefile", f"{prefix}_noise.img",
            "-pgmfile", f"{prefix}.pgm"]


def timed(command: list[str], cwd: Path, env: dict) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def compare(a: Path, b: Path) -> dict:
    x = np.fromfile(a, dtype="<f4").astype(np.float64)
    y = np.fromfile(b, dtype="<f4").astype(np.float64)
    return {"correlation": float(np.corrcoef(x, y)[0, 1]),
            "max_abs_diff_over_max": float(np.abs(x - y).max() / np.abs(x).max()),
            "identical_pixels": float(np.mean(x == y))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="the nonBragg binary")
    parser.add_argument("--out", default=str(ROOT / "reports" / "nonbragg_benchmark"))
    args = parser.parse_args()
    reference = str(Path(args.reference).resolve())
    base_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    nbnumba = [sys.executable, "-m", "nbnumba", "nonbragg"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "water.stol").write_bytes((SUITE_INPUTS / "water.stol").read_bytes())
        load_before = os.getloadavg()
        timed([*nbnumba, *WORKLOAD, *outputs("warm")], work, base_env)  # fills the compile cache
        runs = {}
        for threads in (1, 2):
            env = {**base_env, "OMP_NUM_THREADS": str(threads)}
            runs[f"nonBragg, OMP_NUM_THREADS={threads}"] = timed([reference, *WORKLOAD, *outputs(f"c{threads}")],
                                                                 work, env)
        for threads in (1, 2):
            env = {**base_env, "NUMBA_NUM_THREADS": "2"}
            runs[f"nbnumba, {threads} thread{'s' if threads > 1 else ''}"] = timed(
                [*nbnumba, *WORKLOAD, "-nthreads", str(threads), *outputs(f"n{threads}")], work, env)
        load_after = os.getloadavg()
        agreement = compare(work / "c1.bin", work / "n2.bin")
        agreement["noise_image_identical"] = (work / "c1_noise.img").read_bytes() == (work / "n2_noise.img").read_bytes()
        agreement["int_image_identical"] = (work / "c1.img").read_bytes() == (work / "n2.img").read_bytes()
    c_time = min(v for k, v in runs.items() if k.startswith("nonBragg"))
    result = {"workload": " ".join(WORKLOAD), "shape_slow_fast": SHAPE, "seconds": runs,
              "ratio_nbnumba_2_threads_over_c": runs["nbnumba, 2 threads"] / c_time,
              "ratio_nbnumba_1_thread_over_c": runs["nbnumba, 1 thread"] / c_time,
              "agreement": agreement, "load_average_before": load_before, "load_average_after": load_after,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# nonbragg benchmark", "",
             f"`benchmarks/nonbragg_bench.py`, {result['date']}, {result['machine']} "
             f"(load average {load_before[0]:.1f} before, {load_after[0]:.1f} after: the machine is shared).", "",
             f"Workload: `nonbragg {result['workload']}` plus every output (float, int, noise, PGM), "
             f"a {SHAPE[1]}x{SHAPE[0]} detector, 2x2 sub-pixels x 5 wavelengths = 20 evaluations a pixel.", "",
             "Wall time of the whole command (start-up, set-up, render, statistics, four files), each run once; "
             "nbnumba after one untimed run that fills its compile cache.", "",
             "| command | seconds | / nonBragg |", "| --- | --- | --- |"]
    for name, seconds in runs.items():
        lines.append(f"| {name} | {seconds:.2f} | {seconds / c_time:.2f} |")
    lines += ["", "nonBragg.c has no OpenMP: it uses one core whatever OMP_NUM_THREADS says, so the fair comparison "
              "on this 2-core machine is nbnumba on 2 threads against nonBragg's only mode, and nbnumba on 1 thread "
              "against it core for core.", "",
              f"Images (nbnumba 2 threads against nonBragg): correlation {agreement['correlation']:.9f}, "
              f"largest difference {agreement['max_abs_diff_over_max']:.3g} of the maximum, "
              f"{100 * agreement['identical_pixels']:.4f}% of pixels bit-identical, int image identical: "
              f"{agreement['int_image_identical']}, noise image identical: {agreement['noise_image_identical']}."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

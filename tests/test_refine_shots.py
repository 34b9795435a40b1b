"""`nbnumba refine -list SHOTS.csv`: each row's fit a task of the Dask cluster; a row per shot on
stdout; run again, only the shots not done are refined."""

from __future__ import annotations

import csv
import os

import numpy as np

from golden import invoke
from nbnumba import api
from nbnumba.io.images import write_float_image

BASE = ("-cell 60 70 80 90 90 90 -default_F 60 -lambda 1 -distance 100 -detpixels 96 -pixel 0.1 -gauss_xtal "
        "-oversample 1 -mosaic 0.5 -mosaic_dom 3 -N 6").split()
MISSETS = ["10 20 30", "40 -15 70", "-25 5 120"]


def test_list_mode_refines_each_shot_once_and_resumes(tmp_path):
    lines = ["# base: " + " ".join(BASE), "data,misset,distance"]
    for i, misset in enumerate(MISSETS, start=1):
        truth = api.simulation(BASE + ["-misset", *misset.split()])
        write_float_image(tmp_path / f"shot{i}.bin", api.jacobian(truth).image.astype(np.float32))
        lines.append(f"shot{i}.bin,{misset},100.3")  # each starts 0.3 mm off
    (tmp_path / "shots.csv").write_text("\n".join(lines) + "\n")
    args = ["-list", "shots.csv", "-refine", "distance,scale", "-outdir", "out", "-workers", "1", "-noprogress"]
    first = invoke("refine", args, tmp_path)
    assert first.exit_code == 0, first.output
    rows = [line for line in first.stdout.splitlines() if line.startswith("shot ")]
    assert sorted(r.split(":")[0] for r in rows) == ["shot 1", "shot 2", "shot 3"]
    with open(tmp_path / "out" / "shots_refined.csv") as f:
        table = list(csv.DictReader(f))
    assert [abs(float(r["distance"]) - 100.0) < 1e-6 for r in table] == [True] * 3
    # a shot whose files are gone (a run killed during its fit) is the only one refined again
    os.remove(tmp_path / "out" / "shots_00002.json")
    kept = os.stat(tmp_path / "out" / "shots_00001.json").st_mtime_ns
    second = invoke("refine", args, tmp_path)
    assert second.exit_code == 0, second.output
    assert [line.split(":")[0] for line in second.stdout.splitlines() if line.startswith("shot ")] == ["shot 2"]
    assert os.stat(tmp_path / "out" / "shots_00001.json").st_mtime_ns == kept
    third = invoke("refine", args, tmp_path)
    assert not [line for line in third.stdout.splitlines() if line.startswith("shot ")]


def test_an_interrupted_list_loses_no_shot_and_refines_none_twice(tmp_path):
    import signal
    import subprocess
    import sys
    lines = ["# base: " + " ".join(BASE), "data,misset,distance"]
    for i in range(1, 7):
        misset = f"{10 * i} {-5 * i} {17 * i}"
        truth = api.simulation(BASE + ["-misset", *misset.split()])
        write_float_image(tmp_path / f"shot{i}.bin", api.jacobian(truth).image.astype(np.float32))
        lines.append(f"shot{i}.bin,{misset},100.3")
    (tmp_path / "shots.csv").write_text("\n".join(lines) + "\n")
    command = [sys.executable, "-m", "nbnumba", "refine", "-list", "shots.csv", "-refine", "distance,scale",
               "-outdir", "out", "-workers", "1", "-noprogress"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = []
    for line in proc.stdout:
        first.append(line.split(":")[0])
        if len(first) == 2:
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=120)
    first += [line.split(":")[0] for line in rest.splitlines() if line.startswith("shot ")]
    assert proc.returncode == 130
    done_before = {p.name for p in (tmp_path / "out").glob("shots_0*.json")}
    assert 2 <= len(done_before) < 6
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    second = [line.split(":")[0] for line in again.stdout.splitlines() if line.startswith("shot ")]
    assert len(second) == 6 - len(done_before) and not set(second) & set(first)
    assert len(list((tmp_path / "out").glob("shots_0*.json"))) == 6

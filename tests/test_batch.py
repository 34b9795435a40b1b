"""`nbnumba sweep` and `nbnumba batch` on Dask clusters of 2 CPU worker processes, with 32x32
images: frames identical to single runs, bad rows, resuming, a worker killed mid-run."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
from golden import invoke_line as invoke

from nbnumba.batch.frames import fmt, read_jobfile
from nbnumba.errors import UserError
from nbnumba.io.smv import read_smv, smv_value

distributed = pytest.importorskip("distributed")

BASE = ["-default_F", "100", "-cell", "50", "50", "50", "90", "90", "90", "-lambda", "1", "-distance", "50",
        "-detpixels", "32", "-pixel", "0.4", "-N", "5", "-oversample", "1"]
HOOKS = "NBNUMBA_BATCH_HOOKS"



def manifest(path: Path) -> dict:
    return json.loads(path.read_text())


def render_log(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(key, int(pid)) for key, pid in (line.split() for line in path.read_text().splitlines())]


def drain(address: str, timeout: float = 30.0) -> None:
    from distributed import Client

    with Client(address) as client:
        deadline = time.monotonic() + timeout
        while any(client.run(lambda dask_worker: len(dask_worker.state.tasks)).values()):
            assert time.monotonic() < deadline, "the cluster did not finish its tasks"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes with nannies (a killed worker is restarted)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR, preload=["nbnumba.batch.jobs"],
                      env={"NUMBA_NUM_THREADS": "1"}, scheduler_kwargs={"dashboard_address": ":0"}) as c:
        yield c.scheduler_address


def test_sweep_frames_match_single_runs(tmp_path):
    flags = BASE + ["-phi", "10", "-osc", "2", "-phisteps", "2", "-misset", "random", "-seed", "7"]
    # the matching single runs first (in this process: they also refresh Numba's cache for the workers);
    # every int frame of a sweep has the scale that puts frame 1's maximum at 27500
    scale = None
    for i in range(8):
        run = invoke(["run", *flags, "-phi", fmt(10 + 2 * i), "-osc", "2", "-seed", 7 + i, "-misset_seed", 7,
                      "-intfile", f"run_{i}.img", "-floatfile", f"run_{i}.bin", "-noisefile", f"noise_{i}.img",
                      "-nopgm", "-noprogress"] + ["-scale", scale] * (scale is not None), tmp_path)
        assert run.exit_code == 0, run.output
        if scale is None:
            scale = fmt(27500.0 / float(np.fromfile(tmp_path / "run_0.bin", dtype="<f4").max()))
            run = invoke(["run", *flags, "-phi", "10", "-osc", "2", "-seed", 7, "-misset_seed", 7, "-scale", scale,
                          "-intfile", "run_0.img", "-floatfile", os.devnull, "-nonoise", "-nopgm", "-noprogress"],
                         tmp_path)
    result = invoke(["sweep", *flags, "-nframes", 8, "-outdir", "frames", "-prefix", "lyso", "-floats", "-noise",
                     "--workers", 2, "-noprogress"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "8 rendered, 0 skipped" in result.output
    out = tmp_path / "frames"
    for i in range(8):
        n = f"{i + 1:05d}"
        assert (out / f"lyso_{n}.img").read_bytes() == (tmp_path / f"run_{i}.img").read_bytes()
        assert (out / f"lyso_{n}.bin").read_bytes() == (tmp_path / f"run_{i}.bin").read_bytes()
        assert (out / f"lyso_noise_{n}.img").read_bytes() == (tmp_path / f"noise_{i}.img").read_bytes()
        header = read_smv(out / f"lyso_{n}.img").header
        assert smv_value(header, "PHI") == pytest.approx(10 + 2 * i)
        assert smv_value(header, "OSC_START") == pytest.approx(10 + 2 * i)
        assert smv_value(header, "OSC_RANGE") == pytest.approx(2)
    first = np.fromfile(out / "lyso_00001.bin", dtype="<f4")
    assert first.max() > 0 and not np.array_equal(first, np.fromfile(out / "lyso_00008.bin", dtype="<f4"))
    done = manifest(out / "lyso_manifest.json")
    assert sorted(done["frames"], key=int) == [str(i) for i in range(1, 9)]
    assert "-phi 14 -osc 2 -seed 9 -misset_seed 7 " in " ".join(done["frames"]["3"]["argv"])


def test_batch_bad_rows_are_reported_and_the_others_render(tmp_path, cluster):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("# a job file with two bad rows\n"
                    f"# base: {' '.join(BASE)} -osc 1\n"
                    "misset,N,hkl,seed\n"
                    "0 0 0,,,\n"
                    "0 0 0,abc,,\n"
                    "10 20 30,,missing.hkl,\n"
                    "10 20 30,7,,42\n")
    result = invoke(["batch", jobs, "-outdir", "out", "--scheduler", cluster, "-noprogress"], tmp_path)
    assert result.exit_code == 1, result.output
    assert "row 2 (line 5): -N expects a number, got 'abc'" in result.output
    assert "row 3 (line 6): cannot read" in result.output and "missing.hkl" in result.output
    assert "2 rendered, 0 skipped (already done), 2 failed" in result.output
    assert "error: 2 of 4 rows failed" in result.output
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*.img")) == ["jobs_00001.img", "jobs_00004.img"]
    done = manifest(out / "jobs_manifest.json")
    assert sorted(done["frames"]) == ["1", "4"] and sorted(done["failed"]) == ["2", "3"]
    # a good row is the image of the run with the same flags (and -seed ROW when it gives none)
    run = invoke(["run", *BASE, "-osc", "1", "-misset", "10", "20", "30", "-N", "7", "-seed", "42",
                  "-intfile", "row4.img", "-floatfile", os.devnull, "-nonoise", "-nopgm", "-noprogress"], tmp_path)
    assert run.exit_code == 0, run.output
    assert (tmp_path / "row4.img").read_bytes() == (out / "jobs_00004.img").read_bytes()
    # again: the good rows are skipped, the bad ones fail again
    again = invoke(["batch", jobs, "-outdir", "out", "--scheduler", cluster, "-noprogress"], tmp_path)
    assert again.exit_code == 1
    assert "0 rendered, 2 skipped (already done), 2 failed" in again.output


def test_interrupted_run_resumes_without_rendering_a_frame_twice(tmp_path, cluster, monkeypatch):
    log = tmp_path / "renders.log"
    sweep = ["sweep", *BASE, "-osc", "1", "-nframes", 8, "-outdir", "out", "--scheduler", cluster, "-noprogress"]
    monkeypatch.setenv(HOOKS, json.dumps({"render_log": str(log)}))
    first = invoke([*sweep, "-max_frames", 2], tmp_path)  # stops on purpose after 2 frames
    assert first.exit_code == 0, first.output
    assert "6 frames left" in first.output
    out = tmp_path / "out"
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.img")}
    assert sorted(stamps) == ["image_00001.img", "image_00002.img"]

    # Ctrl-C (the same KeyboardInterrupt) after two more frames: exit 130, the manifest holds what finished
    monkeypatch.setenv(HOOKS, json.dumps({"render_log": str(log), "interrupt_after": 2, "delay": 0.3}))
    second = invoke(sweep, tmp_path)
    assert second.exit_code == 130, second.output
    recorded = set(manifest(out / "image_manifest.json")["frames"])
    assert {"1", "2"} < recorded and len(recorded) < 8
    # On a cluster that outlives the client, frames already running when it stopped finish in the
    # background (written, but not recorded: they count as not done).  Let them drain.
    drain(cluster)
    before_resume = len(render_log(log))

    monkeypatch.setenv(HOOKS, json.dumps({"render_log": str(log)}))
    third = invoke(sweep, tmp_path)
    assert third.exit_code == 0, third.output
    assert f"{8 - len(recorded)} rendered, {len(recorded)} skipped" in third.output
    resumed = [key for key, _ in render_log(log)[before_resume:]]
    assert sorted(resumed, key=int) == sorted(set(map(str, range(1, 9))) - recorded, key=int)
    assert sorted(manifest(out / "image_manifest.json")["frames"], key=int) == [str(i) for i in range(1, 9)]
    for name, stamp in stamps.items():  # frames done in the first run were never rewritten
        assert (out / name).stat().st_mtime_ns == stamp
    # every frame was rendered, and none that the manifest had recorded was rendered again
    counts = {}
    for key, _ in render_log(log):
        counts[key] = counts.get(key, 0) + 1
    assert set(counts) == set(map(str, range(1, 9)))
    assert all(counts[key] == 1 for key in recorded)

    # a frame whose file disappeared is rendered again, and only that one
    (out / "image_00005.img").unlink()
    fourth = invoke(sweep, tmp_path)
    assert fourth.exit_code == 0 and "1 rendered, 7 skipped" in fourth.output
    assert render_log(log)[-1][0] == "5"

    # -first: a part of the same sweep (same angles, seeds, names), here into another directory
    part = invoke(["sweep", *BASE, "-osc", "1", "-nframes", 2, "-first", 7, "-outdir", "part",
                   "--scheduler", cluster, "-noprogress"], tmp_path)
    assert part.exit_code == 0, part.output
    for name in ("image_00007.img", "image_00008.img"):
        assert (tmp_path / "part" / name).read_bytes() == (out / name).read_bytes()
    assert sorted(manifest(tmp_path / "part/image_manifest.json")["frames"]) == ["7", "8"]


def test_manifest_keeps_the_records_of_commands_sharing_it(tmp_path):
    from nbnumba.batch.frames import Frame
    from nbnumba.batch.manifest import Manifest

    path = str(tmp_path / "image_manifest.json")
    frames = [Frame(str(k), f"frame {k}", ("-N", "1"), (), f"hash{k}", "job") for k in (1, 2, 3)]
    one, two = Manifest(path, "sweep").open(), Manifest(path, "sweep").open()
    one.record(frames[0], {"seconds": 1.0})
    two.record(frames[1], {"seconds": 2.0})
    two.record_failure("3", "frame 3", "boom")
    one.flush()
    two.flush()
    again = Manifest(path, "sweep").open()
    assert again.is_done(frames[0]) and again.is_done(frames[1]) and not again.is_done(frames[2])
    assert again.data["failed"]["3"]["error"] == "boom"
    stale = Frame("1", "frame 1", ("-N", "2"), (), "other", "job")
    assert not again.is_done(stale)


def test_frames_survive_a_killed_worker(tmp_path, cluster, monkeypatch):
    log, marker = tmp_path / "renders.log", tmp_path / "killed"
    monkeypatch.setenv(HOOKS, json.dumps({"render_log": str(log), "kill_marker": str(marker), "kill_key": 3}))
    result = invoke(["sweep", *BASE, "-osc", "1", "-nframes", 6, "-outdir", "out", "--scheduler", cluster,
                     "-noprogress"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "6 rendered, 0 skipped (already done), 0 failed" in result.output
    killed = int(marker.read_text())  # the worker that started frame 3 died (SIGKILL) ...
    renders = dict(render_log(log))
    assert sorted(renders, key=int) == [str(i) for i in range(1, 7)]
    assert renders["3"] != killed  # ... and another process rendered it
    assert len(list((tmp_path / "out").glob("image_0000?.img"))) == 6


def test_gpu_workers_are_pinned_one_per_device(tmp_path, monkeypatch):
    # no GPU here: pretend there are two, to check the per-GPU worker pinning (frames render on CPU)
    monkeypatch.setenv(HOOKS, json.dumps({"fake_gpus": 2, "delay": 0.5}))
    result = invoke(["sweep", *BASE, "-osc", "1", "-nframes", 4, "-outdir", "out", "-noprogress"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "2 GPU workers (CUDA_VISIBLE_DEVICES 0,1)" in result.output
    frames = manifest(tmp_path / "out/image_manifest.json")["frames"].values()
    pins = {entry["cuda_visible_devices"] for entry in frames}
    assert pins and pins <= {"0", "1"}


def test_job_file_format(tmp_path):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("# comment\n# base: -default_F 10 -hkl 'my file.hkl'\n# base: -N 3\n\n"
                    "-misset, interpolate ,hkl,args\n"
                    "10 20 30,1,a b.hkl,-phi 5 -osc 1\n"
                    "random,no,,\n")
    base, columns, rows = read_jobfile(str(jobs))
    assert base == ["-default_F", "10", "-hkl", "my file.hkl", "-N", "3"]
    assert [c.name for c in columns] == ["-misset", "-interpolate", "-hkl", "args"]
    assert [(n, line) for n, line, _ in rows] == [(1, 6), (2, 7)]
    from nbnumba.batch.frames import cell_tokens
    tokens = [t for c, cell in zip(columns, rows[0][2]) for t in cell_tokens(c, cell, "cell")]
    assert tokens == ["-misset", "10", "20", "30", "-interpolate", "-hkl", "a b.hkl", "-phi", "5", "-osc", "1"]
    jobs.write_text("misset,bogus_flag\n0 0 0,1\n")
    with pytest.raises(UserError, match="column 'bogus_flag' is not a run flag"):
        read_jobfile(str(jobs))


def test_usage_mistakes_stop_before_any_cluster(tmp_path):
    no_count = invoke(["sweep", *BASE, "-osc", "1"], tmp_path)
    assert no_count.exit_code == 2 and "-nframes" in no_count.output
    named = invoke(["sweep", *BASE, "-osc", "1", "-nframes", 2, "-intfile", "x.img"], tmp_path)
    assert named.exit_code == 2 and "remove -intfile" in named.output
    no_osc = invoke(["sweep", *BASE, "-nframes", 2], tmp_path)
    assert no_osc.exit_code == 2 and "-osc" in no_osc.output
    missing = invoke(["sweep", *BASE, "-osc", "1", "-nframes", 2, "-hkl", "nothere.hkl"], tmp_path)
    assert missing.exit_code == 2 and "nothere.hkl" in missing.output
    assert not (tmp_path / "image_manifest.json").exists()


SUITE = Path(__file__).resolve().parent / "data" / "suite"


def test_hdf5_training_set_labels_every_rows_geometry_and_varied_parameter(tmp_path, cluster):
    """20 rows varying the distance, the beam centre, the background's table (a text parameter)
    and the seed, with random orientations: each row's detector and beam, each varied parameter
    (units as attributes) and the table's file name (made absolute for the workers) read back
    equal to the job file; each row has its own mosaic seed."""
    h5py = pytest.importorskip("h5py")
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    tables = [f"inputs/{name}" for name in ("water.stol", "ice.stol", "air.stol")]
    rows = [(40 + 2 * i, 5 + 0.2 * i, 7 - 0.1 * i, tables[i % 3], 100 + i) for i in range(20)]
    jobs = tmp_path / "set.csv"
    jobs.write_text(f"# base: {' '.join(BASE)} -misset random -mosaic 0.5 -mosaic_dom 2 -bg_thick 0.001\n"
                    "distance,Xbeam,Ybeam,bg_stol,seed\n"
                    + "".join(f"{d},{fmt(x)},{fmt(y)},{t},{s}\n" for d, x, y, t, s in rows))
    out = invoke(["batch", jobs, "-format", "hdf5", "-out", "set.h5", "--scheduler", cluster, "-noprogress"], tmp_path)
    assert out.exit_code == 0, out.output
    argvs = manifest(tmp_path / "set_manifest.json")["frames"]
    pixel = 0.4e-3
    with h5py.File(tmp_path / "set.h5") as f:
        assert f["written"][()].tolist() == [1] * 20
        columns = list(f["labels"].attrs["columns"])
        units = dict(zip(columns, f["labels"].attrs["units"]))
        labels = {name: f["labels"][:, k] for k, name in enumerate(columns)}
        text = {name: f["text_labels"][:, k].astype(str) for k, name in enumerate(f["text_labels"].attrs["columns"])}
        geometry = {name: f["geometry"][name][()] for name in f["geometry"]}
        geometry_units = {name: f["geometry"][name].attrs["units"] for name in f["geometry"]}
        order = f["geometry/beam_center"].attrs["order"]
    assert {"distance", "Xbeam", "Ybeam", "seed", "mosaic_seed"} <= set(columns)
    assert (units["distance"], units["Xbeam"], units["seed"], units["A_star_ax"]) == ("m", "m", "", "1/angstrom")
    assert list(text) == ["bg_stol_file"]
    assert (geometry_units["distance"], geometry_units["pix0"], geometry_units["beam_center_px"]) == ("m", "m",
                                                                                                      "pixels")
    assert order.startswith("fast, slow")
    for i, (distance, xbeam, ybeam, table, seed) in enumerate(rows):
        assert labels["distance"][i] == pytest.approx(distance / 1000, rel=1e-12)
        assert (labels["Xbeam"][i], labels["Ybeam"][i]) == pytest.approx((xbeam / 1000, ybeam / 1000), rel=1e-12)
        assert labels["seed"][i] == seed and text["bg_stol_file"][i] == str(tmp_path / table)  # made absolute
        argv = argvs[str(i + 1)]["argv"]
        assert argv[argv.index("-mosaic_seed") + 1] == str(i + 1) and labels["mosaic_seed"][i] == i + 1
        # MOSFLM: the beam lands half a pixel beyond -Ybeam along fast and -Xbeam along slow
        fast, slow = ybeam / 1000 + pixel / 2, xbeam / 1000 + pixel / 2
        assert geometry["distance"][i] == pytest.approx(distance / 1000, rel=1e-12)
        assert geometry["wavelength"][i] == pytest.approx(1e-10, rel=1e-12)
        assert geometry["beam_center"][i] == pytest.approx([fast, slow], rel=1e-12)
        assert geometry["beam_center_px"][i] == pytest.approx([fast / pixel, slow / pixel], rel=1e-12)
        assert geometry["pix0"][i] == pytest.approx([distance / 1000, slow, -fast], rel=1e-12)
        assert geometry["fdet"][i] == pytest.approx([0, 0, 1]) and geometry["beam"][i] == pytest.approx([1, 0, 0])
    assert len(set(labels["A_star_ax"])) == 20  # random orientations, one per row

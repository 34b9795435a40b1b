"""The faults a hostile trial found (issue 23), each as the behaviour promised instead: a user's
mistake is one line on stderr and exit 2, a failing environment one line and exit 1, never a
traceback or an internal error, never one of the user's files replaced unless every output of
the command was written, never two writers on one output.

Full-disk tests mount a small tmpfs (root only; skipped elsewhere)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from golden import invoke
from test_bad_input import assert_clean_failure, error_lines

ROOT = Path(__file__).resolve().parents[1]
SMALL = ("-cell 100 100 100 90 90 90 -default_F 100 -lambda 6.2 -N 3 -distance 100 -detpixels 16 "
         "-pixel 0.1 -nopgm -noprogress").split()
# frames of a fraction of a second each
FRAME = ["-default_F", "100", "-cell", "50", "50", "50", "90", "90", "90", "-lambda", "1", "-distance", "50",
         "-detpixels", "32", "-pixel", "0.4", "-N", "5", "-osc", "1", "-noprogress"]
WATER = ["-thickness", "0.1", "-density", "1", "-MW", "18", "-lambda", "1", "-flux", "1e12", "-exposure", "1",
         "-beamsize", "0.1", "-distance", "100", "-pixel", "0.2", "-detpixels", "8", "-noprogress", "-nopgm"]
STOL = "0 2.57\n0.0398 2.57\n0.1 2.0\n0.2 1.5\n0.3 1.2\n0.5 1.0\n"


def nbnumba(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 600, **kw):
    full = dict(os.environ, **(env or {}))
    full["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [full.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-W", "ignore", "-m", "nbnumba", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout, **kw)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("[")]
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    errors = [line for line in lines if line.startswith("nbnumba: ")]
    assert len(errors) == 1, stderr
    return errors[0]


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of `size` mounted on `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the file system of `folder`, leaving about `leave` bytes."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize - leave
    if free > 0:
        with open(folder / "filler", "wb") as f:
            f.write(b"\0" * free)


# ---------------------------------------------------------------- 2: all outputs or none

def test_a_failed_last_output_leaves_every_earlier_file_as_it_was(tmp_path):
    earlier = {"f.bin": b"earlier float image", "i.img": b"earlier int image"}
    for name, data in earlier.items():
        (tmp_path / name).write_bytes(data)
    with small_disk(tmp_path / "full", "64k") as full:
        (full / "n.img").write_bytes(b"earlier noise image")
        fill(full)
        result = invoke("run", [*SMALL, "-floatfile", "f.bin", "-intfile", "i.img", "-noisefile", "full/n.img"],
                        tmp_path)
        assert result.exit_code == 1, result.output
        assert "n.img" in error_lines(result)[-1] and "Traceback" not in result.output
        assert (full / "n.img").read_bytes() == b"earlier noise image"
        assert [p.name for p in full.iterdir()] == ["n.img", "filler"] or \
            sorted(p.name for p in full.iterdir()) == ["filler", "n.img"]
    for name, data in earlier.items():
        assert (tmp_path / name).read_bytes() == data, f"{name} was replaced though the command failed"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "full") == ["f.bin", "i.img"]


# ---------------------------------------------------------------- 3: a full disk under one-file sinks

@pytest.mark.parametrize("command", ["batch", "sweep"])
def test_a_full_disk_under_a_one_file_job_is_one_line(tmp_path, command):
    """The job's one HDF5 file on a disk that fills up after two frames (the manifest elsewhere)."""
    with small_disk(tmp_path / "full", "1m") as full:
        if command == "batch":
            jobs = tmp_path / "jobs.csv"
            jobs.write_text("# base: " + " ".join(FRAME[:-3]) + " -detpixels 256\nmisset\n"
                            + "".join(f"{i} 0 0\n" for i in range(12)))
            args = ["batch", str(jobs), "-format", "hdf5", "-out", str(full / "set.h5")]
        else:
            (tmp_path / "out").mkdir()
            (tmp_path / "out" / "image.nxs").symlink_to(full / "image.nxs")
            args = ["sweep", *FRAME, "-detpixels", "256", "-nframes", "12", "-format", "nexus", "-floats",
                    "-scale", "1"]
        done = nbnumba([*args, "-compression", "none", "-outdir", "out", "--workers", "1", "-noprogress"],
                       tmp_path)
        assert done.returncode == 1, done.stderr
        message = one_line(done.stderr)
        assert "No space left on device" in message, message
        manifest = json.loads((tmp_path / "out" / next((tmp_path / "out").glob("*_manifest.json")).name)
                              .read_text())
        assert 1 <= len(manifest["frames"]) < 12


# ---------------------------------------------------------------- 4: one path, two outputs

@pytest.mark.parametrize("outputs", [["-floatfile", "x", "-intfile", "x", "-nonoise"],
                                     ["-floatfile", "f.bin", "-intfile", "i.img", "-noisefile", "./i.img"],
                                     ["-floatfile", "f.bin", "-intfile", "i.img", "-nonoise", "-nexus", "f.bin"]])
def test_run_refuses_one_path_for_two_outputs(tmp_path, outputs):
    result = invoke("run", [*SMALL, *outputs], tmp_path)
    message = assert_clean_failure(result, 2, tmp_path, [])
    assert "two outputs" in message or "both" in message, message


def test_a_batch_row_naming_one_file_for_two_outputs_is_refused(tmp_path, monkeypatch):
    from nbnumba.batch.frames import Outputs, batch_frames

    monkeypatch.chdir(tmp_path)
    (tmp_path / "P1.hkl").write_text("0 0 1 100\n")
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("# base: " + " ".join(FRAME[:-3]) + "\nargs\n-noisefile a.img -intfile a.img\n"
                    "-hkl P1.hkl -intfile P1.hkl\n-intfile b.img\n")
    job = batch_frames(str(jobs), [], Outputs(outdir=str(tmp_path)))
    assert [f.key for f in job.frames] == ["3"]
    (key1, _, one), (key2, _, two) = job.errors
    assert (key1, key2) == ("1", "2")
    assert "named for two outputs" in one and "is an input" in two


def test_noisify_refuses_to_overwrite_its_input(tmp_path):
    image = np.arange(64, dtype=np.float32)
    (tmp_path / "f.bin").write_bytes(image.tobytes())
    before = sorted(os.listdir(tmp_path))
    result = invoke("noisify", ["-floatfile", "f.bin", "-detpixels", "8", "-intfile", "f.bin", "-nopgm",
                                "-nonoise"], tmp_path)
    assert_clean_failure(result, 2, tmp_path, before)
    assert (tmp_path / "f.bin").read_bytes() == image.tobytes()


def test_nonbragg_refuses_one_path_for_two_outputs(tmp_path):
    (tmp_path / "water.stol").write_text(STOL)
    before = sorted(os.listdir(tmp_path))
    result = invoke("nonbragg", ["-stol", "water.stol", *WATER, "-floatfile", "a.bin", "-intfile", "a.bin",
                                 "-nonoise"], tmp_path)
    assert_clean_failure(result, 2, tmp_path, before)


def test_compare_and_trace_diff_refuse_a_report_over_their_inputs(tmp_path):
    done = invoke("run", [*SMALL, "-floatfile", "f.bin", "-intfile", "a.img", "-nonoise"], tmp_path)
    assert done.exit_code == 0, done.output
    (tmp_path / "t.log").write_text("TRACE_C: lambda_meters 6.2e-10\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for command in (["compare", "a.img", "a.img", "--json", "a.img"],
                    ["compare", "a.img", "./a.img", "--png-dir", ".", "--json", "b.png"],
                    ["trace-diff", "t.log", "t.log", "--json", "t.log"]):
        result = invoke(command[0], command[1:], tmp_path)
        assert result.exit_code == 2, result.output
        assert "is an input" in error_lines(result)[-1] or "two outputs" in error_lines(result)[-1]
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# ---------------------------------------------------------------- 5: -sourcefile weights

@pytest.mark.parametrize("weights", [(0, 0), (1, -1), (1, -0.5)], ids=["zero", "cancel", "negative"])
def test_nonbragg_refuses_source_weights_that_do_not_add_up(tmp_path, weights):
    (tmp_path / "water.stol").write_text(STOL)
    (tmp_path / "sources.txt").write_text("".join(f"-10 0 0 {w} 1e-10\n" for w in weights))
    before = sorted(os.listdir(tmp_path))
    result = invoke("nonbragg", ["-stol", "water.stol", *WATER, "-sourcefile", "sources.txt",
                                 "-floatfile", "a.bin", "-intfile", "a.img", "-nonoise"], tmp_path)
    message = assert_clean_failure(result, 2, tmp_path, before)
    assert "sources.txt" in message and "weight" in message, message


# ---------------------------------------------------------------- 6: tables with nan or words

@pytest.mark.parametrize("bad", ["nan", "water", "NaN"])
def test_nonbragg_refuses_a_stol_table_with_a_value_that_is_not_a_number(tmp_path, bad):
    (tmp_path / "water.stol").write_text(STOL.replace("0.2 1.5", f"0.2 {bad}"))
    before = sorted(os.listdir(tmp_path))
    result = invoke("nonbragg", ["-stol", "water.stol", *WATER, "-floatfile", "a.bin", "-intfile", "a.img",
                                 "-nonoise"], tmp_path)
    message = assert_clean_failure(result, 2, tmp_path, before)
    assert "water.stol" in message and "line 4" in message, message


@pytest.mark.parametrize("bad", ["nan", "oops"])
def test_run_refuses_a_bg_stol_table_with_a_value_that_is_not_a_number(tmp_path, bad):
    (tmp_path / "water.stol").write_text(STOL.replace("0.3 1.2", f"0.3 {bad}"))
    before = sorted(os.listdir(tmp_path))
    result = invoke("run", [*SMALL, "-bg_stol", "water.stol", "-floatfile", "a.bin", "-intfile", "a.img",
                            "-nonoise"], tmp_path)
    assert_clean_failure(result, 2, tmp_path, before)


# ---------------------------------------------------------------- 7: frames that will not be rendered cost nothing

def test_a_sweep_job_does_no_work_per_frame_it_does_not_render(tmp_path, monkeypatch):
    from nbnumba.batch import frames as frames_module
    from nbnumba.batch.frames import Outputs, sweep_frames

    calls = []
    real = frames_module.digest

    def counted(*args):
        calls.append(1)
        if len(calls) > 100:
            raise AssertionError("a hash per frame of the whole sweep")
        return real(*args)

    monkeypatch.setattr(frames_module, "digest", counted)
    monkeypatch.chdir(tmp_path)
    job = sweep_frames([*FRAME, "-scale", "1"], 999999999999, Outputs(outdir=str(tmp_path)))
    assert job.total == 999999999999 and len(job.frames) == 999999999999
    frame = job.frames[999999999998]
    assert frame.key == "999999999999" and "-seed" in frame.argv
    assert frame.argv[frame.argv.index("-phi") + 1] == "999999999998"
    short = sweep_frames([*FRAME, "-scale", "1"], 2, Outputs(outdir=str(tmp_path))).frames[1].argv
    long = job.frames[1].argv
    assert long[:long.index("-floatfile")] == short[:short.index("-floatfile")]


# ---------------------------------------------------------------- 8: --scheduler

def test_a_scheduler_that_is_not_an_address_is_a_user_mistake(tmp_path):
    result = invoke("sweep", [*FRAME, "-nframes", "2", "-outdir", "out", "--scheduler", "notaurl"], tmp_path)
    assert result.exit_code == 2, result.output
    message = error_lines(result)[-1]
    assert message.startswith("nbnumba: error: --scheduler") and "internal error" not in result.output, message


def test_an_unreachable_scheduler_is_reported_quickly(tmp_path):
    t0 = time.monotonic()
    result = invoke("sweep", [*FRAME, "-nframes", "2", "-outdir", "out", "--scheduler", "tcp://127.0.0.1:9"],
                    tmp_path)
    seconds = time.monotonic() - t0
    print(f"\nunreachable scheduler reported after {seconds:.1f} s")
    assert result.exit_code == 1, result.output
    assert "cannot reach the Dask scheduler" in error_lines(result)[-1]
    assert seconds < 20, "the 30 s default connection timeout"


# ---------------------------------------------------------------- 10: two one-file sweeps at once

def test_two_nexus_sweeps_into_one_file_at_once_are_refused(tmp_path):
    """Whether or not HDF5 locks its files (it does not on many network file systems)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NBNUMBA_BATCH_HOOKS=json.dumps({"delay": 1.0}),
               HDF5_USE_FILE_LOCKING="FALSE")
    first = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "nbnumba", "sweep", *FRAME, "-nframes", "6",
                              "-scale", "1", "-format", "nexus", "-outdir", "out", "--workers", "1"],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 300
        while not (tmp_path / "out" / "image.nxs").exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < end
            time.sleep(0.1)
        second = nbnumba(["sweep", *FRAME, "-nframes", "6", "-scale", "1", "-mosaic", "0.1", "-format", "nexus",
                          "-outdir", "out", "--workers", "1"], tmp_path, env={"HDF5_USE_FILE_LOCKING": "FALSE"})
        assert second.returncode == 1, second.stderr
        assert "another command is writing" in one_line(second.stderr)
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
    manifest = json.loads((tmp_path / "out" / "image_manifest.json").read_text())
    assert all("-mosaic" not in entry["argv"] for entry in manifest["frames"].values())


# ---------------------------------------------------------------- 11: smaller ones

def test_a_refused_bg_stol_table_writes_no_fdump(tmp_path):
    (tmp_path / "bad.stol").write_text("0 1\n")
    (tmp_path / "P1.hkl").write_text("0 0 1 100\n1 0 0 100\n")
    before = sorted(os.listdir(tmp_path))
    result = invoke("run", [*SMALL, "-hkl", "P1.hkl", "-bg_stol", "bad.stol", "-floatfile", "a.bin",
                            "-intfile", "a.img", "-nonoise"], tmp_path)
    assert_clean_failure(result, 2, tmp_path, before)


def test_a_sweep_with_a_refused_bg_stol_table_stops_before_any_cluster(tmp_path):
    (tmp_path / "water.stol").write_text(STOL.replace("0.3 1.2", "0.3 oops"))
    result = invoke("sweep", [*FRAME, "-nframes", "2", "-scale", "1", "-bg_stol", "water.stol", "-outdir", "out"],
                    tmp_path)
    assert result.exit_code == 2, result.output
    assert "water.stol line 5" in error_lines(result)[-1] and "CPU worker" not in result.output


@pytest.mark.parametrize("flag", [["-fluence", "-1"], ["-gain", "-1e300"], ["-gain", "0"]])
def test_noisify_refuses_values_outside_their_domain(tmp_path, flag):
    (tmp_path / "f.bin").write_bytes(np.ones(64, dtype=np.float32).tobytes())
    before = sorted(os.listdir(tmp_path))
    result = invoke("noisify", ["-floatfile", "f.bin", "-detpixels", "8", *flag, "-nopgm", "-nonoise"], tmp_path)
    message = assert_clean_failure(result, 2, tmp_path, before)
    assert flag[0] in message, message


def test_trace_announces_no_estimate_of_the_whole_image(tmp_path):
    """The image would be minutes of rendering; trace renders one pixel."""
    flags = [f for f in SMALL if f != "-noprogress"]
    flags[flags.index("-detpixels") + 1] = "1024"
    result = invoke("trace", ["--pixel", "1", "1", *flags, "-oversample", "20", "-phisteps", "50", "-osc", "1"],
                    tmp_path)
    assert result.exit_code == 0, result.output
    assert "TRACE_PY" in result.output and "of rendering" not in result.output, result.output[:300]


def test_nonbragg_estimates_a_long_render(tmp_path, monkeypatch):
    from nbnumba.amorphous.nonbragg_setup import build, work

    monkeypatch.chdir(tmp_path)
    (tmp_path / "water.stol").write_text(STOL + "1.0 0.8\n")
    flags = ["-stol", "water.stol", *WATER, "-pixel", "0.1", "-detpixels", "2048", "-oversample", "8",
             "-nthreads", "2"]
    estimate = work(build(flags))
    assert estimate.steps == 2048 * 2048 * 64 and estimate.worth_saying()
    assert estimate.summary().endswith("(4194304 pixels x 8x8 sub-pixels x 1 source), 72 ns per step on 2 CPU threads")
    assert not work(build([*flags[:-6], "-detpixels", "64", "-oversample", "2"])).worth_saying()


# ---------------------------------------------------------------- 1: Ctrl-C in a terminal

@pytest.mark.parametrize("workers, group", [("1", True), ("2", True), ("2", False)],
                         ids=["1-worker", "2-workers", "2-workers-parent-only"])
def test_ctrl_c_early_in_a_sweep_is_quiet_and_quick(tmp_path, workers, group):
    """SIGINT to the whole process group (Ctrl-C in a terminal) or to the command alone, while
    its workers start."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "nbnumba", "sweep", *FRAME, "-nframes", "8",
                             "-oversample", "20", "-scale", "1", "-outdir", "out", "--workers", workers],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        end = time.monotonic() + 300
        while not (tmp_path / "out").exists():
            assert proc.poll() is None and time.monotonic() < end
            time.sleep(0.05)
        time.sleep(1.0)  # the workers are starting
        sent = time.monotonic()
        if group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        latency = time.monotonic() - sent
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    text = err.decode(errors="replace")
    print(f"\nSIGINT to the {'group' if group else 'command'}, {workers} workers: exit {proc.returncode} {latency:.2f} s after the signal")
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert text.splitlines()[-1] == "nbnumba: interrupted", text
    assert latency < 2.0  # measured: 0.02-0.3 s; the grace given to a rendering job was 3 s


# ---------------------------------------------------------------- 9: the scheduler dies

def _frames_on_disk(out: Path) -> dict[str, float]:
    return {str(int(p.stem.rsplit("_", 1)[1])): p.stat().st_mtime for p in out.glob("image_*.img")}


def test_a_dead_scheduler_ends_the_sweep_with_the_manifest_complete(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_NUM_THREADS="1")
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    scheduler = subprocess.Popen([*dask, "--port", "0", "--no-dashboard", "--scheduler-file", "s.json"],
                                 cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        end = time.monotonic() + 120
        while not (tmp_path / "s.json").exists():
            assert time.monotonic() < end
            time.sleep(0.1)
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", "s.json",
                                   "--nthreads", "1", "--nworkers", "2", "--preload", "nbnumba.batch.jobs",
                                   "--no-dashboard"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        address = json.loads((tmp_path / "s.json").read_text())["address"]
        out = tmp_path / "out"
        sweep = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "nbnumba", "sweep", *FRAME, "-nframes", "12",
                                  "-scale", "1", "-outdir", "out", "--scheduler", address],
                                 cwd=tmp_path, env=dict(env, NBNUMBA_BATCH_HOOKS=json.dumps({"delay": 0.5})),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while len(_frames_on_disk(out) if out.exists() else {}) < 3:
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < end + 300
            time.sleep(0.05)
        scheduler.kill()
        stdout, stderr = sweep.communicate(timeout=120)
        ended = time.time()
        os.killpg(worker.pid, signal.SIGKILL)
    finally:
        scheduler.kill()
        if worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
    assert sweep.returncode == 1, stderr
    message = one_line(stderr)
    assert "scheduler" in message and "run the same command again" in message, message
    recorded = set(json.loads((out / "image_manifest.json").read_text())["frames"])
    on_disk = _frames_on_disk(out)
    assert recorded <= set(on_disk)
    assert {key for key, mtime in on_disk.items() if mtime < ended - 0.5} <= recorded

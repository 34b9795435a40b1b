"""NeXus/HDF5 outputs: the lab-to-McStas conversion, the NXmx geometry chain against nbnumba's own
detector vectors, `run -nexus`, `sweep -format nexus` (equal to the SMV sweep, one int scale,
killed and resumed), `batch -format hdf5` (labels against the manifest)."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from golden import invoke_line as invoke

from nbnumba.io import nexus
from nbnumba.io.smv import read_smv

h5py = pytest.importorskip("h5py")
distributed = pytest.importorskip("distributed")

BASE = ["-default_F", "100", "-cell", "50", "50", "50", "90", "90", "90", "-lambda", "1", "-distance", "50",
        "-detpixels", "32", "-pixel", "0.4", "-N", "5", "-oversample", "1"]
SWEEP = BASE + ["-misset", "10", "20", "30", "-osc", "3", "-phisteps", "2"]
HOOKS = "NBNUMBA_BATCH_HOOKS"
ROOT = Path(__file__).resolve().parents[1]



@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR, preload=["nbnumba.batch.jobs"],
                      env={"NUMBA_NUM_THREADS": "1"}, scheduler_kwargs={"dashboard_address": ":0"}) as c:
        yield c.scheduler_address


def contents(path: Path) -> dict:
    """Every dataset of an HDF5 file but its creation time."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.endswith("start_time"):
                out[name] = obj[()]
        f.visititems(visit)
    return out


# ---------------------------------------------------------------- the frame conversion

def test_lab_to_mcstas_is_the_rotation_that_puts_the_beam_on_z():
    M = nexus.lab_to_mcstas((1, 0, 0))
    assert np.array_equal(M, [[0, 0, -1], [0, 1, 0], [1, 0, 0]])
    for beam in [(1, 0, 0), (0, 0, 1), (-1, 0, 0), (0.3, -0.2, 0.9), (0, 1, 0)]:
        M = nexus.lab_to_mcstas(beam)
        assert np.allclose(M @ M.T, np.eye(3), atol=1e-14) and np.linalg.det(M) == pytest.approx(1.0)
        assert np.allclose(M @ (np.array(beam) / np.linalg.norm(beam)), [0, 0, 1], atol=1e-14)


GEOMETRIES = [
    [],
    ["-twotheta", "20", "-detector_rotx", "3", "-detector_roty", "-2", "-detector_rotz", "5"],
    ["-pivot", "sample", "-twotheta", "15", "-detector_rotz", "4", "-Xbeam", "5", "-Ybeam", "7"],
    ["-xds", "-twotheta", "10", "-ORGX", "12", "-ORGY", "20"],
    ["-dials", "-detector_roty", "6"],
    ["-spindle_axis", "0", "1", "0", "-beam_vector", "1", "0", "0", "-twotheta_axis", "0", "0", "1",
     "-twotheta", "8", "-detector_thick", "320"],
]


@pytest.mark.parametrize("extra", GEOMETRIES, ids=lambda e: " ".join(e) or "default")
def test_the_nxmx_chain_puts_every_pixel_where_nbnumba_does(tmp_path, extra):
    from nbnumba.model.simulation import build
    sim = build(BASE + ["-detpixels_x", "40"] + extra)
    det = sim.detector
    path = tmp_path / "one.nxs"
    nexus.write_image(str(path), nexus.geometry(sim, "nbnumba run test"), np.zeros(sim.shape, np.uint16))
    got = nexus.read_geometry(str(path))
    M = nexus.lab_to_mcstas(det.beam)
    assert np.allclose(got["origin_mm"], M @ np.array(det.pix0) * 1000.0, atol=1e-9)
    assert np.allclose(got["fast"], M @ np.array(det.fdet), atol=1e-12)
    assert np.allclose(got["slow"], M @ np.array(det.sdet), atol=1e-12)
    assert np.allclose(got["spindle"], M @ np.array(det.spindle), atol=1e-12)
    assert got["shape"] == (32, 40) and got["pixel_mm"] == pytest.approx(0.4)
    if det.beam == (1.0, 0.0, 0.0):  # the DIALS origin nbnumba prints is the same point in imgCIF axes
        assert np.allclose(np.diag([-1, 1, -1]) @ got["origin_mm"], det.dials_origin, atol=1e-9)
    with h5py.File(path) as f:
        assert f["entry/definition"][()] == b"NXmx"
        thick = f["entry/instrument/detector/sensor_thickness"][()]
        assert thick == (pytest.approx(0.32) if "-detector_thick" in extra else nexus.THIN_MM)


# ---------------------------------------------------------------- run -nexus

def test_run_nexus_holds_the_smv_images(tmp_path):
    fabio = pytest.importorskip("fabio")
    flags = ["run", *BASE, "-misset", "5", "6", "7", "-seed", "4", "-nopgm", "-noprogress", "-floatfile", "a.bin"]
    done = invoke([*flags, "-intfile", "a.img", "-noisefile", "n.img", "-nexus", "a.nxs"], tmp_path)
    assert done.exit_code == 0, done.output
    quiet = invoke([*flags, "-intfile", "b.nxs", "-nonoise", "-nexus", "b_int.nxs"], tmp_path)
    assert quiet.exit_code == 0, quiet.output
    noise, counts = read_smv(tmp_path / "n.img").data, read_smv(tmp_path / "a.img").data
    floats = np.fromfile(tmp_path / "a.bin", dtype="<f4").reshape(32, 32)
    assert np.array_equal(nexus.read_frame(str(tmp_path / "a.nxs")), noise)
    assert np.array_equal(fabio.open(str(tmp_path / "a.nxs")).data, noise)
    assert np.array_equal(nexus.read_frame(str(tmp_path / "b_int.nxs")), counts)
    assert np.array_equal(nexus.read_frame(str(tmp_path / "b.nxs")), counts)  # an int output named .nxs
    with h5py.File(tmp_path / "a.nxs") as f:
        assert np.array_equal(f[nexus.FLOATS][0], floats)
        assert "-nexus a.nxs" in f["entry/command_line/data"][()].decode()
        assert f["entry/instrument/detector/saturation_value"][()] == 65535
        assert f["entry/instrument/beam/incident_wavelength"][()] == pytest.approx(1.0)
    # compare and the API read them too
    from nbnumba import api
    assert np.array_equal(api.read_image(tmp_path / "a.nxs"), noise)
    same = invoke(["compare", "a.nxs", "n.img", "--frame", "1"], tmp_path)
    assert same.exit_code == 0 and "max |diff|   0" in same.output, same.output
    beyond = invoke(["compare", "a.nxs", "n.img", "--frame", "2"], tmp_path)
    assert beyond.exit_code == 2 and "no frame 2: it has 1 (1..1)" in beyond.output


# ---------------------------------------------------------------- sweeps

def test_nexus_sweep_equals_the_smv_sweep_with_one_int_scale(tmp_path, cluster):
    fabio = pytest.importorskip("fabio")
    common = ["sweep", *SWEEP, "-nframes", 4, "--scheduler", cluster, "-noprogress"]
    smv = invoke([*common, "-outdir", "smv", "-floats"], tmp_path)
    assert smv.exit_code == 0, smv.output
    nxs = invoke([*common, "-outdir", "nxs", "-format", "nexus", "-floats"], tmp_path)
    assert nxs.exit_code == 0, nxs.output
    path = tmp_path / "nxs" / "image.nxs"
    stack = nexus.read_frames(str(path))
    image = fabio.open(str(path))
    assert stack.shape == (4, 32, 32) and image.nframes == 4
    maxima = []
    for i in range(4):
        frame = read_smv(tmp_path / "smv" / f"image_{i + 1:05d}.img").data
        floats = np.fromfile(tmp_path / "smv" / f"image_{i + 1:05d}.bin", dtype="<f4").reshape(32, 32)
        assert np.array_equal(stack[i], frame)
        assert np.array_equal(image.getframe(i).data, frame)
        assert np.array_equal(nexus.read_frame(str(path), i, nexus.FLOATS), floats)
        from nbnumba import api
        assert np.array_equal(api.read_image(path, i + 1), frame)
        maxima.append(float(floats.max()))
    assert max(maxima) > 1.2 * min(maxima)  # frames whose brightest pixels differ ...
    with h5py.File(path) as f:
        scale = float(f["entry/simulation/int_scale"][()])
        assert np.allclose(f["entry/sample/transformations/phi"][()], [0, 3, 6, 9])
    # ... all scaled by the one scale that puts frame 1's maximum at 27500 (plus the ADC offset)
    assert scale == pytest.approx(27500.0 / maxima[0], rel=1e-9)
    for i in range(4):
        floats = nexus.read_frame(str(path), i, nexus.FLOATS).astype(np.float64)
        expect = np.floor(np.clip(floats * scale + 40.0, 0, 65535) + 0.5)
        assert np.abs(stack[i] - expect).max() <= 1  # float32 rounding of the reference's floorf
    assert [int(stack[i].max()) for i in range(4)] != [int(stack[0].max())] * 4
    manifest = json.loads((tmp_path / "nxs" / "image_manifest.json").read_text())
    assert list(manifest["int_scale"].values()) == [pytest.approx(scale, rel=1e-11)]
    assert all("-scale" in entry["argv"] for entry in manifest["frames"].values())

    # a changed flag: every frame is stale, re-rendered, and the user is told so
    again = invoke([*common, "-outdir", "nxs", "-format", "nexus", "-floats", "-mosaic", "0.1"], tmp_path)
    assert again.exit_code == 0, again.output
    assert "4 of them were rendered before with other flags or inputs" in again.output
    assert "stale and are replaced" in again.output


def test_killed_nexus_sweep_is_readable_and_resumes_to_the_same_file(tmp_path, cluster):
    common = ["-m", "nbnumba", "sweep", *SWEEP, "-nframes", "5", "-noise", "-format", "nexus",
              "--scheduler", cluster, "-noprogress"]
    whole = invoke([*common[2:], "-outdir", "whole"], tmp_path)
    assert whole.exit_code == 0, whole.output
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{HOOKS: json.dumps({"delay": 1.0})})
    proc = subprocess.Popen([sys.executable, *common, "-outdir", "killed"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    manifest = tmp_path / "killed" / "image_manifest.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if manifest.exists() and len(json.loads(manifest.read_text() or "{}").get("frames", {})) >= 2:
                break
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep's own process group, started above
        proc.wait()
    path = tmp_path / "killed" / "image.nxs"
    recorded = json.loads(manifest.read_text())["frames"]
    assert 2 <= len(recorded) < 5
    with h5py.File(path, "r") as f:  # readable, with every recorded frame in it
        written = f[nexus.WRITTEN][()]
        assert all(written[int(k) - 1] for k in recorded)
        done = [int(k) - 1 for k in recorded]
        assert np.array_equal(f[nexus.DATA][done], contents(tmp_path / "whole" / "image.nxs")["entry/data/data"][done])
    resumed = invoke([*common[2:], "-outdir", "killed"], tmp_path)
    assert resumed.exit_code == 0, resumed.output
    assert f"{len(recorded)} skipped" in resumed.output
    a, b = contents(tmp_path / "whole" / "image.nxs"), contents(path)
    assert sorted(a) == sorted(b)
    for name in a:
        if name.endswith(("command_line/data", "program_name")):
            continue
        assert np.array_equal(a[name], b[name]), name


RESPONSE = ["-readout", "2", "-flicker", "0.01", "-calibration", "0.02", "-calib_seed", "9", "-psf", "gauss",
            "-psf_fwhm", "500", "-gain", "2", "-seed", "7"]


@pytest.mark.parametrize("noise", [True, False], ids=["noise", "nonoise"])
def test_nexus_sweep_with_detector_response_holds_the_smv_counts(tmp_path, cluster, noise):
    """The detector's counts (the noise image, or the int image under -nonoise) of every frame are
    the SMV sweep's, frame by frame, with frame i's noise seed S + i; the float images stay the
    photons; no int scale is chosen (the counts are ADU at -gain); a sweep stopped after one frame
    resumes to the same file."""
    common = ["sweep", *SWEEP, *RESPONSE, "-nframes", 3, "-floats", *(["-noise"] if noise else []),
              "--scheduler", cluster, "-noprogress"]
    smv = invoke([*common, "-outdir", "smv"], tmp_path)
    assert smv.exit_code == 0, smv.output
    assert "int scale" not in smv.output
    part = invoke([*common, "-outdir", "nxs", "-format", "nexus", "-max_frames", 1], tmp_path)
    assert part.exit_code == 0 and "2 frames left" in part.output, part.output
    rest = invoke([*common, "-outdir", "nxs", "-format", "nexus"], tmp_path)
    assert rest.exit_code == 0 and "2 rendered, 1 skipped" in rest.output, rest.output
    path = tmp_path / "nxs" / "image.nxs"
    stack = nexus.read_frames(str(path))
    assert stack.shape == (3, 32, 32) and stack.dtype == np.uint16
    name = "image_noise_{:05d}.img" if noise else "image_{:05d}.img"
    for i in range(3):
        assert np.array_equal(stack[i], read_smv(tmp_path / "smv" / name.format(i + 1)).data), i
        floats = np.fromfile(tmp_path / "smv" / f"image_{i + 1:05d}.bin", dtype="<f4").reshape(32, 32)
        assert np.array_equal(nexus.read_frame(str(path), i, nexus.FLOATS), floats)
    assert not np.array_equal(stack[1] - stack[1].min(), stack[2] - stack[2].min())
    with h5py.File(path) as f:
        assert f["entry/simulation/images_are"][()].decode() == ("noise" if noise else "int")
        assert f["entry/simulation/int_scale"][()] == 2.0  # ADU per photon: -gain, as run -nexus
        assert f[nexus.WRITTEN][()].tolist() == [1, 1, 1]
    argv = json.loads((tmp_path / "nxs" / "image_manifest.json").read_text())["frames"]["3"]["argv"]
    assert "-scale" not in argv
    assert [argv[k + 1] for k, a in enumerate(argv) if a == "-seed"][-1] == "9"  # S + i: 7 + 2


def test_run_nexus_with_detector_response_says_its_counts(tmp_path):
    done = invoke(["run", *BASE, *RESPONSE, "-nopgm", "-noprogress", "-floatfile", "a.bin", "-intfile", "a.img",
                   "-noisefile", "n.img", "-nexus", "a.nxs"], tmp_path)
    assert done.exit_code == 0, done.output
    assert np.array_equal(nexus.read_frame(str(tmp_path / "a.nxs")), read_smv(tmp_path / "n.img").data)
    with h5py.File(tmp_path / "a.nxs") as f:
        assert f["entry/simulation/images_are"][()].decode() == "noise"
        assert f["entry/simulation/int_scale"][()] == 2.0


def test_nexus_sweep_refuses_parts(tmp_path):
    done = invoke(["sweep", *SWEEP, "-nframes", 2, "-first", 3, "-format", "nexus"], tmp_path)
    assert done.exit_code == 2 and "-first" in done.output
    bad = invoke(["sweep", *SWEEP, "-nframes", 2, "-format", "cbf"], tmp_path)
    assert bad.exit_code == 2 and "-format expects smv or nexus" in bad.output
    squeeze = invoke(["sweep", *SWEEP, "-nframes", 2, "-format", "nexus", "-compression", "zip"], tmp_path)
    assert squeeze.exit_code == 2 and "-compression expects gzip, none, bslz4" in squeeze.output
    preview = invoke(["sweep", *SWEEP, "-nframes", 2, "-format", "nexus", "-pgm"], tmp_path)
    assert preview.exit_code == 2 and "remove -pgm" in preview.output
    assert not list(tmp_path.glob("*.nxs"))


# ---------------------------------------------------------------- training sets

def test_batch_hdf5_images_and_labels_match_the_manifest(tmp_path, cluster):
    jobs = tmp_path / "set.csv"
    jobs.write_text(f"# base: {' '.join(BASE)} -osc 1\n"
                    "misset,phi,N,seed\n0 0 0,0,,\n10 20 30,5,8,\n0 0 0,2,,42\n")
    smv = invoke(["batch", jobs, "-outdir", "smv", "--scheduler", cluster, "-noprogress"], tmp_path)
    assert smv.exit_code == 0, smv.output
    out = invoke(["batch", jobs, "-format", "hdf5", "-images", "int", "-out", "train/set.h5",
                  "--scheduler", cluster, "-noprogress"], tmp_path)
    assert out.exit_code == 0, out.output
    path = tmp_path / "train" / "set.h5"
    manifest = json.loads((tmp_path / "set_manifest.json").read_text())
    with h5py.File(path) as f:
        images, labels = f["images"][()], f["labels"][()]
        columns = list(f["labels"].attrs["columns"])
        assert f["images"].chunks == (1, 32, 32) and f["geom/pixel_mm"][()] == pytest.approx(0.4)
    assert images.shape == (3, 32, 32)
    for i in range(3):
        assert np.array_equal(images[i], read_smv(tmp_path / "smv" / f"set_{i + 1:05d}.img").data)
    col = {name: labels[:, k] for k, name in enumerate(columns)}
    assert {"Na", "phi0", "seed", "misset_0", "d_edge_A", "A_star_ax"} <= set(col)
    assert "distance" not in col  # fixed: in geom, not a label
    for row in range(3):
        argv = manifest["frames"][str(row + 1)]["argv"]
        value = lambda flag: float(argv[len(argv) - 1 - argv[::-1].index(flag) + 1])  # noqa: E731
        assert col["phi0"][row] == pytest.approx(math.radians(value("-phi")))
        assert col["seed"][row] == value("-seed")
        assert col["Na"][row] == (value("-N") if argv.count("-N") > 1 else 5)
        misset = argv.index("-misset")
        assert col["misset_1"][row] == pytest.approx(math.radians(float(argv[misset + 2])))
    # the resolution at the detector edge: the beam hits 6.8 mm from the first edges of the
    # 12.8 mm detector, so the nearest edge is 6.0 mm from it, 50 mm away
    assert col["d_edge_A"][0] == pytest.approx(1.0 / (2 * math.sin(0.5 * math.atan(6.0 / 50))), rel=1e-6)
    assert np.allclose(col["A_star_ax"][[0, 2]], 1 / 50.0)


@pytest.mark.parametrize("images", ["noise", "int"])
def test_batch_hdf5_with_detector_response_holds_the_smv_counts(tmp_path, cluster, images):
    """Each row's stored counts are its SMV noise (or int) image under the detector response; rows
    without -seed get -seed ROW in both; -images noise needs no -noise (the row asks for it)."""
    jobs = tmp_path / "set.csv"
    jobs.write_text(f"# base: {' '.join(BASE)} -osc 1 {' '.join(RESPONSE[:-2])}\n"
                    "misset,phi,N,seed\n0 0 0,0,,\n10 20 30,5,8,\n0 0 0,2,,42\n")
    smv = invoke(["batch", jobs, "-outdir", "smv", "-noise", "-floats", "--scheduler", cluster, "-noprogress"],
                 tmp_path)
    assert smv.exit_code == 0, smv.output
    flags = ["-images", images] + (["-noise"] if images == "int" else [])
    out = invoke(["batch", jobs, "-format", "hdf5", *flags, "-out", "train/set.h5", "--scheduler", cluster,
                  "-noprogress"], tmp_path)
    assert out.exit_code == 0, out.output
    with h5py.File(tmp_path / "train" / "set.h5") as f:
        stored = f["images"][()]
        assert f.attrs["images_are"] == images and f.attrs["int_scale"] == 2.0
        assert f["written"][()].tolist() == [1, 1, 1]
    assert stored.shape == (3, 32, 32) and stored.dtype == np.uint16
    name = "set_noise_{:05d}.img" if images == "noise" else "set_{:05d}.img"
    for i in range(3):
        assert np.array_equal(stored[i], read_smv(tmp_path / "smv" / name.format(i + 1)).data), i
    floats = invoke(["batch", jobs, "-format", "hdf5", "-images", "float", "-out", "train/floats.h5",
                     "--scheduler", cluster, "-noprogress"], tmp_path)
    assert floats.exit_code == 0, floats.output
    with h5py.File(tmp_path / "train" / "floats.h5") as f:
        assert "int_scale" not in f.attrs
        for i in range(3):  # the photons before the detector
            expect = np.fromfile(tmp_path / "smv" / f"set_{i + 1:05d}.bin", dtype="<f4").reshape(32, 32)
            assert np.array_equal(f["images"][i], expect)

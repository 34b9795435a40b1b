"""`nbnumba refine` and `api.refine` on a small still (128^2 pixels, 60x70x80 A cell, Gaussian spots
of N = 6, mosaic spread): noise-free data give every parameter back to 1e-6, Poisson data within
three standard errors; the command's table, JSON, flags (which `run` renders back into the model
file), PNG; one-line refusals of bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from golden import invoke
from nbnumba import api
from nbnumba.errors import UserError
from nbnumba.refine.flagsout import misset_angles

BASE = ("-cell 60 70 80 90 90 90 -default_F 60 -lambda 1 -distance 100 -detpixels 128 -pixel 0.1 -gauss_xtal "
        "-oversample 1 -mosaic 0.5 -mosaic_dom 5 -seed 3 -noprogress").split()
TRUTH = BASE + "-N 6 -misset 10 20 30".split()
# errors of indexing: a turn of ~0.05 deg, each edge +0.3 %, N x1.17, distance +0.4 mm, beam +1 pixel
START = (BASE[:1] + "60.18 70.21 80.24 90 90 90".split() + BASE[7:] +
         "-N 7 -misset 10.05 19.97 30.04 -distance 100.4 -Xbeam 6.55 -Ybeam 6.35".split())
REFINE = "rot,edges,N,scale,distance,beam"


@pytest.fixture(scope="module")
def truth():
    sim = api.simulation(TRUTH)
    return sim, api.jacobian(sim).image


def directions(sim) -> np.ndarray:
    """The crystal's orientation: the unit real axes as columns (the cell is orthorhombic)."""
    axes = np.array([sim.crystal.a, sim.crystal.b, sim.crystal.c], dtype=np.float64).T
    return axes / np.linalg.norm(axes, axis=0)


def truth_values(truth_sim, start_sim) -> dict:
    """The refined parameters' true values: the turn from the start's orientation to the truth's."""
    x, y, z = misset_angles(directions(truth_sim) @ directions(start_sim).T)
    return dict(rotx=x, roty=y, rotz=z, a=60.0, b=70.0, c=80.0, N=6.0, scale=1.0, distance=100.0, Xbeam=6.45,
                Ybeam=6.45)


def test_noise_free_data_give_back_every_parameter(truth):
    sim, image = truth
    start = api.simulation(START)
    done = api.refine(start, image, REFINE)
    expected = truth_values(sim, start)
    for name in done.names:
        assert done.value(name) == pytest.approx(expected[name], abs=1e-6), name
    axes = np.array([done.sim.crystal.a, done.sim.crystal.b, done.sim.crystal.c])
    true_axes = np.array([sim.crystal.a, sim.crystal.b, sim.crystal.c])
    assert np.abs(axes - true_axes).max() < 1e-8 * np.abs(true_axes).max()
    assert done.loss < 1e-8 < 100 < done.start_loss and done.converged


def test_poisson_data_lie_within_three_standard_errors(truth):
    sim, image = truth
    data = np.random.default_rng(1).poisson(image).astype(np.float64)
    start = api.simulation(START)
    done = api.refine(start, data, REFINE)
    expected = truth_values(sim, start)
    z = {name: (done.value(name) - expected[name]) / done.error(name) for name in done.names}
    assert all(abs(v) < 3 for v in z.values()), z
    assert 0.5 < done.error("N") / 0.0087 < 2  # the information says N is known to about 0.15 %
    assert np.allclose(np.diag(done.correlation), 1.0)


def test_least_squares_with_read_out_noise(truth):
    sim, image = truth
    rng = np.random.default_rng(2)
    data = rng.poisson(image) + rng.normal(0, 2.0, image.shape)
    start = api.simulation(BASE + "-N 6.5 -misset 10 20 30 -distance 100.2".split())
    for likelihood in ("poisson", "lsq"):
        done = api.refine(start, data, "N,scale,distance", readout=2.0, likelihood=likelihood)
        assert abs(done.value("N") - 6.0) < 3 * done.error("N"), likelihood
        assert abs(done.value("distance") - 100.0) < 3 * done.error("distance"), likelihood


def test_the_command_writes_table_json_flags_model_and_png(truth, tmp_path):
    sim, image = truth
    invoke("run", [*TRUTH, "-noisefile", "data.img", "-floatfile", "truth.bin", "-intfile", "int.img", "-nopgm"],
           tmp_path)
    result = invoke("refine", ["-data", "data.img", *START, "-refine", REFINE, "-out", "fit", "-noprogress"],
                    tmp_path)
    assert result.exit_code == 0, result.output
    table = result.stdout.splitlines()
    assert table[0].split() == ["parameter", "unit", "start", "refined", "std.", "error"]
    assert [line.split()[0] for line in table[1:12]] == REFINE.replace("rot", "rotx,roty,rotz").replace(
        "edges", "a,b,c").replace("beam", "Xbeam,Ybeam").split(",")
    document = json.loads((tmp_path / "fit.json").read_text())
    refined = {p["name"]: p for p in document["parameters"]}
    assert abs(refined["distance"]["refined"] - 100.0) < 3 * refined["distance"]["error"]
    assert document["data"].endswith("data.img") and document["adc"] == 40.0 and not document["interrupted"]
    matrix = np.array(document["correlation"]["matrix"])
    assert np.allclose(matrix, matrix.T) and np.allclose(np.diag(matrix), 1.0)
    # the flags render the model file again, through `run`
    flags = (tmp_path / "fit.flags").read_text().split()
    assert invoke("run", [*flags, "-floatfile", "again.bin", "-nonoise", "-nopgm", "-intfile", "i.img"],
                  tmp_path).exit_code == 0
    again = api.read_image(tmp_path / "again.bin")
    model = api.read_image(tmp_path / "fit_model.bin")
    assert np.abs(again - model).max() <= 1e-5 * model.max()
    assert np.abs(model - image).max() < 0.05 * image.max()  # the refined model is the truth's, within the noise
    png = (tmp_path / "fit.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_flags_of_a_refined_crystal_rebuild_it():
    start = api.simulation(START)
    turned = api.set_parameters(start, dict(rotx=0.3, roty=-0.2, rotz=0.1, a=60.5, Na=6.5, Nb=6.5, Nc=6.5))
    from nbnumba.refine.flagsout import refined_flags
    rebuilt = api.simulation(refined_flags(START, turned, ["rotx", "roty", "rotz", "a", "N"]))
    for axis in ("a", "b", "c", "a_star", "b_star", "c_star"):
        np.testing.assert_allclose(getattr(rebuilt.crystal, axis), getattr(turned.crystal, axis), rtol=1e-12,
                                   atol=1e-12 * math.sqrt(sum(x * x for x in getattr(turned.crystal, axis))))
    assert rebuilt.Na == 6.5 and rebuilt.oversample == 1


def stderr_of(result) -> str:
    try:
        return result.stderr
    except ValueError:
        return result.output


@pytest.mark.parametrize("extra, message", [
    (["-refine", "rotx,spin"], "unknown parameter 'spin'"),
    (["-refine", "distance", "-bounds", "distance:90:99"], "lies outside"),
    (["-refine", "Na,Nb"], "only through their product"),
    (["-refine", "N", "-roi", "16", "21", "0", "5"], "no spot of the model"),  # a corner without spots
    (["-refine", "rotx", "-detpixels", "100"], "the detector is 100x100"),
    (["-refine", "distance", "-likelihood", "chi2"], "-likelihood must be"),
    (["-refine", "distance", "-shoebox"], "-shoebox needs an integer"),
])
def test_bad_input_is_one_line_and_exit_2(truth, tmp_path, extra, message):
    from nbnumba.io.images import write_float_image
    write_float_image(tmp_path / "data.bin", truth[1].astype(np.float32))
    result = invoke("refine", ["-data", "data.bin", *START, *extra], tmp_path)
    lines = stderr_of(result).strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], stderr_of(result)
    assert not list(tmp_path.glob("fit*"))


def test_a_square_crystal_has_no_N_to_refine(truth, tmp_path):
    from nbnumba.io.images import write_float_image
    write_float_image(tmp_path / "data.bin", truth[1].astype(np.float32))
    flags = [f for f in START if f != "-gauss_xtal"]
    result = invoke("refine", ["-data", "data.bin", *flags, "-refine", "N"], tmp_path)
    assert result.exit_code == 2 and "square crystal shape" in stderr_of(result)


def test_ctrl_c_keeps_the_best_model_so_far(truth, tmp_path):
    import signal
    import subprocess
    import sys
    from nbnumba.io.images import write_float_image
    write_float_image(tmp_path / "data.bin", truth[1].astype(np.float32))
    flags = [f for f in START if f != "-noprogress"]
    proc = subprocess.Popen([sys.executable, "-m", "nbnumba", "refine", "-data", "data.bin", *flags, "-refine", REFINE,
                             "-out", "fit"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "iteration 3:" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and err.strip().endswith("nbnumba: interrupted"), err
    document = json.loads((tmp_path / "fit.json").read_text())
    assert document["interrupted"] and document["loss"] < document["start_loss"]
    assert 3 <= document["iterations"] < 20 and "interrupted: best so far" in out
    assert (tmp_path / "fit.flags").exists() and (tmp_path / "fit_model.bin").exists()


def test_a_sweep_frame_is_refined_back_to_the_flags_that_made_it(tmp_path):
    """The frame's SMV header gives the start its detector, wavelength and phi range (-img)."""
    crystal = ["-cell", "60", "70", "80", "90", "90", "90", "-default_F", "60", "-gauss_xtal", "-oversample", "1",
               "-mosaic", "0.5", "-mosaic_dom", "5"]
    made = [*crystal, "-N", "6", "-misset", "10", "20", "30", "-lambda", "1", "-distance", "100", "-detpixels",
            "128", "-pixel", "0.1", "-phi", "0", "-osc", "0.2", "-phisteps", "2"]
    result = invoke("sweep", [*made, "-nframes", "2", "-outdir", "frames", "-prefix", "s", "-noise", "-seed", "5",
                              "-workers", "1", "-noprogress"], tmp_path)
    assert result.exit_code == 0, result.output
    frame = str(tmp_path / "frames" / "s_noise_00002.img")
    start = [*crystal, "-img", frame, "-N", "7", "-misset", "10.03", "19.98", "30", "-phisteps", "2"]
    result = invoke("refine", ["-data", frame, *start, "-refine", "rot,N,scale", "-out", "fit", "-noprogress"],
                    tmp_path)
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "fit.json").read_text())
    refined = {p["name"]: p for p in document["parameters"]}
    for name, true in (("N", 6.0), ("scale", 1.0)):
        assert abs(refined[name]["refined"] - true) < 3 * refined[name]["error"], (name, refined[name])
    again = api.simulation((tmp_path / "fit.flags").read_text().split())
    assert again.phi0 == pytest.approx(math.radians(0.2)) and again.phisteps == 2


def test_a_fixed_background_image_gets_its_factor(truth):
    sim, image = truth
    slow, fast = np.indices(image.shape)
    background = 3.0 + 4.0 * np.exp(-((slow - 64.0) ** 2 + (fast - 40.0) ** 2) / 2000.0)  # not a plane
    start = api.simulation(BASE + "-N 6 -misset 10 20 30 -distance 100.1".split())
    done = api.refine(start, image + 2.0 * background, "scale,bg_scale,distance", background=background,
                      planes=False, allpixels=True)
    assert done.value("bg_scale") == pytest.approx(2.0, abs=1e-6)
    assert done.value("distance") == pytest.approx(100.0, abs=1e-6)
    assert done.pixels == image.size and done.windows == 9 * 9  # tiles of 15 pixels


def test_distance_is_refused_where_the_close_distance_places_the_detector(truth):
    start = api.simulation(START + ["-close_distance", "100"])
    with pytest.raises(UserError, match="close distance"):
        api.refine(start, truth[1], "distance")

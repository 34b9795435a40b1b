"""Derivative images (api.jacobian) against central finite differences of nbnumba's own float64
render, on feature mixes covering what `run` renders; and the value image against `run`'s."""

from __future__ import annotations

import numpy as np
import pytest

from derivative_checks import STEP, finite_difference, worst_error
from golden import CASES, GOLDEN
from nbnumba import api
from nbnumba.derivatives import jacobian

BASE = ("-cell 70 80 90 85 95 100 -default_F 100 -N 5 -lambda 1 -distance 60 -detpixels 20 -pixel 0.5 "
        "-misset 5 3 2 -oversample 1 -nonoise")
ROT = ["rotx", "roty", "rotz"]
CELL = ["a", "b", "c", "alpha", "beta", "gamma"]
DET = ["distance", "Xbeam", "Ybeam", "detector_rotx", "detector_roty", "detector_rotz"]

MIXES = {
    "phi_mosaic": (BASE + " -phisteps 3 -osc 0.3 -mosaic 0.3 -mosaic_dom 4",
                   ROT + CELL + DET + ["lambda", "mosaic", "scale"]),
    "gauss": (BASE + " -gauss_xtal -Na 4 -Nb 5 -Nc 6", ["Na", "Nb", "Nc", "rotx", "a", "alpha", "distance", "lambda"]),
    "round": (BASE + " -round_xtal -Na 4 -Nb 5 -Nc 6", ["Na", "Nb", "Nc", "roty", "b", "beta", "Ybeam", "lambda"]),
    "oversample": (BASE + " -oversample 2", ["rotx", "c", "distance", "Xbeam", "detector_rotz", "lambda"]),
    "oversample_switches": (BASE + " -oversample 2 -oversample_thick -oversample_polar -oversample_omega "
                            "-detector_thick 200 -detector_abs 300 -detector_thicksteps 2 -polar 0.8",
                            ["rotx", "distance", "Ybeam", "detector_roty", "lambda", "scale"]),
    "sources": (BASE + " -hdivrange 2 -hdivsteps 3 -vdivrange 2 -vdivsteps 2 -dispersion 2 -dispsteps 3",
                ["rotz", "gamma", "lambda", "distance", "Xbeam"]),
    "twotheta_sample_pivot": (BASE + " -twotheta 5 -detector_rotx 2 -detector_roty 1 -detector_rotz 3 "
                              "-pivot sample", DET + ["rotx"]),
    "xds_convention": (BASE + " -xds -detector_rotz 2", ["distance", "detector_rotx", "detector_roty",
                                                                    "roty"]),
    "curved": (BASE + " -curved_det", ["rotx", "a", "lambda", "scale"] + DET),
    "absorption_layers": (BASE + " -detector_thick 300 -detector_abs 250 -detector_thicksteps 3",
                          ["rotx", "distance", "detector_rotx", "lambda"]),
    "polarization_point_pixel": (BASE + " -polar 0.9 -point_pixel", ["roty", "distance", "Xbeam", "detector_roty"]),
    "nopolar_water": (BASE + " -nopolar -water 0.01", ["scale", "distance", "rotz"]),
    "dmin_phi_start": (BASE + " -phi 0 -osc 0.2 -phisteps 2 -dmin 15", ["rotx", "distance", "lambda"]),
    # the interpolant's slope jumps where h crosses an integer: steps 100 times smaller make a stencil
    # that straddles one unlikely
    "tricubic": (BASE.replace("-default_F 100 -N 5", "-N 2") + " -hkl inputs/P1_dense.hkl -interpolate",
                 ["rotx", "a", "distance", "lambda"], 0.01),
    "roi": (BASE + " -roi 3 15 2 17", ["rotx", "distance", "lambda"]),
    # golden hkl_interp_midscan: interpolation is switched off for good at scan index 74
    "interpolation_switched_off": ("-cell 60 60 60 90 90 90 -hkl inputs/P1_dense.hkl -lambda 1.0 -N 2 -distance 40 "
                                   "-detpixels 128 -pixel 0.1 -Xbeam 0.5 -Ybeam 0.5 -misset 3 4 5 -roi 60 90 0 10",
                                   ["rotx", "c", "distance", "lambda"], 0.01),
}


def _sim(args, tmp_path, monkeypatch):
    if "inputs/" in args:
        monkeypatch.chdir(GOLDEN)
    return api.simulation(args.split())


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_derivative_images_match_finite_differences(mix, tmp_path, monkeypatch):
    args, names, shrink = (MIXES[mix] + (1.0,))[:3]
    sim = _sim(args, tmp_path, monkeypatch)
    result = jacobian(sim, names)
    # the value image is run's float image, bit for bit
    assert np.array_equal(result.image.astype(np.float32), api.render(sim, precision="double").image)
    assert result.image.max() > 0
    for name in names:
        numeric = finite_difference(sim, name, STEP[name] * shrink)
        error = worst_error(result.derivatives[name], numeric, result.image)
        assert error <= 1e-6, (mix, name, error)
        assert np.abs(result.derivatives[name]).max() > 0, (mix, name)


SUPERVISOR = ["rotx", "roty", "rotz", "a", "b", "c", "alpha", "beta", "gamma", "distance", "Xbeam", "Ybeam",
              "detector_rotx", "detector_roty", "detector_rotz", "lambda", "scale"]


@pytest.mark.parametrize("case", ["supervisor_roi", "supervisor_roi_phi_nonzero"])
def test_supervisor_geometry_on_its_roi(case, monkeypatch):
    """The full supervisor command (-mat, -hkl, 10 phi steps, N 36x47x29, tilted detector with a
    origin) on its ROI.  Its spots are sharp: steps 100 times smaller than the others."""
    monkeypatch.chdir(GOLDEN)
    sim = api.simulation(CASES[case]["args"])
    result = jacobian(sim, SUPERVISOR)
    assert np.array_equal(result.image.astype(np.float32), api.render(sim, precision="double").image)
    for name in SUPERVISOR:
        numeric = finite_difference(sim, name, STEP[name] * 0.01)
        error = worst_error(result.derivatives[name], numeric, result.image)
        assert error <= 1e-6, (case, name, error)


def test_tophat_gives_the_derivative_of_the_pieces():
    """Inside the top hat F_latt is N^3: its N, distance and scale derivatives are smooth; rotations
    and wavelength only move the edge, so their derivative is the pieces' (0).  Pixels whose
    stencil crossed the edge (the differences at h and 2h disagree) are left out."""
    sim = api.simulation(MIXES["gauss"][0].replace("-gauss_xtal", "-tophat_spots").split())
    names = ["Na", "rotx", "distance", "lambda", "scale"]
    result = jacobian(sim, names)
    chosen = result.image > 1e-3 * result.image.max()
    for name in names:
        numeric = finite_difference(sim, name, STEP[name])
        smooth = np.abs(numeric - finite_difference(sim, name, 2 * STEP[name])) <= 1e-7 * np.abs(numeric).max()
        assert (smooth & chosen).sum() >= 20, name
        assert worst_error(result.derivatives[name], numeric, result.image, smooth) <= 1e-6, name
    assert not result.derivatives["rotx"][chosen].any()


@pytest.mark.parametrize("mix", ["phi_mosaic", "gauss", "sources"])
def test_single_precision(mix, tmp_path, monkeypatch):
    """float32: the value image is run's single-precision image bit for bit, the derivatives
    those of float64 to 1e-4 (observed 1e-5 to 5e-5)."""
    args, names = MIXES[mix][:2]
    sim = _sim(args, tmp_path, monkeypatch)
    double = jacobian(sim, names)
    single = jacobian(sim, names, precision="single")
    assert np.array_equal(single.image.astype(np.float32), api.render(sim, precision="single").image)
    for name in names:
        assert worst_error(single.derivatives[name], double.derivatives[name], double.image) <= 1e-4, name


def test_scale_alone_is_the_image():
    """With no water background the image is proportional to the scale: dI/dscale = I, also where
    the terms need no partial derivatives (scale alone) and the sub-step factors multiply the sum."""
    sim = api.simulation(MIXES["oversample_switches"][0].split())
    result = jacobian(sim, ["scale"])
    assert result.image.max() > 0
    assert np.abs(result.derivatives["scale"] - result.image).max() <= 1e-12 * result.image.max()

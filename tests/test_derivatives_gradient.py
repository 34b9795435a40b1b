"""The reduced gradient (api.gradient) against the derivative images it reduces, the structure
factors' gradient against differences of the table, and the one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest

from golden import GOLDEN
from nbnumba import api
from nbnumba.derivatives import gradient, jacobian
from nbnumba.errors import UserError
from nbnumba.model.simulation import Simulation

ARGS = ("-cell 70 80 90 85 95 100 -N 5 -lambda 1 -distance 60 -detpixels 24 -pixel 0.5 -misset 5 3 2 "
        "-oversample 2 -phisteps 2 -osc 0.2 -mosaic 0.2 -mosaic_dom 3 -hkl inputs/P1_dense.hkl -nointerpolate")
NAMES = ["rotx", "roty", "rotz", "a", "b", "c", "alpha", "beta", "gamma", "scale", "distance", "Xbeam", "Ybeam",
         "lambda", "detector_rotx", "detector_roty", "mosaic"]


@pytest.fixture(scope="module")
def sim():
    old = __import__("os").getcwd()
    __import__("os").chdir(GOLDEN)
    try:
        return api.simulation(ARGS.split())
    finally:
        __import__("os").chdir(old)


def _weights(sim):
    rng = np.random.default_rng(7)
    return rng.normal(size=sim.shape)


def test_reduced_gradient_is_the_weighted_sum_of_the_images(sim):
    weights = _weights(sim)
    images = jacobian(sim, NAMES)
    reduced = gradient(sim, weights, NAMES + ["F"])
    assert np.array_equal(reduced.image, images.image)
    for name in NAMES:
        expected = float(np.sum(weights * images.derivatives[name]))
        assert abs(reduced.gradient[name] - expected) <= 1e-10 * abs(expected), name
    assert reduced.F_gradient.shape == sim.Fgrid.shape


def test_mask_and_pixel_list_restrict_the_pixels(sim):
    weights = _weights(sim)
    images = jacobian(sim, ["rotx", "distance"])
    mask = np.zeros(sim.shape, dtype=bool)
    mask[5:12, 3:20] = True
    by_mask = gradient(sim, weights, ["rotx", "distance"], mask=mask)
    by_list = gradient(sim, weights, ["rotx", "distance"], mask=np.argwhere(mask))
    for name in ("rotx", "distance"):
        expected = float(np.sum((weights * images.derivatives[name])[mask]))
        assert abs(by_mask.gradient[name] - expected) <= 1e-10 * abs(expected)
        assert by_list.gradient[name] == by_mask.gradient[name]
    assert np.array_equal(by_mask.image[mask], images.image[mask])
    assert not by_mask.image[~mask].any()
    masked = jacobian(sim, ["rotx"], mask=mask)
    assert np.array_equal(masked.derivatives["rotx"][mask], images.derivatives["rotx"][mask])


def test_structure_factor_gradient_matches_differences_of_the_table(sim):
    _check_table_gradient(sim, _weights(sim))


def _check_table_gradient(sim, weights):
    reduced = gradient(sim, weights, ["F"])
    touched = np.argwhere(np.abs(reduced.F_gradient) > 1e-6 * np.abs(reduced.F_gradient).max())
    assert len(touched) >= 5
    for index in touched[np.linspace(0, len(touched) - 1, 6).astype(int)]:
        index = tuple(index)
        step = 1e-3 * max(abs(sim.Fgrid[index]), 1.0)
        losses = []
        for sign in (-1, 1):
            table = sim.Fgrid.copy()
            table[index] += sign * step
            moved = Simulation(**{**sim.__dict__, "Fgrid": table})
            losses.append(float(np.sum(weights * jacobian(moved).image)))
        expected = (losses[1] - losses[0]) / (2 * step)  # exact for a quadratic, up to rounding
        assert abs(reduced.F_gradient[index] - expected) <= 1e-8 * np.abs(reduced.F_gradient).max(), index


def test_structure_factor_gradient_with_interpolation(monkeypatch):
    """Tricubic: each term's share goes to the 64 structure factors it interpolates."""
    monkeypatch.chdir(GOLDEN)
    sim = api.simulation(("-cell 70 80 90 85 95 100 -N 2 -lambda 1 -distance 60 -detpixels 20 -pixel 0.5 "
                          "-misset 5 3 2 -hkl inputs/P1_dense.hkl -interpolate").split())
    assert sim.interpolate
    _check_table_gradient(sim, _weights(sim))


@pytest.mark.parametrize("call, words", [
    (lambda s: jacobian(s, ["rotq"]), "unknown parameter 'rotq'"),
    (lambda s: jacobian(s, ["Na"]), "Na with the square crystal shape"),
    (lambda s: jacobian(s, ["F"]), "reduced gradient"),
    (lambda s: gradient(s, np.ones((3, 4)), ["rotx"]), "the weights are 4x3 but the detector is 24x24"),
    (lambda s: jacobian(s, ["rotx", "rotx"]), "twice"),
    (lambda s: jacobian(s, ["rotx"], mask=np.ones((2, 2))), "the mask is 2x2"),
])
def test_bad_requests_are_one_line_user_errors(sim, call, words):
    with pytest.raises(UserError) as caught:
        call(sim)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_features_without_a_derivative_are_refused(tmp_path):
    base = "-cell 70 80 90 85 95 100 -default_F 100 -N 5 -lambda 1 -distance 60 -detpixels 8"
    hkl = tmp_path / "two.hkl"
    hkl.write_text("0 0 1 100\n1 0 0 50\n")
    for args, name, words in [(" -pix0_vector_mm 1 2 60 -fix_pix0", "Xbeam", "Xbeam with -pix0_vector"),
                              (" -xds", "Ybeam", "Ybeam with the XDS convention"),
                              ("", "mosaic", "mosaic without a mosaic spread"),
                              ("", "F", "F without a structure-factor table"),
                              (f" -hkl {hkl} -oversample_thick", "F", "F with -oversample_thick")]:
        sim = api.simulation((base + args).split())
        with pytest.raises(UserError) as caught:
            gradient(sim, np.ones(sim.shape), [name])
        assert words in str(caught.value), (args, name, str(caught.value))


@pytest.mark.parametrize("flags, names", [
    ("-gauss_xtal", ["rotx", "a", "gamma", "Na", "Nc", "distance"]),
    ("-round_xtal", ["roty", "b", "Nb"]),
    ("-oversample_omega -oversample_polar -detector_thick 100 -detector_abs 200 -oversample_thick", ["rotz", "c",
                                                                                                     "alpha"]),
])
def test_directions_that_move_no_pixel_reduce_as_their_images(flags, names):
    """Rotations, cell and N are reduced from the strips' weighted shares, never formed per pixel:
    their sums must still be those of their images, whatever the crystal shape (the shares of N
    and of the reciprocal axes) and the per-sub-step factors (the closing factor)."""
    old = __import__("os").getcwd()
    __import__("os").chdir(GOLDEN)
    try:
        sim = api.simulation((ARGS + " " + flags).split())
    finally:
        __import__("os").chdir(old)
    weights = _weights(sim)
    images = jacobian(sim, names)
    reduced = gradient(sim, weights, names)
    for name in names:
        expected = float(np.sum(weights * images.derivatives[name]))
        assert expected != 0.0, name
        assert abs(reduced.gradient[name] - expected) <= 1e-10 * abs(expected), name

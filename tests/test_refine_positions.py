"""The first stage of refine (nbnumba.refine.positions): the data's spot centroids against Gaussian
blobs written here, the pairing of spots, and a start whose sharp spots miss the data's (a 128^2
still, N = 8 started at 11.2, 3 pixels off in the beam centre), which the pixel fit alone cannot
recover and the staged fit gives back to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest

from nbnumba import api
from nbnumba.derivatives import base
from nbnumba.errors import UserError
from nbnumba.refine.flagsout import misset_angles
from nbnumba.refine.positions import data_spots, pair

BASE = ("-cell 60 70 80 90 90 90 -default_F 60 -lambda 1 -distance 100 -detpixels 128 -pixel 0.1 -gauss_xtal "
        "-oversample 1 -mosaic 0.05 -mosaic_dom 3 -seed 3 -N 8 -misset 10 20 30 -noprogress").split()
REFINE = "rot,edges,N,scale,distance,beam"


def test_data_spots_are_the_centroids_of_the_counts_above_the_background():
    slow, fast = np.indices((64, 64), dtype=np.float64)
    centres = [(20.3, 14.6), (40.8, 45.25)]
    image = 3.0 + 0.01 * fast
    for s, f in centres:
        image = image + 500.0 * np.exp(-((slow - s) ** 2 + (fast - f) ** 2) / (2 * 1.2 ** 2))
    found = data_spots(image, np.ones(image.shape, bool), readout=0.0)
    found = found[np.argsort(found[:, 0])]
    # the blobs' tails beyond the grown spot and the median's pick of the background bias it little
    assert np.abs(found - np.array(centres)).max() < 0.02


def test_spots_pair_only_with_their_mutual_nearest_within_reach():
    model = np.array([[10.0, 10.0], [10.0, 30.0], [50.0, 50.0], [11.0, 11.0]])
    data = np.array([[12.0, 12.0], [10.0, 33.0], [80.0, 80.0]])
    i, j = pair(model, data, reach=5.0)
    # (11, 11) is nearer (12, 12) than (10, 10) is; (50, 50) and (80, 80) have no partner within reach
    assert list(zip(i, j)) == [(1, 1), (3, 0)]


def test_a_start_whose_spots_miss_the_data_is_recovered_by_the_staged_fit():
    truth = api.simulation(BASE)
    image = api.jacobian(truth).image
    centre = base(truth, "Xbeam")
    start = api.set_parameters(truth, {"rotx": 0.1, "roty": -0.1, "rotz": 0.1, "a": 60.18, "b": 70.21,
                                       "c": 80.24, "Na": 11.2, "Nb": 11.2, "Nc": 11.2, "distance": 100.5,
                                       "Xbeam": centre + 0.3, "Ybeam": centre + 0.3, "scale": 3.0})
    axes = [np.array([s.crystal.a, s.crystal.b, s.crystal.c], dtype=np.float64).T for s in (truth, start)]
    x, y, z = misset_angles((axes[0] / np.linalg.norm(axes[0], axis=0)) @ (axes[1] / np.linalg.norm(axes[1], axis=0)).T)
    expected = dict(rotx=x, roty=y, rotz=z, a=60.0, b=70.0, c=80.0, N=8.0, scale=1 / 3.0, distance=100.0,
                    Xbeam=centre, Ybeam=centre)
    try:
        alone = api.refine(start, image, REFINE, positions=False)
        assert abs(alone.value("Xbeam") - centre) > 0.01  # the pixel fit alone ends elsewhere
    except UserError as err:
        assert "no spot" in str(err)  # or finds none of the data's spots in its windows
    lines = []
    done = api.refine(start, image, REFINE, progress=lines.append)
    assert any("positions cycle 1" in line for line in lines)
    for name in done.names:
        assert done.value(name) == pytest.approx(expected[name], abs=1e-6), name
    assert done.converged


def test_a_cycle_moves_each_parameter_at_most_its_step_and_the_cycles_go_on(monkeypatch):
    """Wrong pairs can lead a cycle far off; a cycle is held to STEP (0.3 deg, 1 % of an edge), and
    a start 0.6 deg off, which one free cycle would give back at once, is given back by the next."""
    from nbnumba.derivatives.passes import active_pixels
    from nbnumba.refine import positions
    from nbnumba.refine.driver import bounds_for, expand
    from nbnumba.refine.model import SimulationModel

    truth = api.simulation(BASE)
    image = api.jacobian(truth).image
    start = api.set_parameters(truth, {"rotx": 0.6})
    names = expand(REFINE, ())
    model = SimulationModel(start, names, None, "cpu", "double")
    usable = active_pixels(start)
    found = data_spots(image, usable, readout=0.0)
    limits = bounds_for(names, model.start, {})
    monkeypatch.setattr(positions, "CYCLES", 1)
    moved = positions.fit(model, found, usable, model.start, limits, 0.02, 15).values - model.start
    rot = [names.index(n) for n in ("rotx", "roty", "rotz")]
    edges = [names.index(n) for n in ("a", "b", "c")]
    assert np.abs(moved[rot]).max() <= 0.3 + 1e-9
    assert np.all(np.abs(moved[edges]) <= 0.01 * model.start[edges] + 1e-9)
    assert moved[names.index("rotx")] < -0.2
    monkeypatch.setattr(positions, "CYCLES", 5)
    moved = positions.fit(model, found, usable, model.start, limits, 0.02, 15).values - model.start
    assert moved[names.index("rotx")] == pytest.approx(-0.6, abs=2e-3)

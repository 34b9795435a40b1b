"""-N/-Na/-Nb/-Nc take a real number of cells with the smooth crystal shapes (so that a refined N
renders), keep their meaning for whole numbers, and refuse a fraction with the square shape."""

from __future__ import annotations

import numpy as np
import pytest

from nbnumba import api
from nbnumba.errors import UserError

BASE = ["-cell", "50", "60", "70", "90", "90", "90", "-default_F", "100", "-lambda", "1", "-distance", "80",
        "-detpixels", "48", "-pixel", "0.2", "-oversample", "1", "-misset", "10", "20", "30", "-nonoise"]


def test_whole_numbers_keep_their_meaning():
    for written in ("7", "7.0", "7e0"):
        sim = api.simulation(BASE + ["-N", written])
        assert (sim.Na, sim.Nb, sim.Nc) == (7.0, 7.0, 7.0)
    separate = api.simulation(BASE + ["-Na", "7", "-Nb", "7", "-Nc", "7"])
    together = api.simulation(BASE + ["-N", "7.0"])
    np.testing.assert_array_equal(api.render(separate).image, api.render(together).image)


@pytest.mark.parametrize("shape", ["-gauss_xtal", "-round_xtal", "-tophat_spots"])
def test_a_real_number_of_cells_lies_between_its_whole_neighbours(shape):
    # the brightest pixel, at a Bragg position, grows with the crystal (as (Na Nb Nc)^2)
    peaks = [float(api.render(api.simulation(BASE + [shape, "-N", n])).image.max()) for n in ("6", "6.5", "7")]
    assert peaks[0] < peaks[1] < peaks[2]
    assert api.simulation(BASE + [shape, "-Na", "6.25"]).Na == 6.25


def test_a_fraction_with_the_square_shape_is_refused():
    with pytest.raises(UserError, match="square crystal shape"):
        api.simulation(BASE + ["-Nb", "6.5"])

"""The physics as plain Python functions, for the host-side set-up (detector geometry, the
sources' polarization bases), which calls a few of them a handful of times.  They are the
compiled functions' own source in float64, so they give the same numbers, and set-up neither
imports Numba nor loads compiled code from the cache for them."""

from __future__ import annotations

import numpy as np

from . import make_physics


def _plain(function):
    return function


host64 = make_physics(_plain, np.float64)

"""The trace backend: the same per-pixel physics for one pixel, recording its story."""

from __future__ import annotations

import numba
import numpy as np

from .. import layout as L
from ..compiled import render_strip


@numba.njit(cache=True)
def trace_pixel(spixel, fpixel, geo, ints, sources, lattice, recip, Fhkl, trace):
    """Render one pixel as a strip of its own; returns its value."""
    state = np.empty((L.N_STATE, 1), dtype=geo.dtype)
    tally = np.empty((L.N_TALLY, 1))
    scratch = np.empty((L.N_SCRATCH, 1), dtype=geo.dtype)
    render_strip(spixel, fpixel, 1, geo, ints, sources, lattice, recip, Fhkl, state, tally, scratch, trace, True)
    return state[L.P_VALUE, 0]

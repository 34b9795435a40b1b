"""The trace backend: the same per-pixel physics for one pixel, recording its story."""

from __future__ import annotations

import numba

from ..physics import layout as L
from ..physics.compiled import render_strip, strip_buffers


@numba.njit(cache=True, nogil=True)  # one pixel may take minutes: the main thread takes the signals
def trace_pixel(spixel, fpixel, geo, ints, sources, lattice, recip, Fhkl, trace):
    """Render one pixel as a strip of its own; returns its value."""
    state, tally, scratch = strip_buffers(geo, 1)
    render_strip(spixel, fpixel, 1, geo, ints, sources, lattice, recip, Fhkl, state, tally, scratch, trace, True)
    return state[L.P_VALUE, 0]

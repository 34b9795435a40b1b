"""The trace backend: the same per-pixel physics for one pixel, recording its story."""

from __future__ import annotations

import numba

from ..compiled import render_pixel


@numba.njit(cache=True)
def trace_pixel(spixel, fpixel, geo, ints, sources, lattice, recip, Fhkl, trace):
    return render_pixel(spixel, fpixel, geo, ints, sources, lattice, recip, Fhkl, trace, True)

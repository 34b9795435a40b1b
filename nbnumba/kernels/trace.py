"""The trace backend: the same per-pixel physics for one pixel, recording its story."""

from __future__ import annotations

import numba
import numpy as np

from .. import layout as L
from ..compiled import render_pixel


@numba.njit(cache=True)
def trace_pixel(spixel, fpixel, geo, ints, sources, lattice, recip, Fhkl, trace):
    scratch = np.empty((L.N_SCRATCH, L.CHUNK), dtype=geo.dtype)
    return render_pixel(spixel, fpixel, geo, ints, sources, lattice, recip, Fhkl, scratch, trace, True)

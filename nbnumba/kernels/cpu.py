"""The CPU backend: a parallel loop over detector rows calling the shared per-pixel physics."""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .. import layout as L
from ..compiled import cpu64, render_pixel

pixel_active = cpu64.pixel_active
# rows cost unequal amounts (ROI, mask, dmin); hand them out two at a time
numba.set_parallel_chunksize(2)


@numba.njit(cache=True)
def scratch_block(like):
    """A block of per-(phi step, mosaic domain) values for one row.  Allocated through this call
    because Numba hoists a plain np.empty out of a prange loop, and every thread would then
    share one block."""
    return np.empty((L.N_SCRATCH, L.CHUNK), dtype=like.dtype)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def render_rows(geo, ints, sources, lattice, recip, Fhkl, mask, image, omega_rows, flag_rows, trace):
    """Render scan indices [ints[I_RENDER_FROM], ints[I_RENDER_TO]) into `image`.

    Per row it records the solid-angle sum and the first column whose interpolation left the
    table (flag_rows[s, 0]) and the first column that ran a phi pass (flag_rows[s, 1]), -1 if none.
    """
    fpixels = ints[L.I_FPIXELS]
    start = ints[L.I_RENDER_FROM]
    stop = ints[L.I_RENDER_TO]
    first_row = start // fpixels
    rows = (stop - 1) // fpixels - first_row + 1
    for r in prange(rows):
        s = first_row + r
        scratch = scratch_block(geo)
        omega = 0.0
        left_table = -1
        ran_phi = -1
        for f in range(fpixels):
            scan = s * fpixels + f
            if scan < start or scan >= stop or not pixel_active(s, f, ints, mask):
                continue
            value, om, flags = render_pixel(s, f, geo, ints, sources, lattice, recip, Fhkl, scratch, trace, False)
            image[s, f] = value
            omega += om
            if flags & 1 and left_table < 0:
                left_table = f
            if flags & 2 and ran_phi < 0:
                ran_phi = f
        omega_rows[s] = omega
        flag_rows[s, 0] = left_table
        flag_rows[s, 1] = ran_phi

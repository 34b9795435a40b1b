"""The CPU backend: a parallel loop over detector rows, each cut into strips of neighbouring
pixels rendered together by the shared physics."""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ..physics import layout as L
from ..physics import compiled
from ..physics.compiled import render_strip
from ..runtime.jitcache import call

# rows cost unequal amounts (ROI, mask, dmin); hand them out two at a time.  Numba keeps this
# setting per thread, and renders run in whichever thread a command works in: render.py sets it
# around each pass.
CHUNKSIZE = 2


@numba.njit(cache=True, inline="always")
def renders(s, f, start, stop, ints, mask):
    scan = s * ints[L.I_FPIXELS] + f
    return start <= scan < stop and compiled.pixel_active(s, f, ints, mask)


@numba.njit(cache=True, inline="always")
def strip_width(s, f, start, stop, ints, mask):
    """Neighbouring rendered pixels from (s, f), at most STRIP; the first pixel of the render
    (whose lattice starts unrotated) stays alone."""
    fpixels = ints[L.I_FPIXELS]
    first = ints[L.I_FIRST_PIXEL]
    if s * fpixels + f == first:
        return 1
    width = 1
    while (width < L.STRIP and f + width < fpixels and s * fpixels + f + width != first
           and renders(s, f + width, start, stop, ints, mask)):
        width += 1
    return width


def render_rows(geo, ints, sources, lattice, recip, Fhkl, mask, image, omega_rows, flag_rows, trace):
    """Render scan indices [ints[I_RENDER_FROM], ints[I_RENDER_TO]) into `image` (`rows_kernel`).

    Each row's strip buffers are allocated here, not in the compiled loop: an allocation there
    is NumPy's implementation in Numba, whose module (with Numba's strings) a cached kernel then
    imports when it loads, 60 ms of every run."""
    fpixels = ints[L.I_FPIXELS]
    rows = (ints[L.I_RENDER_TO] - 1) // fpixels - ints[L.I_RENDER_FROM] // fpixels + 1
    call(rows_kernel, geo, ints, sources, lattice, recip, Fhkl, mask, image, omega_rows, flag_rows, trace,
         np.empty((rows, L.N_STATE, L.STRIP), dtype=geo.dtype), np.empty((rows, L.N_TALLY, L.STRIP)),
         np.empty((rows, L.N_SCRATCH, L.STRIP), dtype=geo.dtype))


# nogil: the call may last minutes; the main thread must stay free to take a signal (nbnumba.interrupt)
@numba.njit(parallel=True, cache=True, error_model="numpy", nogil=True)
def rows_kernel(geo, ints, sources, lattice, recip, Fhkl, mask, image, omega_rows, flag_rows, trace, states,
                tallies, scratches):
    """`render_rows`' parallel loop, row r of the block working in states[r], tallies[r] and
    scratches[r].

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
        state = states[r]
        tally = tallies[r]
        scratch = scratches[r]
        omega = 0.0
        left_table = -1
        ran_phi = -1
        # from the ROI's first column (not a literal 0, which would compile the calls twice)
        f = max(ints[L.I_ROI_XMIN], 0)
        while f < fpixels:
            if not renders(s, f, start, stop, ints, mask):
                f += 1
                continue
            width = strip_width(s, f, start, stop, ints, mask)
            render_strip(s, f, width, geo, ints, sources, lattice, recip, Fhkl, state, tally, scratch, trace, False)
            for p in range(width):
                image[s, f + p] = state[L.P_VALUE, p]
                omega += tally[L.T_OMEGA_SUM, p]
                if tally[L.T_LEFT_TABLE, p] != 0.0 and left_table < 0:
                    left_table = f + p
                if tally[L.T_RAN_PHI, p] != 0.0 and ran_phi < 0:
                    ran_phi = f + p
            f += width
        omega_rows[s] = omega
        flag_rows[s, 0] = left_table
        flag_rows[s, 1] = ran_phi

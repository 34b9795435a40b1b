"""The CPU backend: the detector's rows shared among threads, each row cut into strips of
neighbouring pixels rendered together by the shared physics.

The threads are Python's: each calls the compiled row kernel on the next few rows left (rows cost
unequal amounts: ROI, mask, dmin), and the kernel releases the GIL while it renders.  A Numba
parallel loop here compiled three more layers of generated code around the render, and LLVM
optimised and emitted the whole render again in each of them: the supervisor's first compile in
float64 took 24 s in process where it now takes 14 s, and the render is as fast.
"""

from __future__ import annotations

import itertools
import threading

import numba

from ..physics import compiled
from ..physics import layout as L
from ..physics.compiled import plain_render_strip, render_strip, strip_buffers
from ..physics.features import features_of
from ..runtime.jitcache import entry_point

# rows a thread takes at a time: enough to make a call's cost (~10 us) small beside the rows'
# (~0.5 ms for 4 supervisor rows in float32), few enough to share a block's last rows evenly
ROWS_PER_CALL = 4


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


def render_rows(geo, ints, sources, lattice, recip, Fhkl, mask, image, omega_rows, flag_rows, trace, progress=None):
    """Render scan indices [ints[I_RENDER_FROM], ints[I_RENDER_TO]) into `image`, on Numba's thread
    count of the calling thread (-nthreads): the calling thread and its helpers each call
    `rows_kernel` on the next ROWS_PER_CALL rows left, in strip buffers of their own.
    `progress(rows)`, if given, hears from the calling thread, after each of its calls, how many
    rows of the range have been taken so far.

    The buffers are allocated here, not in the compiled loop: an allocation there is NumPy's
    implementation in Numba, whose module (with Numba's strings) a cached kernel then imports
    when it loads, 60 ms of every run."""
    fpixels = ints[L.I_FPIXELS]
    rows = (ints[L.I_RENDER_TO] - 1) // fpixels - ints[L.I_RENDER_FROM] // fpixels + 1
    arrays = (geo, ints, sources, lattice, recip, Fhkl, mask, image, omega_rows, flag_rows, trace)
    own = _strip_buffers(geo)
    rows_kernel = plain_rows_kernel if features_of(ints).plain else general_rows_kernel
    kernel = entry_point(rows_kernel, *arrays, 0, 0, *own)  # compiled here, not in a helper
    firsts = itertools.count(0, ROWS_PER_CALL)  # next() holds the GIL: no two threads take the same rows
    failures = []

    def share(buffers=None, report=None):
        try:
            buffers = buffers or _strip_buffers(geo)
            for first in firsts:
                if first >= rows:
                    return
                kernel(*arrays, first, min(rows, first + ROWS_PER_CALL), *buffers)
                if report is not None:
                    report(first)
        except Exception as failure:  # re-raised by the calling thread
            failures.append(failure)

    # daemon threads: a signal's exit does not wait for a call to end (runtime/interrupt.py)
    helpers = [threading.Thread(target=share, name="nbnumba-rows", daemon=True)
               for _ in range(min(numba.get_num_threads(), -(-rows // ROWS_PER_CALL)) - 1)]
    for helper in helpers:
        helper.start()
    share(own, progress)
    for helper in helpers:
        helper.join()
    if failures:
        raise failures[0]


def _strip_buffers(geo):
    """A thread's strip buffers: `strip_buffers` run as plain Python, on the host."""
    return strip_buffers.py_func(geo, L.STRIP)


def _rows_kernel(render_strip):
    """The row kernel around one compiled strip: `render_strip`, or `plain_render_strip` for the
    plain renders (`Features.plain`: their first compile is seconds shorter)."""

    # nogil: the threads render at once, and the main thread stays free to take a signal
    # (nbnumba.interrupt) while a call lasts minutes.  It allocates nothing: compiled without Numba's
    # reference counting, it does not count its arrays at every strip
    @numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False)
    def rows_kernel(geo, ints, sources, lattice, recip, Fhkl, mask, image, omega_rows, flag_rows, trace, first, stop_row,
                    state, tally, scratch):
        """Rows first .. stop_row - 1 of the block `render_rows` renders (counted from its first row),
        in the strip buffers state, tally and scratch.

        Per row it records the solid-angle sum and the first column whose interpolation left the
        table (flag_rows[s, 0]) and the first column that ran a phi pass (flag_rows[s, 1]), -1 if none.
        """
        fpixels = ints[L.I_FPIXELS]
        start = ints[L.I_RENDER_FROM]
        stop = ints[L.I_RENDER_TO]
        first_row = start // fpixels
        for r in range(first, stop_row):
            s = first_row + r
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

    return rows_kernel


general_rows_kernel = _rows_kernel(render_strip)
plain_rows_kernel = _rows_kernel(plain_render_strip)

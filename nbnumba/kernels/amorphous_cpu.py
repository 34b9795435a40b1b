"""The CPU backend of the amorphous background: a parallel loop over detector rows calling the
shared amorphous physics (compiled for the CPU in float64)."""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ..physics import amorphous_layout as A
from ..physics.amorphous import make_amorphous
from ..physics.compiled import cpu64, inline_jit
from ..runtime import jitcache  # noqa: F401  (the cache folder must be set before any function is defined)

phys = make_amorphous(inline_jit, cpu64)
pixel_value = phys.pixel_value
roi_pixel = phys.roi_pixel
locate = phys.locate


@numba.njit(cache=True, nogil=True)
def walk_starts(table, nsources):
    """Each source's table interval to start walking from.  The parallel loop allocates it
    through this call because Numba hoists a plain allocation out of a prange loop, and every
    thread would then share it."""
    return np.full(nsources, locate(table, 0.0), dtype=np.int64)


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def render_rows(geo, ints, sources, table, image, omega_rows, stol_rows, last):
    """Every ROI pixel into `image`; for each ROI row the solid-angle sum and the smallest and
    largest sin(theta)/lambda seen (+inf and -inf for a row without pixels).  When `last` has
    the image's shape (and 3 columns; (0, 0, 3) asks for none), each ROI pixel's last
    sin(theta)/lambda, polarization and solid angle (`amorphous_pixel`) go into it.  Other
    pixels and rows are left as they are."""
    fpixels = ints[A.I_FPIXELS]
    nsources = ints[A.I_SOURCES]
    keep_last = last.shape[0] > 0
    for s in prange(max(ints[A.I_ROI_YMIN], 0), min(ints[A.I_ROI_YMAX], ints[A.I_SPIXELS] - 1) + 1):
        # each source walks the table from where it was at the previous pixel of the row
        nearest = walk_starts(table, nsources)
        omega = 0.0
        low = np.inf
        high = -np.inf
        for f in range(max(ints[A.I_ROI_XMIN], 0), fpixels):
            if not roi_pixel(s, f, ints):
                continue
            value, om, stol_min, stol_max, stol, polar, omega_last = pixel_value(s, f, geo, ints, sources, table,
                                                                                nearest, True)
            image[s, f] = value
            if keep_last:
                last[s, f, 0] = stol
                last[s, f, 1] = polar
                last[s, f, 2] = omega_last
            omega += om
            low = min(low, stol_min)
            high = max(high, stol_max)
        omega_rows[s] = omega
        stol_rows[s, 0] = low
        stol_rows[s, 1] = high

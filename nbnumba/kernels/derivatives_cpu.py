"""The CPU derivative kernel: a parallel loop over a list of pixels, each walked once by the
shared `tangent_pixel` (values and K tangents together).

The pixel list is cut into as many parts as the loop has threads; each part sums its own share of
the reduced gradient and, when asked, of the structure-factor gradient (a table per part), so
that no two threads write the same number and the memory is O(K + parts x table), not K images.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ..physics import layout as L
from ..physics.compiled import cpu32, cpu64
from ..physics.tangent_pixel import N_W, W_VALUE


@numba.njit(cache=True)
def tangent_work(like, directions):
    """A pixel's tangent rows.  Allocated through a call in the parallel loop: Numba
    hoists a plain np.empty out of a prange loop, and every thread would then share one."""
    return np.empty((N_W, directions), dtype=like.dtype)


def _tangent_pixel_stub(*args):
    raise NotImplementedError


@numba.extending.overload(_tangent_pixel_stub, jit_options={"cache": True})
def _tangent_pixel_by_precision(*args):
    """One generic `tangent_pixel`, resolved at compile time from the array dtype of `g`."""
    chosen = (cpu32 if args[2].dtype == numba.types.float32 else cpu64).tangent_pixel

    def impl(*args):
        return chosen(*args)

    return impl


@numba.njit(parallel=True, cache=True, error_model="numpy", nogil=True)
def tangent_pixels(pixels, geo, ints, sources, lattice, recip, Fhkl, frames, dgeo, dsources, dbase, dlattice,
                   generic, drecip, use_base, use_q, weights, store, scatter, image, dvalues, flags, gradient_parts,
                   Fgrad_parts):
    """The values (into `image`, flat, at their scan indices), flags (1: interpolation left the
    table, 2: a phi pass ran) and, with `store`, the K tangents (`dvalues`, pixels x K) of the scan
    indices `pixels`.  Without `store`, part c of the list adds sum_i weights[scan_i] * tangent_i
    (`weights` flat, the detector's) into gradient_parts[c] and, with `scatter`, the structure
    factors' share into Fgrad_parts[c]."""
    n = pixels.shape[0]
    fpixels = ints[L.I_FPIXELS]
    directions = dgeo.shape[0]
    parts = gradient_parts.shape[0]
    for c in prange(parts):
        work = tangent_work(geo, directions)
        Fgrad = Fgrad_parts[c]
        for i in range(c * n // parts, (c + 1) * n // parts):
            scan = pixels[i]
            s = scan // fpixels
            f = scan - s * fpixels
            weight = 0.0 if store else weights[scan]
            value, left, ran = _tangent_pixel_stub(s, f, geo, ints, sources, lattice, recip, Fhkl, frames, dgeo,
                                                   dsources, dbase, dlattice, generic, drecip, work, use_base,
                                                   use_q, scatter, weight, Fgrad)
            image[scan] = value
            flags[i] = (1 if left else 0) + (2 if ran else 0)
            for j in range(directions):
                if store:
                    dvalues[i, j] = work[W_VALUE, j]
                else:
                    gradient_parts[c, j] += weight * work[W_VALUE, j]


def parts(pixels: int) -> int:
    """Parts of a pixel list: a few per thread, as pixels cost unequal amounts (spots, ROI)."""
    return max(1, min(pixels, 4 * numba.get_num_threads()))

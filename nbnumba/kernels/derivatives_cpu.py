"""The CPU derivative kernel: a parallel loop over a list of pixels, cut into strips of
neighbouring pixels that the shared `tangent_strip` walks together (values and K tangents).
For a reduced gradient it also sums the strips' weighted shares, which the directions that move
no pixel (rotations, cell, N) are contracted with once, on the host: their tangents are never
formed per pixel.

The pixel list is cut into as many parts as the loop has threads; each part sums its own share of
the reduced gradient and, when asked, of the structure-factor gradient (a table per part), so
that no two threads write the same number and the memory is O(K + parts x table), not K images.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ..physics import layout as L
from ..physics.compiled import by_precision, strip_buffers
from ..physics.features import features_of
from ..physics.tangent_pixel import N_PART, N_W, R_CLOSE, R_WEIGHT, TANGENT_STRIP, W_VALUE


@numba.njit(cache=True)
def tangent_buffers(like, directions, width):
    """A strip's shares and tangent rows, and its weights times closing factors (float64).
    Allocated through a call in the parallel loop: Numba hoists a plain np.empty out of a prange
    loop, and every thread would then share one."""
    return (np.empty(N_PART * width, dtype=like.dtype), np.empty(directions * N_W * width, dtype=like.dtype),
            np.empty(width))


def _tangent_strip(spixel, fpixel0, width, g, ip, sources, lattice, recip, Fhkl, frames, dg, dsources, dbase,
                   dlattice, generic, drecip, state, tally, scratch, part, work, use_shares, use_q, scatter, Fgrad):
    raise NotImplementedError


def _plain_tangent_strip(spixel, fpixel0, width, g, ip, sources, lattice, recip, Fhkl, frames, dg, dsources, dbase,
                         dlattice, generic, drecip, state, tally, scratch, part, work, use_shares, use_q, scatter,
                         Fgrad):
    raise NotImplementedError


tangent_strip = by_precision(_tangent_strip, "tangent_strip")
plain_tangent_strip = by_precision(_plain_tangent_strip, "plain_tangent_strip")


@numba.njit(cache=True, inline="always")
def strip_width(pixels, i, stop, ints):
    """Pixels of the list from its i-th that neighbour each other in one row, at most
    TANGENT_STRIP; the first pixel of the render (whose lattice starts unrotated) stays alone."""
    fpixels = ints[L.I_FPIXELS]
    first = ints[L.I_FIRST_PIXEL]
    scan = pixels[i]
    if scan == first:
        return 1
    f = scan % fpixels
    width = 1
    while (width < TANGENT_STRIP and i + width < stop and pixels[i + width] == scan + width
           and f + width < fpixels and scan + width != first):
        width += 1
    return width


@numba.njit(cache=True, inline="always")
def weighted_sum(weights, scan, tangents, row, width):
    """sum_p weights[scan + p] * tangents[row + p] over a strip, in four running sums: one sum is a
    chain of dependent additions, which would cost more than the products."""
    s0 = s1 = s2 = s3 = 0.0
    p = 0
    while p + 4 <= width:
        s0 += weights[scan + p] * tangents[row + p]
        s1 += weights[scan + p + 1] * tangents[row + p + 1]
        s2 += weights[scan + p + 2] * tangents[row + p + 2]
        s3 += weights[scan + p + 3] * tangents[row + p + 3]
        p += 4
    while p < width:
        s0 += weights[scan + p] * tangents[row + p]
        p += 1
    return (s0 + s1) + (s2 + s3)


def tangent_pixels(pixels, geo, ints, *arrays):
    """The derivative pass over `pixels` (see `_tangent_pixels`), by the kernel compiled for plain
    renders alone when the render is plain (`Features.plain`)."""
    kernel = plain_tangent_pixels if features_of(ints).plain else general_tangent_pixels
    kernel(pixels, geo, ints, *arrays)


def _tangent_pixels(tangent_strip):
    """The derivative kernel around one compiled strip: `tangent_strip`, or `plain_tangent_strip`."""

    @numba.njit(parallel=True, cache=True, error_model="numpy", nogil=True)
    def tangent_pixels(pixels, geo, ints, sources, lattice, recip, Fhkl, frames, dgeo, dsources, dbase, dlattice,
                       generic, drecip, use_shares, use_q, weights, store, scatter, image, dvalues, flags, gradient_parts,
                       Fgrad_parts, share_parts):
        """The values (into `image`, flat, at their scan indices), flags (1: interpolation left the
        table, 2: a phi pass ran) and, with `store`, the K tangents (`dvalues`, pixels x K) of the scan
        indices `pixels` (ascending).  Without `store`, part c of the list adds
        sum_i weights[scan_i] * tangent_i (`weights` flat, the detector's) into gradient_parts[c],
        sum_i weights[scan_i] * closing factor_i * shares_i into share_parts[c] (N_SHARE_COLUMNS wide
        when some direction was folded into the shares, else 0: `directions.contracted`) and, with
        `scatter`, the structure factors' share into Fgrad_parts[c]."""
        n = pixels.shape[0]
        fpixels = ints[L.I_FPIXELS]
        directions = dgeo.shape[0]
        parts = gradient_parts.shape[0]
        for c in prange(parts):
            state, tally, scratch = strip_buffers(geo, TANGENT_STRIP)
            part, work, closing = tangent_buffers(geo, directions, TANGENT_STRIP)
            Fgrad = Fgrad_parts[c]
            i = c * n // parts
            stop = (c + 1) * n // parts
            while i < stop:
                width = strip_width(pixels, i, stop, ints)
                scan = pixels[i]
                s = scan // fpixels
                f = scan - s * fpixels
                for p in range(width):
                    part[R_WEIGHT * TANGENT_STRIP + p] = 0.0 if store else weights[scan + p]
                tangent_strip(s, f, width, geo, ints, sources, lattice, recip, Fhkl, frames, dgeo, dsources, dbase,
                              dlattice, generic, drecip, state, tally, scratch, part, work, use_shares, use_q, scatter,
                              Fgrad)
                for p in range(width):
                    image[scan + p] = state[L.P_VALUE, p]
                    flags[i + p] = (1 if tally[L.T_LEFT_TABLE, p] != 0.0 else 0) + (2 if tally[L.T_RAN_PHI, p] != 0.0
                                                                                     else 0)
                if not store and share_parts.shape[1] > 0:
                    for p in range(width):
                        closing[p] = weights[scan + p] * part[R_CLOSE * TANGENT_STRIP + p]
                    for r in range(share_parts.shape[1]):
                        share_parts[c, r] += weighted_sum(closing, 0, part, r * TANGENT_STRIP, width)
                for j in range(directions):
                    row = j * (N_W * TANGENT_STRIP) + W_VALUE * TANGENT_STRIP
                    if store:
                        for p in range(width):
                            dvalues[i + p, j] = work[row + p]
                    else:
                        gradient_parts[c, j] += weighted_sum(weights, scan, work, row, width)
                i += width

    return tangent_pixels


general_tangent_pixels = _tangent_pixels(tangent_strip)
plain_tangent_pixels = _tangent_pixels(plain_tangent_strip)


CONTRACTS_SHARES = True  # fills share_parts (see tangent_pixels)


def parts(pixels: int) -> int:
    """Parts of a pixel list: a few per thread, as pixels cost unequal amounts (spots, ROI)."""
    return max(1, min(pixels, 4 * numba.get_num_threads()))

"""The point-spread function, as noisify applies it.

Every source pixel spreads its photons over the pixels within a radius of it, weighted by the
PSF integrated analytically over each target pixel (a Gaussian of the given FWHM, or a fibre-optic
taper's g/(2π)(g²+r²)^(-3/2)).  The radius is the user's, or one chosen per source pixel so that
the light beyond it stays below a tenth of that pixel's photon noise; the light beyond the radius
is counted as lost and added back evenly over the whole image.

The reference accumulates in float32, source pixel by source pixel in scan order, so a target's
value depends on the order of its additions.  The spread here is parallel over bands of target
rows; within a band it runs over source rows, then the kernel's offsets, then along the row, an
order that still gives every target its additions in the reference's sequence (see _spread) and
that the compiler vectorises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numba import prange

from ..runtime import jitcache  # noqa: F401  (the cache folder must be set before any function is defined)

GAUSS = 1
FIBER = 2
KINDS = {"gauss": GAUSS, "fiber": FIBER}

# fwhm = sqrt(2**(2/3) - 1) * g for the fibre PSF
G_PER_FWHM = 0.652383013252053
# the radius keeps the light beyond it below photon_noise / LOSS_FACTOR
LOSS_FACTOR = 10.0
LOG16 = math.log(16)
LOG4 = math.log(4)
# C's (int) of a NaN or out-of-range double on x86-64
INT_MIN = -2147483648


@dataclass(frozen=True)
class PsfReport:
    """What the reference prints about one application of the PSF."""

    fwhm_pixels: float
    max_input: float | None  # with an automatic radius: the brightest source pixel
    auto_radius: int | None  # with an automatic radius: the kernel's radius as chosen
    skipped: bool  # automatic radius on an image without photons: nothing spread, zeros out
    lost: float  # photons beyond the radii, added back evenly


# --- the kernel (host side, libm's erf and atan as in the reference) ----------------------------

def _gauss_integral(x: float, y: float) -> float:
    # the reference writes the two factors differently; equal in exact arithmetic, not in doubles
    return 0.125 * (math.erf(2 * x * math.sqrt(math.log(2))) * math.erf(y * math.sqrt(math.log(16)))
                    * math.sqrt(math.log(16) / math.log(2)))


def _gauss_pixel(dx: int, dy: int, fwhm: float) -> float:
    x, y, pix = dx / fwhm, dy / fwhm, 1.0 / fwhm
    return (_gauss_integral(x + pix / 2., y + pix / 2.) - _gauss_integral(x + pix / 2., y - pix / 2.)
            - _gauss_integral(x - pix / 2., y + pix / 2.) + _gauss_integral(x - pix / 2., y - pix / 2.))


def _fiber_integral(x: float, y: float, g: float) -> float:
    return math.atan((x * y) / (g * math.sqrt(g * g + x * x + y * y))) / 2.0 / math.pi


def _fiber_pixel(dx: int, dy: int, g: float) -> float:
    x, y = float(dx), float(dy)
    return (_fiber_integral(x + 0.5, y + 0.5, g) - _fiber_integral(x + 0.5, y - 0.5, g)
            - _fiber_integral(x - 0.5, y + 0.5, g) + _fiber_integral(x - 0.5, y - 0.5, g))


def kernel(kind: int, fwhm_pixels: float, radius: int) -> np.ndarray:
    """(2R+1, 2R+1) weights indexed [R+dy, R+dx], zero outside the circle of radius R."""
    size = 2 * radius + 1
    weights = np.zeros((size, size))
    g = fwhm_pixels * G_PER_FWHM
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius:
                continue
            if kind == GAUSS:
                weights[radius + dy, radius + dx] = _gauss_pixel(dx, dy, fwhm_pixels)
            else:
                weights[radius + dy, radius + dx] = _fiber_pixel(dx, dy, g)
    return weights


def _one_plus_ceil(x: float) -> int:
    """C's (int)(1 + ceil(x)) on x86-64: NaN and out-of-range values give INT_MIN."""
    if not math.isfinite(x):
        return INT_MIN
    value = 1 + math.ceil(x)
    return value if -2147483648 <= value <= 2147483647 else INT_MIN


def auto_radius(kind: int, fwhm_pixels: float, max_input: float) -> int:
    """The kernel radius the reference chooses from the brightest pixel (before any limit)."""
    lost = math.sqrt(max_input) / LOSS_FACTOR
    if kind == GAUSS:
        ratio = -math.log(lost / max_input) / LOG4 / 2
        # below 0.01 photons the square root is of a negative number: NaN in the reference
        return _one_plus_ceil(math.sqrt(ratio) * fwhm_pixels if ratio >= 0 else math.nan)
    return _one_plus_ceil(fwhm_pixels * G_PER_FWHM * (max_input / lost))


# --- compiled loops ------------------------------------------------------------------------------

@numba.njit(cache=True, nogil=True)
def _to_int(x):
    # C's (int) of a double on x86-64
    if not (-2147483649.0 < x < 2147483648.0):
        return INT_MIN
    return np.int64(x)


@numba.njit(cache=True, nogil=True)
def _radius(v, kind, fwhm, user_radius, max_radius):
    """A source pixel's radius (INT_MIN, for NaN: it spreads nothing)."""
    if user_radius != 0:
        r = user_radius
    else:
        noise_floor = math.sqrt(v) / LOSS_FACTOR
        if kind == GAUSS:
            # under 0.01 photons this is the square root of a negative number, which the
            # reference turns into INT_MIN and then crashes on; such a source gets radius 1
            r = _to_int(1.0 + np.ceil(np.sqrt(-math.log(noise_floor / v) / LOG16) * fwhm))
            if r == INT_MIN and v == v:
                r = 1
        else:
            r = _to_int(1.0 + np.ceil(fwhm * G_PER_FWHM * (v / noise_floor)))
    if r == 0:
        r = 1
    return min(r, max_radius)


@numba.njit(cache=True, nogil=True)
def _loss(v, r, kind, fwhm, loss_by_radius):
    """The photons a source of ``v`` loses beyond radius ``r``: v·exp(-ln16 (r/fwhm)²) for the
    Gaussian, v·g/sqrt(g² + r²) for the fibre, with the factor of r looked up when r >= 0."""
    if 0 <= r < loss_by_radius.shape[0]:
        factor = loss_by_radius[r]
    elif kind == GAUSS:
        rsq = np.float64(r) / fwhm
        factor = math.exp(-LOG16 * (rsq * rsq))
    else:
        g = fwhm * G_PER_FWHM
        factor = math.sqrt(g * g + np.float64(r * r))
    if kind == GAUSS:
        return v * factor
    return v * (fwhm * G_PER_FWHM) / factor


@numba.njit(parallel=True, cache=True, nogil=True)
def _source_radii(image, kind, fwhm, user_radius, max_radius, reach, table_size):
    """Per source pixel: its squared radius, at most the kernel's ``reach`` (-1: it spreads
    nothing), and the photons it loses.  Counts (whole numbers below ``table_size``) are looked
    up in a table of the same functions, which makes a noise image's pass nearly free."""
    n = image.shape[0]
    g = fwhm * G_PER_FWHM
    loss_by_radius = np.empty(max_radius + 1)
    for r in range(max_radius + 1):
        if kind == GAUSS:
            rsq = np.float64(r) / fwhm
            loss_by_radius[r] = math.exp(-LOG16 * (rsq * rsq))
        else:
            loss_by_radius[r] = math.sqrt(g * g + np.float64(r * r))
    table_r = np.empty(table_size, np.int64)
    table_lost = np.empty(table_size)
    for c in prange(1, table_size):
        r = _radius(np.float64(c), kind, fwhm, user_radius, max_radius)
        table_r[c] = r
        table_lost[c] = _loss(np.float64(c), r, kind, fwhm, loss_by_radius)
    r2 = np.empty(n, np.int32)
    lost = np.empty(n)
    for i in prange(n):
        v = np.float64(image[i])
        if v <= 0.0:  # NaN is not skipped, as in the reference
            r2[i] = -1
            lost[i] = 0.0
            continue
        if v < table_size and v == np.floor(v):
            c = np.int64(v)
            r = table_r[c]
            lost[i] = table_lost[c]
        else:
            r = _radius(v, kind, fwhm, user_radius, max_radius)
            lost[i] = _loss(v, r, kind, fwhm, loss_by_radius)
        r = min(r, reach)
        r2[i] = -1 if r < 0 else r * r
    return r2, lost


@numba.njit(cache=True, nogil=True)
def _ordered_sum(values):
    # the reference's running double sum, in scan order
    total = 0.0
    for v in values:
        total += v
    return total


@numba.njit(cache=True, nogil=True)
def _spread_run(out, sources, r2, rsq, weight):
    """One offset along a run of sources: out[t] += sources[t] * weight where the source reaches.
    Adding 0.0 elsewhere leaves a target unchanged (targets are never -0.0) and, with unsigned
    indices (no negative-index wrap-around), lets the loop vectorise."""
    for t in range(out.shape[0]):
        u = np.uint64(t)
        add = np.float64(sources[u]) * weight
        if r2[u] < rsq:
            add = 0.0
        out[u] = np.float32(np.float64(out[u]) + add)


@numba.njit(parallel=True, cache=True, nogil=True)
def _spread(image, width, height, off_dx, off_dy, off_rsq, off_w, reach, r2, edge_wraps, band_rows):
    """Spread every source over its circle into a new float32 image, band by band of targets.

    A target's additions must come in the reference's order: by source in scan order, and for
    one source (only when the circle is wider than the image can two offsets of it meet) with
    dx ascending.  Within a band the loops run over source rows, then offsets by decreasing
    linear offset dy*width + dx (ties by dx ascending), then along the row, which keeps that
    order and lets the compiler vectorise the innermost loop.  With ``edge_wraps`` light one
    column past the right edge lands in the first column of the next row, as in the reference
    (its bound check is x > width, not x >= width).
    """
    pixels = width * height
    out = np.zeros(pixels, np.float32)
    bands = (height + band_rows - 1) // band_rows
    x_limit = width if edge_wraps else width - 1
    span = reach * width + reach
    for b in prange(bands):
        ja = b * band_rows * width
        jb = min(pixels, ja + band_rows * width)
        for y0 in range(max(0, (ja - span) // width), min(height, (jb - 1 + span) // width + 1)):
            row = y0 * width
            for k in range(off_dx.shape[0]):
                dx = off_dx[k]
                if y0 + off_dy[k] < 0:
                    continue
                offset = off_dy[k] * width + dx
                lo = max(0, -dx, ja - row - offset)
                hi = min(width - 1, x_limit - dx, jb - 1 - row - offset)
                if hi >= lo:
                    _spread_run(out[row + offset + lo:row + offset + hi + 1], image[row + lo:row + hi + 1],
                                r2[row + lo:row + hi + 1], off_rsq[k], off_w[k])
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _add_evenly(image, amount):
    for i in prange(image.shape[0]):
        image[i] = np.float32(np.float64(image[i]) + amount)


def _offsets(weights: np.ndarray, radius: int, width: int):
    """The kernel's non-zero offsets as (dx, dy, dx²+dy², weight) arrays, by decreasing linear
    offset dy*width + dx, ties (circles wider than the image) by increasing dx."""
    rows = [(dx, dy, dx * dx + dy * dy, weights[radius + dy, radius + dx])
            for dx in range(-radius, radius + 1) for dy in range(-radius, radius + 1)
            if weights[radius + dy, radius + dx] != 0.0]
    rows.sort(key=lambda row: (-(row[1] * width + row[0]), row[0]))
    columns = list(zip(*rows)) or [(), (), (), ()]
    dx, dy, rsq = (np.array(c, dtype=np.int64) for c in columns[:3])
    return dx, dy, rsq, np.array(columns[3], dtype=np.float64)


def apply_psf(image: np.ndarray, kind: int, fwhm_pixels: float, user_radius: int = 0,
              fix_edge: bool = False) -> tuple[np.ndarray, PsfReport]:
    """The blurred copy of a float32 (slow, fast) photon image, and what to report about it.

    ``fix_edge`` drops the light that falls past the right edge instead of wrapping it into the
    next row as the reference does.  Sources under 0.01 photons, on which the reference's
    automatic Gaussian radius crashes, are spread over radius 1.
    """
    height, width = image.shape
    flat = np.ascontiguousarray(image, dtype=np.float32).reshape(-1)
    max_radius = max(width, height)
    max_input = chosen = None
    radius = user_radius
    if radius <= 0:
        max_input = max(0.0, float(np.nanmax(flat))) if flat.size else 0.0
        if max_input <= 0.0:
            return np.zeros_like(image, dtype=np.float32), PsfReport(fwhm_pixels, max_input, None, True, 0.0)
        chosen = radius = auto_radius(kind, fwhm_pixels, max_input)
        if radius == INT_MIN:  # every source under 0.01 photons: see _radius
            chosen = radius = 1
    radius = min(radius, max_radius)
    reach = max(radius, 0)
    r2, lost = _source_radii(flat, kind, fwhm_pixels, user_radius, max_radius, reach, min(65536, flat.size))
    total_lost = _ordered_sum(lost)
    dx, dy, rsq, w = _offsets(kernel(kind, fwhm_pixels, reach), reach, width)
    band_rows = max(1, -(-height // (4 * numba.get_num_threads())))
    out = _spread(flat, width, height, dx, dy, rsq, w, reach, r2, not fix_edge, band_rows)
    _add_evenly(out, total_lost / (width * height))
    return out.reshape(height, width), PsfReport(fwhm_pixels, max_input, chosen, False, total_lost)

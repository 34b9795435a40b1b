"""The reference's random numbers, reproduced bit for bit.

nanoBragg draws every random number from Numerical Recipes' ``ran1`` (a
minimal-standard generator behind a 32-entry shuffle table) and shapes them
with ``gaussdev``, ``poidev`` and ``mosaic_rotation_umat``.  Two things in the
C must be mirrored exactly for the outputs to match:

* Its generator state lives in C statics.  Here it lives in a record of
  `STATE` (see :func:`new_rng`) that is passed around, so independent streams
  can coexist; passing one record to every stream reproduces the reference's
  single process-wide table (see :func:`reseed`).  A record is passed by
  reference without reference counting, so the draw loops hold no atomic
  operations; it is the element of a one-element array, which owns its
  memory: a record is only used while its array is held (a caller's argument).
* Much of its arithmetic is single precision.  Every place where C rounds to
  ``float`` carries an explicit ``np.float32`` cast; operations between two
  float32 values are float32 operations in Numba, as they are in C.  The
  reference is built with ``-ffp-contract=off`` and Numba fuses nothing
  without fastmath, so no multiply-add is contracted on either side.
"""

import math

import numpy as np
from numba import njit

from ..runtime import jitcache  # before any function is defined: it sets the cache folder

# ran1's constants (Park & Miller's minimal standard with Schrage's method).
_IA = 16807
_IM = 2147483647
_AM = 1.0 / _IM
_IQ = 127773
_IR = 2836
_NTAB = 32
_RNMX = 1.0 - 1.2e-7

# The C's statics: ran1's idum, iy and table, gaussdev's spare, poidev's cache of its last mean;
# then poidev's memo of ln(k!) for whole counts k (NaN until first needed): the rejection loop
# evaluates it at every candidate count, and neighbouring pixels ask for the same few
_LN_FACTORIALS = 1 << 16
STATE = np.dtype([("idum", np.int64), ("iy", np.int64), ("iv", np.int64, (_NTAB,)), ("iset", np.int64),
                  ("gset", np.float64), ("oldm", np.float64), ("sq", np.float64), ("alxm", np.float64),
                  ("g", np.float64), ("ln_factorial", np.float32, (_LN_FACTORIALS,))], align=True)

_GAMMLN_COF = (
    76.18009172947146,
    -86.50532032941677,
    24.01409824083091,
    -1.231739572450155,
    0.1208650973866179e-2,
    -0.5395239384953e-5,
)


def new_rng(idum):
    """A fresh generator seeded with ``idum``, as at program start: a one-element array of
    `STATE`, whose element ``[0]`` the drawing functions take.

    The reference passes negative seeds (``-seed N`` gives idum = -N).  The
    shuffle table starts empty, so the first draw always loads it; a seed
    that is not negative then behaves as idum = 1, as in the C.
    """
    generator = np.zeros(1, STATE)
    generator[0]["idum"] = idum
    generator[0]["oldm"] = -1.0
    generator[0]["ln_factorial"] = np.nan
    return generator


@njit(cache=True, nogil=True)
def reseed(state, idum):
    """Point ``state`` at another seed while keeping its tables and caches.

    This is what the reference does when it hands ran1 a different seed
    variable: its shuffle table and the gaussdev/poidev caches are shared by
    the whole process.  A negative ``idum`` reloads the table on the next
    draw; any other value carries on from the previous stream's table.
    """
    state.idum = idum


@njit(cache=True, nogil=True)
def _schrage(idum):
    # Schrage's method: IA * idum mod IM without overflowing 32 bits in C.  It is also the
    # reference's arithmetic for an idum outside (0, IM), which only a huge seed gives.
    k = idum // _IQ
    idum = _IA * (idum - k * _IQ) - _IR * k
    if idum < 0:
        idum += _IM
    return idum


@njit(cache=True, nogil=True, inline="always")
def _next_idum(idum):
    # the same IA * idum mod IM, by one 64-bit product folded modulo the Mersenne prime IM:
    # a third of the latency of Schrage's divisions on the one chain every deviate waits for
    if 0 < idum < _IM:
        p = idum * _IA
        r = (p & _IM) + (p >> 31)
        return r - _IM if r >= _IM else r
    return _schrage(idum)


@njit(cache=True, nogil=True)
def _load_table(state, idum):
    # the reference's (re)start: 8 warm-up steps, then the 32-entry table
    idum = 1 if -idum < 1 else -idum
    for j in range(_NTAB + 7, -1, -1):
        idum = _schrage(idum)
        if j < _NTAB:
            state.iv[j] = idum
    return idum


@njit(cache=True, nogil=True, inline="always")
def ran1(state):
    """Uniform deviate on (0, 1) as a float32, advancing ``state``."""
    idum = state.idum
    iy = state.iy
    if idum <= 0 or iy == 0:
        idum = _load_table(state, idum)
        iy = state.iv[0]
    idum = _next_idum(idum)
    # the reference's iy / NDIV, NDIV = 1 + (IM - 1) / NTAB = 2**26, for iy < IM < 2**31
    j = (iy >> 26) & (_NTAB - 1)
    iy = state.iv[j]
    state.iv[j] = idum
    state.idum = idum
    state.iy = iy
    temp = np.float32(_AM * iy)
    if np.float64(temp) > _RNMX:
        return np.float32(_RNMX)
    return temp


# a call, not inlined as ran1 and poidev (the draws of nearly every pixel) are: Numba copies an inlined
# function into each caller, and poidev calls it and ln_factorial rarely (first compile 0.4 s shorter)
@njit(cache=True, nogil=True)
def gaussdev(state):
    """Standard normal deviate (Box-Muller, polar form) as a float32.

    Each Box-Muller step yields two deviates; the second is kept in
    ``state`` and returned by the next call.
    """
    if state.iset != 0:
        state.iset = 0
        return np.float32(state.gset)
    while True:
        v1 = np.float32(2.0 * ran1(state) - 1.0)
        v2 = np.float32(2.0 * ran1(state) - 1.0)
        rsq = np.float32(v1 * v1 + v2 * v2)
        if not (rsq >= 1.0 or rsq == 0.0):
            break
    fac = np.float32(math.sqrt(-2.0 * math.log(np.float64(rsq)) / rsq))
    state.gset = np.float32(v1 * fac)
    state.iset = 1
    return np.float32(v2 * fac)


@njit(cache=True, nogil=True)
def _gammln(xx):
    # ln(Gamma(xx)) by Lanczos: float32 in and out, float64 inside, as in C.
    x = np.float64(np.float32(xx))
    y = x
    tmp = x + 5.5
    tmp -= (x + 0.5) * math.log(tmp)
    ser = 1.000000000190015
    for cof in _GAMMLN_COF:
        y += 1.0
        ser += cof / y
    return np.float32(-tmp + math.log(2.5066282746310005 * ser / x))


@njit(cache=True, nogil=True)
def _ln_factorial(k, state):
    # gammln(k + 1) of a whole float32 k >= 0, through the generator's memo
    if k < _LN_FACTORIALS:
        i = np.int64(k)
        value = state.ln_factorial[i]
        if value != value:
            value = _gammln(k + 1.0)
            state.ln_factorial[i] = value
        return value
    return _gammln(k + 1.0)


@njit(cache=True, nogil=True, inline="always")
def poidev(xm, state):
    """Poisson deviate with mean ``xm`` (taken as float32), as a float32.

    Means below 12 multiply uniform deviates, means up to 1e6 use rejection
    from a Lorentzian, larger means use a Gaussian approximation whose
    result need not be an integer.  The per-mean constants are cached in
    ``state`` and recomputed only when the mean changes, as in the C.
    """
    xm = np.float32(xm)
    if xm > 1.0e6:
        x = np.float64(xm)
        return np.float32(x + math.sqrt(x) * gaussdev(state))

    if xm < 12.0:
        if xm != state.oldm:
            state.oldm = xm
            state.g = np.float32(math.exp(-np.float64(xm)))
        g = np.float32(state.g)
        em = np.float32(-1.0)
        t = np.float32(1.0)
        while True:
            em = np.float32(em + np.float32(1.0))
            t = np.float32(t * ran1(state))
            if not t > g:
                break
        return em

    if xm != state.oldm:
        state.oldm = xm
        alxm = np.float32(math.log(np.float64(xm)))
        state.sq = np.float32(math.sqrt(2.0 * np.float64(xm)))
        state.alxm = alxm
        state.g = np.float32(np.float32(xm * alxm) - _gammln(xm + 1.0))
    sq = np.float32(state.sq)
    alxm = np.float32(state.alxm)
    g = np.float32(state.g)
    while True:
        while True:
            y = np.float32(math.tan(math.pi * ran1(state)))
            em = np.float32(np.float32(sq * y) + xm)
            if not em < 0.0:
                break
        em = np.float32(np.floor(em))
        log_ratio = np.float32(np.float32(em * alxm) - _ln_factorial(em, state))
        log_ratio = np.float32(log_ratio - g)
        t = np.float32(0.9 * (1.0 + np.float32(y * y)) * math.exp(np.float64(log_ratio)))
        if not ran1(state) > t:
            break
    return em


@njit(cache=True, nogil=True)
def _set_row(matrix, row, values):
    # element by element: a slice assignment checks shapes, and compiling its error message
    # (string formatting) costs more than a second on a fresh cache
    for k in range(values.shape[0]):
        matrix[row, k] = values[k]


@njit(cache=True, nogil=True)
def mosaic_rotation_umat(mosaicity, state):
    """Random rotation (row-major 3x3 as 9 float64) within a spherical cap.

    The axis is uniform on the sphere and the angle is ``mosaicity`` (radians,
    taken as float32) times a cube-root-shaped factor; a cap of pi/2 covers
    all orientations.  The cube root is float32 ``powf``, called through
    Numba's float32 ``math.pow`` so that it is the very libm routine the
    reference used: rounding a float64 pow to float32 differs from glibc's
    powf in about one case in 1600.
    """
    r1 = 2.0 * ran1(state) - 1.0
    r2 = 2.0 * ran1(state) - 1.0
    r3 = 2.0 * ran1(state) - 1.0

    xyrad = math.sqrt(1.0 - r2 * r2)
    cap_fraction = math.pow(np.float32(1.0 - r3 * r3), np.float32(1.0 / 3.0))
    rot = np.float64(np.float32(np.float32(mosaicity) * cap_fraction))

    v1 = xyrad * math.sin(math.pi * r1)
    v2 = xyrad * math.cos(math.pi * r1)
    v3 = r2

    # Rodrigues' rotation matrix about (v1, v2, v3) by rot, term by term in
    # the reference's order so the float64 roundings agree.
    t1 = math.cos(rot)
    t2 = 1.0 - t1
    t3 = v1 * v1
    t6 = t2 * v1
    t7 = t6 * v2
    t8 = math.sin(rot)
    t9 = t8 * v3
    t11 = t6 * v3
    t12 = t8 * v2
    t15 = v2 * v2
    t19 = t2 * v2 * v3
    t20 = t8 * v1
    t24 = v3 * v3

    umat = np.empty(9)
    umat[0] = t1 + t2 * t3
    umat[1] = t7 - t9
    umat[2] = t11 + t12
    umat[3] = t7 + t9
    umat[4] = t1 + t2 * t15
    umat[5] = t19 - t20
    umat[6] = t11 - t12
    umat[7] = t19 + t20
    umat[8] = t1 + t2 * t24
    return umat


@njit(cache=True, nogil=True)
def _normalize_rows(u):
    # Returns the row lengths; zero-length rows are left as they are.
    norms = np.empty(3)
    for r in range(3):
        m = math.sqrt(u[r, 0] * u[r, 0] + u[r, 1] * u[r, 1] + u[r, 2] * u[r, 2])
        norms[r] = m
        if m > 0:
            u[r, 0] /= m
            u[r, 1] /= m
            u[r, 2] /= m
    return norms[0], norms[1], norms[2]


@njit(cache=True, nogil=True)
def _unit_cross(u, a, b):
    c = np.empty(3)
    c[0] = u[a, 1] * u[b, 2] - u[a, 2] * u[b, 1]
    c[1] = u[a, 2] * u[b, 0] - u[a, 0] * u[b, 2]
    c[2] = u[a, 0] * u[b, 1] - u[a, 1] * u[b, 0]
    m = math.sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2])
    if m > 0:
        c[0] /= m
        c[1] /= m
        c[2] /= m
    return c


@njit(cache=True, nogil=True)
def umat2misset(umat):
    """Misset angles (rotx, roty, rotz) in radians of a 9-element rotation.

    The matrix is first repaired the reference's way: rows are normalised,
    and a missing row is replaced by the cross product of the other two.
    """
    u = np.empty((3, 3))
    for k in range(9):
        u[k // 3, k % 3] = umat[k]
    mx, my, mz = _normalize_rows(u)

    # The C writes these tests with >= 0 on lengths that cannot be negative;
    # they are kept literal so NaN lengths take the same branches.
    if mx >= 0 and my <= 0 and mz <= 0:
        u[1, 0], u[1, 1], u[1, 2] = 0.0, 1.0, 0.0
        u[2, 0], u[2, 1], u[2, 2] = 0.0, 0.0, 1.0
    if mx <= 0 and my >= 0 and mz <= 0:
        u[0, 0], u[0, 1], u[0, 2] = 1.0, 0.0, 0.0
        u[2, 0], u[2, 1], u[2, 2] = 0.0, 0.0, 1.0
    if mx <= 0 and my <= 0 and mz >= 0:
        u[0, 0], u[0, 1], u[0, 2] = 1.0, 0.0, 0.0
        u[1, 0], u[1, 1], u[1, 2] = 0.0, 1.0, 0.0

    # Two passes, as in the reference: the second sees the first's repairs.
    for _ in range(2):
        xcy = _unit_cross(u, 0, 1)
        ycz = _unit_cross(u, 1, 2)
        zcx = _unit_cross(u, 2, 0)
        if mx <= 0:
            _set_row(u, 0, ycz)
        if my <= 0:
            _set_row(u, 1, zcx)
        if mz <= 0:
            _set_row(u, 2, xcy)

    _normalize_rows(u)

    angles = np.empty(3)
    uzx, uzy, uzz = u[2, 0], u[2, 1], u[2, 2]
    if uzx * uzx < 1.0:
        angles[0] = math.atan2(uzy, uzz)
        angles[1] = math.atan2(-uzx, math.sqrt(uzy * uzy + uzz * uzz))
        angles[2] = math.atan2(u[1, 0], u[0, 0])
    else:
        angles[0] = math.atan2(1.0, 1.0) * 4
        angles[1] = math.atan2(1.0, 1.0) * 2
        angles[2] = math.atan2(u[0, 1], -u[1, 1])
    return angles


def _stream(seed, generator):
    # A fresh generator, or the shared process-wide one switched to ``seed``.
    if generator is None:
        return new_rng(seed)
    reseed(generator[0], seed)
    return generator


def mosaic_umats(mosaic_spread_rad, domains, seed, generator=None):
    """Rotation matrices of the mosaic domains, shape (domains, 9).

    One stream seeded with ``seed`` (the reference's mosaic_seed, already
    negative; default -12345678) gives one rotation per domain; domain 0 is
    then forced to the identity although its numbers were drawn.  Pass a
    ``generator`` (`new_rng`) to share tables with other streams as the
    reference does.
    """
    return _mosaic_umats(mosaic_spread_rad, domains, _stream(seed, generator))


@njit(cache=True, nogil=True)
def _mosaic_umats(mosaic_spread_rad, domains, generator):
    state = generator[0]
    umats = np.empty((domains, 9))
    for d in range(domains):
        _set_row(umats, d, mosaic_rotation_umat(mosaic_spread_rad, state))
    if domains > 0:
        umats[0, :] = 0.0
        umats[0, 0] = 1.0
        umats[0, 4] = 1.0
        umats[0, 8] = 1.0
    return umats


def domain_rotations(mosaic_spread_rad, domains, seed):
    """`mosaic_umats` on a fresh stream.  A single domain is the identity whatever the stream
    draws, and a fresh stream is seen by nothing else, so then nothing is drawn (nor compiled)."""
    if domains == 1:
        return np.eye(3).reshape(1, 9)
    return mosaic_umats(mosaic_spread_rad, domains, seed)


def random_misset(seed, cap_rad=90.0, generator=None):
    """The reference's ``-misset random``: angles (rotx, roty, rotz), radians.

    The reference passes 90 as the cap, meaning 90 degrees, but the cap is
    in radians; 90 is the default here to match its output, and
    ``cap_rad=np.pi / 2`` gives the intended uniform orientation.
    """
    return _random_misset(cap_rad, _stream(seed, generator))


@njit(cache=True, nogil=True)
def _random_misset(cap_rad, generator):
    return umat2misset(mosaic_rotation_umat(cap_rad, generator[0]))


@njit(cache=True, nogil=True)
def _to_ushort(test):
    # C's (unsigned short) of a double on x86-64: truncate to a 32-bit int
    # (out-of-range and NaN give 0x80000000), keep the low 16 bits.  This only
    # matters when a negative ADC offset drives a pixel below zero.
    if not (-2147483649.0 < test < 2147483648.0):
        return np.uint16(0)
    return np.uint16(np.int64(test) & 0xFFFF)


def noise_image(float_image, roi, adc, seed, generator=None):
    """Poisson-noise SMV pixels from a float image, as the reference makes them.

    ``float_image`` is (slow, fast); ``roi`` is (xmin, xmax, ymin, ymax) in
    (fast, slow) pixels, inclusive.  Pixels outside the ROI stay 0 and draw
    no random numbers.  Returns the uint16 image, the sum of the photon
    counts before the ADC offset, and the number of pixels clipped at 65535.
    """
    # the image allocated here and the kernel reached through jitcache.call: a kernel that
    # allocates loads Numba's array implementation with it, and Numba's own dispatch imports
    # numpy.ma (together 30-40 ms of a one-image run)
    image = np.zeros(float_image.shape, np.uint16)
    photons, overloads = jitcache.call(_noise_pixels, float_image, roi, float(adc), _stream(seed, generator), image)
    return image, photons, overloads


@njit(cache=True, nogil=True)
def _noise_pixels(float_image, roi, adc, generator, image):
    state = generator[0]
    xmin, xmax, ymin, ymax = roi
    spixels, fpixels = float_image.shape
    photons = 0.0
    overloads = 0
    for s in range(spixels):
        for f in range(fpixels):
            if f < xmin or f > xmax or s < ymin or s > ymax:
                continue
            test = np.float64(poidev(np.float32(float_image[s, f]), state))
            photons += test
            test += adc
            if test > 65535.0:
                test = 65535.0
                overloads += 1
            image[s, f] = _to_ushort(test)
    return photons, overloads

"""noisify's counting chain as compiled loops: photon noise per pixel, then the ADC.

The reference draws every deviate from one process-wide ran1 table and one gaussdev spare,
shared by two seeds: the noise seed (flicker, Poisson, read-out) and the calibration seed.  The
loops here keep the two seeds' idum values apart and switch them into the shared state around
each calibration draw; given a state of its own, the calibration stream is independent instead.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ..runtime import jitcache  # noqa: F401  (the cache folder must be set before any function is defined)
from . import rng
from .rng import _to_ushort

INT32_MAX = 2147483647.0
UINT16_MAX = 65535.0


@numba.njit(cache=True, nogil=True)
def _to_uint(x):
    # C's (unsigned int) of a double on x86-64: a 64-bit truncation (NaN and out of range give
    # 0x8000000000000000) of which the low 32 bits are kept
    if not (-9.223372036854775808e18 <= x < 9.223372036854775808e18):
        return np.uint32(0)
    return np.uint32(np.int64(x) & 0xFFFFFFFF)


@numba.njit(parallel=True, cache=True, nogil=True)
def photon_scale(image, factor):
    """The input on the photon scale, as the reference rounds it: float32(factor * pixel)."""
    out = np.empty(image.shape[0], np.float32)
    for i in prange(image.shape[0]):
        out[i] = np.float32(factor * np.float64(image[i]))
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _calibration_deviate(state, calib_state, calib_idum):
    seed_idum = state.idum
    calib_state.idum = calib_idum
    deviate = rng.gaussdev(calib_state)
    calib_idum = calib_state.idum
    state.idum = seed_idum
    return deviate, calib_idum


@numba.njit(cache=True, nogil=True)
def photon_noise(photons, flicker, calibration, generator, calib_generator, calib_idum):
    """Poisson counts (float32) of ideal photons/pixel after flicker and calibration error, and
    their double sum.  ``generator`` (`rng.new_rng`) is the noise stream; ``calib_generator`` is
    the same one (the reference's shared table) or a separate one, and ``calib_idum`` the
    calibration seed."""
    state = generator[0]
    calib_state = calib_generator[0]
    n = photons.shape[0]
    counts = np.empty(n, np.float32)
    total = 0.0
    for i in range(n):
        expected = np.float64(photons[i])
        if flicker > 0.0:
            expected *= 1.0 + flicker * np.float64(rng.gaussdev(state))
        if calibration > 0.0:
            deviate, calib_idum = _calibration_deviate(state, calib_state, calib_idum)
            expected *= 1.0 + calibration * np.float64(deviate)
        counts[i] = rng.poidev(np.float32(expected), state)
        total += np.float64(counts[i])
    return counts, total


@numba.njit(cache=True, nogil=True)
def noise_counts(photons, gain, adc, readout, generator):
    """Photons to ADU with read-out noise (from `generator`, `rng.new_rng`): the 16- and 32-bit
    pixels, the photon sum and the overloads of each width (pixels clipped at 65535, at 2**31 - 1)."""
    state = generator[0]
    n = photons.shape[0]
    out16 = np.empty(n, np.uint16)
    out32 = np.empty(n, np.uint32)
    total = 0.0
    over16 = 0
    over32 = 0
    for i in range(n):
        total += np.float64(photons[i])
        adu = np.float64(photons[i]) * gain + adc
        if readout > 0.0:
            adu += readout * np.float64(rng.gaussdev(state))
        if adu > INT32_MAX:
            adu = INT32_MAX
            over32 += 1
        out32[i] = _to_uint(adu)
        if adu > UINT16_MAX:
            adu = UINT16_MAX
            over16 += 1
        out16[i] = _to_ushort(adu)
    return out16, out32, total, over16, over32


@numba.njit(parallel=True, cache=True, nogil=True)
def noiseless_counts(photons, gain, adc, clip32_at_16):
    """Photons to ADU without noise: 16- and 32-bit pixels.  With ``clip32_at_16`` the 32-bit
    pixels are clipped at 65535 too, as in the reference."""
    n = photons.shape[0]
    out16 = np.empty(n, np.uint16)
    out32 = np.empty(n, np.uint32)
    for i in prange(n):
        adu = np.float64(photons[i]) * gain + adc
        if adu > INT32_MAX:
            adu = INT32_MAX
        if adu > UINT16_MAX and clip32_at_16:
            adu = UINT16_MAX
        out32[i] = _to_uint(adu)
        if adu > UINT16_MAX:
            adu = UINT16_MAX
        out16[i] = _to_ushort(adu)
    return out16, out32

"""The fused multiply-add and the one division of `sincg_with_slope`: the slope's reciprocal gives
the value's quotient bit for bit, so a derivative pass keeps the render's values."""

from __future__ import annotations

from fractions import Fraction

import numba
import numpy as np
import pytest

from nbnumba.physics.compiled import fma
from nbnumba.physics.fused import exact_fma
from nbnumba.physics.lattice import make_lattice


@numba.njit
def _compiled_fma(a, b, c, out):
    for i in range(a.shape[0]):
        out[i] = fma(a[i], b[i], c[i])


def test_the_fused_multiply_add_rounds_once():
    rng = np.random.default_rng(5)
    a, b = rng.uniform(-2, 2, 2000), rng.uniform(-2, 2, 2000)
    c = -(a * b)  # a * b rounded: a * b + c is the rounding error, which a plain sum loses
    compiled = np.empty_like(a)
    _compiled_fma(a, b, c, compiled)
    exact = [float(Fraction(x) * Fraction(y) + Fraction(z)) for x, y, z in zip(a, b, c)]
    assert np.array_equal(compiled, exact)
    assert [exact_fma(x, y, z) for x, y, z in zip(a, b, c)] == exact
    assert np.count_nonzero(compiled) > 1900  # and a * b + c would be 0 in each


def _sincg_pair(real):
    jit = numba.njit(error_model="numpy")
    lattice = make_lattice(jit, jit, real, np.floor, np.ceil, fma, False)
    with_slope, peeled = lattice.sincg_with_slope, lattice.sincg_peeled

    @numba.njit
    def both(h, n, values, plain, slopes):
        for i in range(h.shape[0]):
            h0 = np.ceil(h[i] - real(0.5))
            values[i], slopes[i] = with_slope(h[i], h0, n)
            plain[i] = peeled(h[i], h0, n)[0]

    return both


@pytest.mark.parametrize("real", [np.float64, np.float32])
def test_the_slope_keeps_the_value_of_the_division(real):
    rng = np.random.default_rng(11)
    h = (rng.integers(-40, 40, 400_000) + rng.uniform(-0.5, 0.5, 400_000) ** 3).astype(real)
    values, plain, slopes = np.empty_like(h), np.empty_like(h), np.empty_like(h)
    both = _sincg_pair(real)
    for n in (real(5.0), real(17.0), real(2.0)):  # the slopes checked below are N = 2's
        both(h, n, values, plain, slopes)
        assert np.array_equal(values.view(np.int64 if real == np.float64 else np.int32),
                              plain.view(np.int64 if real == np.float64 else np.int32))
    # and the slope is the derivative of sin(N pi h)/sin(pi h)
    x = np.pi * h[:2000].astype(np.float64)
    n = 2.0
    expected = np.pi * (n * np.cos(n * x) * np.sin(x) - np.sin(n * x) * np.cos(x)) / np.sin(x) ** 2
    keep = np.abs(np.sin(x)) > 1e-2
    tolerance = 1e-9 if real == np.float64 else 2e-3
    assert np.allclose(slopes[:2000][keep], expected[keep], rtol=tolerance, atol=tolerance * 40)

"""runtime/compiled_into_caller.py: a stub whose calls compile a chosen Python function into
each caller (the render and derivative strips are such stubs)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from nbnumba.runtime import compiled_into_caller as cic


def _scale(values, factor, out):
    raise NotImplementedError


def _scale64(values, factor, out):
    for i in range(values.shape[0]):
        if factor == 0.0:
            raise ValueError("factor 0")
        out[i] = values[i] * factor + 1.0


def _scale32(values, factor, out):
    for i in range(values.shape[0]):
        out[i] = values[i] * factor - 1.0


def _choose(values, factor, out):
    return _scale32 if values.dtype == numba.types.float32 else _scale64


scale = cic.compiled_into_caller(_scale, _choose)


@numba.njit
def first_caller(values, factor, out):
    scale(values, factor, out)


@numba.njit
def second_caller(values, out):
    scale(values, 2.0, out)
    scale(values, 2.0, out)  # a second call site in the same code links nothing more


def test_the_chosen_function_runs_in_each_caller_compiled_once_per_types():
    values = np.arange(5.0)
    out = np.zeros(5)
    first_caller(values, 2.0, out)
    np.testing.assert_array_equal(out, values * 2.0 + 1.0)
    out[:] = 0.0
    second_caller(values, out)
    np.testing.assert_array_equal(out, values * 2.0 + 1.0)
    single = np.zeros(5, dtype=np.float32)
    first_caller(values.astype(np.float32), 2.0, single)
    np.testing.assert_array_equal(single, np.arange(5, dtype=np.float32) * 2 - 1)
    compiled = [key[0] for key in cic._compiled if key[0] in (_scale64, _scale32)]
    assert sorted(f.__name__ for f in compiled) == ["_scale32", "_scale64"]


def test_an_exception_in_the_chosen_function_reaches_the_caller():
    with pytest.raises(ValueError, match="factor 0"):
        first_caller(np.arange(3.0), 0.0, np.zeros(3))

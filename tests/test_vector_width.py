"""Numba's compiler is told to use the CPU's 512-bit vectors where the CPU has them, and a user's
own choice of CPU name or features is left alone (the images stay the same: the golden tests)."""

from __future__ import annotations

import numba
import pytest
from llvmlite import binding

from nbnumba.runtime import vector_width


class _Features:
    def __init__(self, text):
        self.text = text

    def flatten(self):
        return self.text


@pytest.fixture
def host(monkeypatch):
    monkeypatch.setattr(numba.config, "CPU_NAME", None)
    monkeypatch.setattr(numba.config, "CPU_FEATURES", None)

    def given(text):
        monkeypatch.setattr(binding, "get_host_cpu_features", lambda: _Features(text))

    return given


def test_an_avx512_host_gets_its_features_with_the_256_bit_preference_lifted(host):
    host("+64bit,+avx2,+avx512f,-amx-tile")
    vector_width.allow_wide_vectors()
    assert numba.config.CPU_FEATURES == "+64bit,+avx2,+avx512f,-amx-tile,-prefer-256-bit"


def test_a_host_without_avx512_is_left_to_numba(host):
    host("+64bit,+avx2,-avx512f")
    vector_width.allow_wide_vectors()
    assert numba.config.CPU_FEATURES is None


@pytest.mark.parametrize("setting", ["CPU_NAME", "CPU_FEATURES"])
def test_a_users_own_cpu_setting_is_kept(host, monkeypatch, setting):
    host("+64bit,+avx512f")
    monkeypatch.setattr(numba.config, setting, "generic" if setting == "CPU_NAME" else "+sse2")
    vector_width.allow_wide_vectors()
    assert numba.config.CPU_FEATURES == (None if setting == "CPU_NAME" else "+sse2")

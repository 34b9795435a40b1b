"""Every test runs in an empty working directory of its own session, never in the checkout: a
simulation without -hkl reads Fdump.bin from the working directory, as nanoBragg does, so the
Fdump.bin that the README's example run leaves in the checkout would otherwise change what the
tests simulate."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _empty_working_directory(tmp_path_factory):
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(before)

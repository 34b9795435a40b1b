"""Threads must not change an image: each pixel is computed alone, whatever thread renders it."""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from nbnumba import api

ARGS = ["-cell", "70", "80", "90", "75", "85", "95", "-default_F", "100", "-N", "5", "-lambda", "1",
        "-distance", "100", "-detpixels", "160", "-pixel", "0.1", "-misset", "10", "20", "30",
        "-phi", "0", "-osc", "1", "-phisteps", "4", "-mosaic", "0.5", "-mosaic_dom", "3"]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads")
@pytest.mark.parametrize("precision", ["double", "single"])
def test_two_threads_give_the_one_thread_image(precision):
    sim = api.simulation(ARGS)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        alone = api.render(sim, precision=precision).image
        numba.set_num_threads(2)
        for _ in range(3):
            assert np.array_equal(api.render(sim, precision=precision).image, alone)
    finally:
        numba.set_num_threads(before)
    assert alone.max() > 0


DIAGNOSE = """
import numpy as np
from nbnumba import api
from nbnumba.kernels import cpu
api.render(api.simulation({args!r}))
cpu.rows_kernel.parallel_diagnostics(level=4)
"""


def test_no_buffer_is_shared_between_threads(tmp_path):
    # Numba moves an allocation out of a prange loop when it can; a per-row scratch buffer moved
    # there is shared by every thread, a race that silently corrupts images
    env = {**os.environ, "NBNUMBA_CACHE_DIR": str(tmp_path)}  # a fresh compile has diagnostics
    code = DIAGNOSE.format(args=ARGS[:-6])
    report = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "Allocation hoisting:" in report
    assert "No allocation hoisting found" in report

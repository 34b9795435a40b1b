"""Threads must not change an image: each pixel is computed alone, whatever thread renders it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

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


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads")
def test_a_helper_threads_failure_reaches_the_caller(monkeypatch):
    """The render's helper threads (kernels/cpu.render_rows) hand their failures to the thread
    that asked for the render: an image with rows missing must not come back as a result."""
    from nbnumba.kernels import cpu

    caller = threading.get_ident()
    buffers = cpu._strip_buffers

    def failing_in_helpers(geo):
        if threading.get_ident() != caller:
            raise MemoryError("no strip buffers for a helper")
        return buffers(geo)

    sim = api.simulation(ARGS)
    api.render(sim)
    monkeypatch.setattr(cpu, "_strip_buffers", failing_in_helpers)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(2)
        with pytest.raises(MemoryError, match="helper"):
            api.render(sim)
    finally:
        numba.set_num_threads(before)


DIAGNOSE = """
import numpy as np
from nbnumba import api
from nbnumba.kernels import derivatives_cpu
sim = api.simulation({args!r})
api.gradient(sim, np.ones(sim.shape), ["scale"])
next(k for k in (derivatives_cpu.plain_tangent_pixels, derivatives_cpu.general_tangent_pixels)
     if k.signatures).parallel_diagnostics(level=4)
"""


def test_no_buffer_is_shared_between_threads(tmp_path):
    # Numba moves an allocation out of a prange loop when it can; a strip buffer moved there is
    # shared by every thread, a race that silently corrupts images (the derivative kernel's loop;
    # the render's threads are Python's, each given its own buffers)
    env = {**os.environ, "NBNUMBA_CACHE_DIR": str(tmp_path)}  # a fresh compile has diagnostics
    code = DIAGNOSE.format(args=ARGS[:-6])
    report = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "Allocation hoisting:" in report
    assert "No allocation hoisting found" in report

"""The physics compiled for the CPU in both precisions, with an on-disk cache per source version.

Numba keys its cache on the calling function's file only, so a kernel cached before a change to
physics.py would be reused stale.  The cache folder is therefore named after a hash of the
sources that generate compiled code.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba
import numpy as np

_PACKAGE = Path(__file__).resolve().parent
_SOURCES = ["physics.py", "layout.py", "rng.py", "kernels/cpu.py", "kernels/trace.py", "kernels/cuda.py"]


def source_hash(package: Path = _PACKAGE) -> str:
    """The name of the cache folder: a hash of the sources that generate compiled code."""
    digest = hashlib.sha256()
    for name in _SOURCES:
        path = Path(package) / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _configure_cache() -> None:
    base = os.environ.get("NBNUMBA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "nbnumba")
    numba.config.CACHE_DIR = os.path.join(base, source_hash())


_configure_cache()

from .physics import make_physics  # noqa: E402  (the cache folder must be set first)

jit = numba.njit(cache=True, error_model="numpy")
inline_jit = numba.njit(cache=True, error_model="numpy", inline="always")
cpu64 = make_physics(jit, np.float64, inline_jit)
cpu32 = make_physics(jit, np.float32, inline_jit)


def _render_strip_stub(spixel, fpixel0, width, g, ip, sources, lattice, recip, Fhkl, state, tally, scratch,
                       trace, tracing):
    raise NotImplementedError


@numba.extending.overload(_render_strip_stub, jit_options={"cache": True})
def _render_strip_by_precision(spixel, fpixel0, width, g, ip, sources, lattice, recip, Fhkl, state, tally,
                               scratch, trace, tracing):
    """One generic `render_strip`, resolved at compile time from the array dtype."""
    chosen = (cpu32 if g.dtype == numba.types.float32 else cpu64).render_strip

    def impl(spixel, fpixel0, width, g, ip, sources, lattice, recip, Fhkl, state, tally, scratch, trace, tracing):
        chosen(spixel, fpixel0, width, g, ip, sources, lattice, recip, Fhkl, state, tally, scratch, trace, tracing)

    return impl


render_strip = _render_strip_stub

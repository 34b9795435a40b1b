"""The physics compiled for the CPU in both precisions (cached in `jitcache`'s folder)."""

from __future__ import annotations

import functools

import numba
import numpy as np

from ..runtime import jitcache  # noqa: F401  (the cache folder must be set before any function is defined)
from ..runtime.compiled_into_caller import compiled_into_caller
from . import layout as L
from . import make_physics
from .tangent_pixel import TANGENT_STRIP

jit = numba.njit(cache=True, error_model="numpy")
inline_jit = numba.njit(cache=True, error_model="numpy", inline="always")


@numba.extending.intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's fma: the CPU's instruction, in vectors too)."""
    if not (isinstance(a, numba.types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


@functools.cache
def _physics(real):
    return make_physics(jit, real, inline_jit, strip=TANGENT_STRIP, fma=fma)


def __getattr__(name):
    """`cpu64` and `cpu32`, each built when first asked for: defining its hundred dispatchers
    takes ~15 ms, which a run on a warm cache never needs (its kernels load from the cache).
    `pixel_active`, which has no reals, is cpu64's: a kernel names it as this module's attribute,
    which Numba looks up only when it compiles."""
    if name == "cpu64":
        return _physics(np.float64)
    if name == "cpu32":
        return _physics(np.float32)
    if name == "pixel_active":
        return _physics(np.float64).pixel_active
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@numba.njit(cache=True)
def strip_buffers(like, width):
    """State, tallies and lattice scratch for strips of up to `width` pixels, in the precision
    of `like`.  The derivative kernel allocates them through this call in its parallel loop
    because Numba hoists a plain np.empty out of a prange loop, and every thread would then share
    one; the render's threads take them from its Python function (kernels/cpu.py), on the host."""
    return (np.empty((L.N_STATE, width), dtype=like.dtype), np.empty((L.N_TALLY, width)),
            np.empty((L.N_SCRATCH, width), dtype=like.dtype))


def by_precision(stub, name):
    """Make `stub` one generic strip: the physics' function `name` in the precision of the strip's
    fourth argument (`g`), resolved at compile time and compiled into the calling kernel's code.
    The chosen precision's own Python function is compiled: a wrapper calling its dispatcher would
    be one more compiled layer, and LLVM would optimise the whole render once more in it."""

    def choose(*args):
        return getattr(_physics(np.float32 if args[3].dtype == numba.types.float32 else np.float64), name).py_func

    return compiled_into_caller(stub, choose)


def _render_strip(spixel, fpixel0, width, g, ip, sources, lattice, recip, Fhkl, state, tally, scratch, trace, tracing):
    raise NotImplementedError


def _plain_render_strip(spixel, fpixel0, width, g, ip, sources, lattice, recip, Fhkl, state, tally, scratch, trace,
                        tracing):
    raise NotImplementedError


render_strip = by_precision(_render_strip, "render_strip")
plain_render_strip = by_precision(_plain_render_strip, "plain_render_strip")

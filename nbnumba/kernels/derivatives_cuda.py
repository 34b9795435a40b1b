"""The CUDA derivative kernel: one GPU thread per pixel of the list, calling the shared
`tangent_pixel` (values and K tangents together), with the CPU derivative kernel's signature.

One kernel per precision, feature key (`physics.Features`) and number of directions K: the
thread's tangent rows are a local array, whose size must be known when the kernel is compiled.
The real and integer parameters go by value (tuples), as in the render kernel.  Each thread
writes its pixel's value and flags, and either its K tangents (derivative images) or their
weighted share of the reduced gradient, added atomically (so the last bits of a reduced gradient
depend on the order in which threads ran); the structure factors' gradient is added atomically
by `tangent_pixel` itself.  Nothing touches CUDA at import time.
"""

from __future__ import annotations

import math

import numpy as np

from .. import layout as L
from ..physics import features_of
from ..physics.tangent_pixel import N_W, W_VALUE
from . import cuda as gpu

THREADS = 128
_kernels: dict = {}
cuda = None  # numba.cuda, set at first build (a module global: the simulator swaps it in kernels)


def available() -> bool:
    return gpu.available()


def parts(pixels: int) -> int:
    """The GPU sums into one part (atomically)."""
    return 1


def _build(real, features, directions):
    global cuda
    gpu._configure()
    cuda = gpu.cuda
    from ..physics import make_physics

    # a device function even under the simulator, which then gives it the thread's atomics
    @cuda.jit(device=True)
    def accumulate(table, hi, ki, li, value):
        cuda.atomic.add(table, (hi, ki, li), value)

    phys = make_physics(gpu.physics_jit(), real, floor=math.floor, ceil=math.ceil, features=features,
                        accumulate=accumulate)
    tangent_pixel = phys.tangent_pixel
    work_shape = (N_W, max(directions, 1))  # a compile-time constant: a tuple closed over
    K = directions

    def tangent_window(geo, ints, sources, lattice, recip, Fhkl, dgeo, dsources, dlattice, drecip, pixels, weights,
                       store, scatter, values, dvalues, flags, gradient, Fgrad):
        """Pixel i of the list -> values[i], flags[i] and dvalues[i] (store) or its share of `gradient`."""
        i = cuda.grid(1)
        if i >= pixels.shape[0]:
            return
        s = np.int32(pixels[i] // ints[L.I_FPIXELS])
        f = np.int32(pixels[i] - s * ints[L.I_FPIXELS])
        work = cuda.local.array(work_shape, real)
        value, left, ran = tangent_pixel(s, f, geo, ints, sources, lattice, recip, Fhkl, dgeo, dsources, dlattice,
                                         drecip, work, scatter, weights[i], Fgrad)
        values[i] = value
        flags[i] = (1 if left else 0) + (2 if ran else 0)
        for j in range(K):
            if store:
                dvalues[i, j] = work[W_VALUE, j]
            else:
                cuda.atomic.add(gradient, j, weights[i] * work[W_VALUE, j])

    return gpu._jit_kernel(tangent_window, f"tangent{K}_" + gpu.key_tag(real, features))


def kernel(real, features, directions):
    key = (np.dtype(real).char, features, directions)
    with gpu._lock:
        if key not in _kernels:
            _kernels[key] = _build(np.dtype(real).type, features, directions)
        return _kernels[key]


def _direction_arrays(dgeo, dsources, dlattice, drecip):
    """With no direction, one zero row each: a device array needs an element to be typed alike."""
    if dgeo.shape[0]:
        return dgeo, dsources, dlattice, drecip
    return tuple(np.zeros((1,) + a.shape[1:], a.dtype) for a in (dgeo, dsources, dlattice, drecip))


def tangent_pixels(pixels, geo, ints, sources, lattice, recip, Fhkl, dgeo, dsources, dlattice, drecip, weights,
                   store, scatter, values, dvalues, flags, gradient_parts, Fgrad_parts):
    """The CPU kernel's contract (derivatives_cpu.tangent_pixels), on the GPU, in one part."""
    n = len(pixels)
    if n == 0:
        return
    directions = dgeo.shape[0]
    window = kernel(geo.dtype, features_of(ints), directions)
    geo_args, int_args = gpu.by_value(geo, ints)
    dgeo, dsources, dlattice, drecip = _direction_arrays(dgeo, dsources, dlattice, drecip)
    with gpu._quiet():
        d_values = cuda.device_array(n, dtype=np.float64)
        d_dvalues = cuda.device_array(dvalues.shape if store else (1, max(directions, 1)), dtype=np.float64)
        d_flags = cuda.device_array(n, dtype=np.int64)
        d_gradient = cuda.to_device(np.zeros(max(directions, 1)))
        d_Fgrad = cuda.to_device(np.zeros_like(Fgrad_parts[0]))
        window[(n + THREADS - 1) // THREADS, THREADS](
            geo_args, int_args, cuda.to_device(sources), cuda.to_device(lattice), cuda.to_device(recip),
            cuda.to_device(Fhkl), cuda.to_device(dgeo), cuda.to_device(dsources), cuda.to_device(dlattice),
            cuda.to_device(drecip), cuda.to_device(pixels), cuda.to_device(weights), bool(store), bool(scatter),
            d_values, d_dvalues, d_flags, d_gradient, d_Fgrad)
        values[:] = d_values.copy_to_host()
        flags[:] = d_flags.copy_to_host()
        if store:
            dvalues[:] = d_dvalues.copy_to_host()
        gradient_parts[0] += d_gradient.copy_to_host()[:directions]
        Fgrad_parts[0] += d_Fgrad.copy_to_host()


def launch_types(arrays: dict, dirs: dict, store: bool = False):
    """Numba types of the derivative kernel's arguments for `arrays` (passes._arrays) and `dirs`."""
    from numba import typeof

    geo_args, int_args = gpu.by_value(arrays["geo"], arrays["ints"])
    dirs = _direction_arrays(dirs["dgeo"], dirs["dsources"], dirs["dlattice"], dirs["drecip"])
    rest = (np.zeros(1, np.int64), np.zeros(1), store, False, np.zeros(1), np.zeros((1, 1)),
            np.zeros(1, np.int64), np.zeros(1), np.zeros((1, 1, 1)))
    return tuple(typeof(x) for x in (geo_args, int_args, arrays["sources"], arrays["lattice"], arrays["recip"],
                                     arrays["Fhkl"], *dirs, *rest))


def compile_ptx(arrays: dict, dirs: dict, cc=(9, 0)) -> str:
    """PTX of the derivative kernel for `arrays` and `dirs`, for compute capability `cc`, without a GPU."""
    gpu._numba_cuda()
    window = kernel(arrays["geo"].dtype, features_of(arrays["ints"]), dirs["dgeo"].shape[0])
    with gpu.standing_in_for(cc):
        ptx, _ = gpu.cuda.compile_ptx(window.py_func, launch_types(arrays, dirs), cc=tuple(cc))
    return ptx

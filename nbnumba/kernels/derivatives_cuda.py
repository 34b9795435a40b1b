"""The CUDA derivative kernel: one GPU thread per pixel of the list, calling the shared
`tangent_strip` on a strip of one pixel (values and K tangents together), with the CPU derivative
kernel's signature.

One kernel per precision, feature key (`physics.Features`) and number of directions K: the
thread's strip arrays are local arrays, whose sizes must be known when the kernel is compiled.
The real and integer parameters go by value (tuples), as in the render kernel.  Each thread
writes its pixel's value and flags, and either its K tangents (derivative images) or their
weighted share of the reduced gradient, added atomically (so the last bits of a reduced gradient
depend on the order in which threads ran); the structure factors' gradient is added atomically
by `tangent_strip` itself.  Nothing touches CUDA at import time.
"""

from __future__ import annotations

import math

import numpy as np

from ..physics import features_of
from ..physics import layout as L
from ..physics.tangent_pixel import N_PART, N_W, R_WEIGHT, W_VALUE
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
                        accumulate=accumulate, fma=gpu.physics_fma())
    tangent_strip = phys.tangent_strip
    # local array shapes must be compile-time constants: tuples closed over, not module lookups
    state_shape = (L.N_STATE, 1)
    tally_shape = (L.N_TALLY, 1)
    scratch_shape = (L.N_SCRATCH, 1)
    part_shape = N_PART  # the flat arrays of a strip of one pixel
    work_shape = N_W * max(directions, 1)
    K = directions

    def tangent_window(geo, ints, sources, lattice, recip, Fhkl, frames, dgeo, dsources, dbase, dlattice, generic,
                       drecip, use_shares, use_q, pixels, weights, store, scatter, values, dvalues, flags, gradient,
                       Fgrad):
        """Pixel i of the list -> values[i], flags[i] and dvalues[i] (store) or its share of
        `gradient` (weights: flat, the detector's)."""
        i = cuda.grid(1)
        if i >= pixels.shape[0]:
            return
        scan = pixels[i]
        s = np.int32(scan // ints[L.I_FPIXELS])
        f = np.int32(scan - s * ints[L.I_FPIXELS])
        weight = 0.0 if store else weights[scan]
        state = cuda.local.array(state_shape, real)
        tally = cuda.local.array(tally_shape, np.float64)
        scratch = cuda.local.array(scratch_shape, real)
        part = cuda.local.array(part_shape, real)
        work = cuda.local.array(work_shape, real)
        part[R_WEIGHT] = weight
        tangent_strip(s, f, 1, geo, ints, sources, lattice, recip, Fhkl, frames, dgeo, dsources, dbase, dlattice,
                      generic, drecip, state, tally, scratch, part, work, use_shares, use_q, scatter, Fgrad)
        values[i] = state[L.P_VALUE, 0]
        flags[i] = (1 if tally[L.T_LEFT_TABLE, 0] != 0.0 else 0) + (2 if tally[L.T_RAN_PHI, 0] != 0.0 else 0)
        for j in range(K):
            if store:
                dvalues[i, j] = work[j * N_W + W_VALUE]
            else:
                cuda.atomic.add(gradient, j, weight * work[j * N_W + W_VALUE])

    return gpu._jit_kernel(tangent_window, f"tangent{K}_" + gpu.key_tag(real, features))


def kernel(real, features, directions):
    key = (np.dtype(real).char, features, directions)
    with gpu._lock:
        if key not in _kernels:
            _kernels[key] = _build(np.dtype(real).type, features, directions)
        return _kernels[key]


CONTRACTS_SHARES = False


def _padded(array):
    """An empty array as one zero row, so that every table has an element to launch with (no
    generic direction: one zero lattice direction, whose share adds nothing)."""
    return array if array.shape[0] else np.zeros((1,) + array.shape[1:], array.dtype)


def tangent_pixels(pixels, geo, ints, sources, lattice, recip, Fhkl, frames, dgeo, dsources, dbase, dlattice, generic,
                   drecip, use_shares, use_q, weights, store, scatter, image, dvalues, flags, gradient_parts,
                   Fgrad_parts, share_parts):
    """The CPU kernel's contract (derivatives_cpu.tangent_pixels), on the GPU, in one part.  Every
    direction is carried per pixel (CONTRACTS_SHARES is false): `share_parts` stays zero."""
    n = len(pixels)
    if n == 0:
        return
    directions = dgeo.shape[0]
    window = kernel(geo.dtype, features_of(ints), directions)
    geo_args, int_args = gpu.by_value(geo, ints)
    tables = [cuda.to_device(_padded(a)) for a in (sources, lattice, recip, Fhkl, frames, dgeo, dsources, dbase,
                                                    dlattice, generic, drecip)]
    with gpu._quiet():
        d_values = cuda.device_array(n, dtype=np.float64)
        d_dvalues = cuda.device_array(dvalues.shape if store else (1, max(directions, 1)), dtype=np.float64)
        d_flags = cuda.device_array(n, dtype=np.int8)
        d_gradient = cuda.to_device(np.zeros(max(directions, 1)))
        d_Fgrad = cuda.to_device(np.zeros_like(Fgrad_parts[0]))
        window[(n + THREADS - 1) // THREADS, THREADS](
            geo_args, int_args, *tables[:10], tables[10], bool(use_shares), bool(use_q), cuda.to_device(pixels),
            cuda.to_device(weights), bool(store), bool(scatter), d_values, d_dvalues, d_flags, d_gradient, d_Fgrad)
        image[pixels] = d_values.copy_to_host()
        flags[:] = d_flags.copy_to_host()
        if store:
            dvalues[:] = d_dvalues.copy_to_host()
        gradient_parts[0] += d_gradient.copy_to_host()[:directions]
        Fgrad_parts[0] += d_Fgrad.copy_to_host()


def launch_types(arrays: dict, dirs: dict, store: bool = False):
    """Numba types of the derivative kernel's arguments for `arrays` (passes._arrays) and `dirs`."""
    from numba import typeof

    geo_args, int_args = gpu.by_value(arrays["geo"], arrays["ints"])
    tables = [_padded(dirs[k]) for k in ("frames", "dgeo", "dsources", "dbase", "dlattice", "generic", "drecip")]
    rest = (True, True, np.zeros(1, np.int32), np.zeros(1), store, False, np.zeros(1), np.zeros((1, 1)),
            np.zeros(1, np.int8), np.zeros(1), np.zeros((1, 1, 1)))
    return tuple(typeof(x) for x in (geo_args, int_args, arrays["sources"], arrays["lattice"], arrays["recip"],
                                     arrays["Fhkl"], *tables, *rest))


def compile_ptx(arrays: dict, dirs: dict, cc=(9, 0)) -> str:
    """PTX of the derivative kernel for `arrays` and `dirs`, for compute capability `cc`, without a GPU."""
    gpu._numba_cuda()
    window = kernel(arrays["geo"].dtype, features_of(arrays["ints"]), dirs["dgeo"].shape[0])
    with gpu.standing_in_for(cc):
        ptx, _ = gpu.cuda.compile_ptx(window.py_func, launch_types(arrays, dirs), cc=tuple(cc))
    return ptx

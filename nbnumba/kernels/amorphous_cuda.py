"""The CUDA backend of the amorphous background: one GPU thread per pixel calling the shared
amorphous physics as device functions.

`render_rows` has the CPU backend's signature and fills the same outputs.  Each thread writes its
pixel's value, solid-angle sum and sin(theta)/lambda range; the host adds them up per row
(in another order than the CPU's: the solid-angle sum may differ in its last bits).  Each
thread bisects the table for every evaluation (the CPU walks it from the previous pixel; both find
the same interval).  As in kernels/cuda.py nothing touches CUDA at import time, and
NUMBA_ENABLE_CUDASIM=1 runs the kernel in Numba's CUDA simulator.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from ..physics import amorphous_layout as A
from . import cuda as bragg

THREADS = (32, 4)  # (fast, slow) threads per block: a warp along each detector row
WHOLE_IMAGE = True  # one launch takes the whole ROI; blocks of rows would only add launches

_lock = threading.Lock()
_kernel = None
cuda = None  # numba.cuda, imported at first use (a module global: the simulator swaps it in kernels)


def _build():
    global cuda
    cuda = bragg._numba_cuda()
    from ..physics import (
        compiled,  # noqa: F401  (points Numba's cache folder at the source-hashed one)
        make_physics,
    )
    from ..physics.amorphous import make_amorphous

    device = bragg.physics_jit()
    phys = make_amorphous(device, make_physics(device, np.float64, floor=math.floor, ceil=math.ceil,
                                               fma=bragg.physics_fma()))
    pixel_value = phys.pixel_value
    roi_pixel = phys.roi_pixel
    options = {} if bragg._simulator() else {"cache": True}

    @cuda.jit(**options)
    def render_window(geo, ints, sources, table, nearest, row0, col0, image, omega_px, stol_px, last_px, keep_last):
        c, r = cuda.grid(2)
        if r >= image.shape[0] or c >= image.shape[1]:
            return
        s = row0 + r
        f = col0 + c
        if not roi_pixel(s, f, ints):
            omega_px[r, c] = 0.0
            stol_px[r, c, 0] = math.inf
            stol_px[r, c, 1] = -math.inf
            return
        value, om, low, high, stol, polar, omega = pixel_value(s, f, geo, ints, sources, table, nearest, False)
        image[r, c] = value
        omega_px[r, c] = om
        stol_px[r, c, 0] = low
        stol_px[r, c, 1] = high
        if keep_last != 0:
            last_px[r, c, 0] = stol
            last_px[r, c, 1] = polar
            last_px[r, c, 2] = omega

    return render_window


def render_rows(geo, ints, sources, table, image, omega_rows, stol_rows, last):
    """Every ROI pixel into `image`; for each ROI row the solid-angle sum and the smallest and
    largest sin(theta)/lambda seen; each ROI pixel's last sin(theta)/lambda, polarization and
    solid angle into `last` unless it is (0, 0, 3).  Other pixels and rows are left as they are."""
    global _kernel
    with _lock:
        if _kernel is None:
            _kernel = _build()
    spixels, fpixels = image.shape
    row_lo = max(int(ints[A.I_ROI_YMIN]), 0)
    row_hi = min(int(ints[A.I_ROI_YMAX]), spixels - 1)
    col_lo = max(int(ints[A.I_ROI_XMIN]), 0)
    col_hi = min(int(ints[A.I_ROI_XMAX]), fpixels - 1)
    if row_hi < row_lo or col_hi < col_lo:
        return
    window = (slice(row_lo, row_hi + 1), slice(col_lo, col_hi + 1))
    rows, cols = row_hi - row_lo + 1, col_hi - col_lo + 1
    with bragg._quiet():
        d_image = cuda.to_device(np.ascontiguousarray(image[window]))
        d_omega = cuda.device_array((rows, cols), dtype=np.float64)
        d_stol = cuda.device_array((rows, cols, 2), dtype=np.float64)
        keep_last = last.shape[0] > 0
        d_last = cuda.device_array((rows, cols, 3) if keep_last else (1, 1, 3), dtype=np.float64)
        grid = ((cols + THREADS[0] - 1) // THREADS[0], (rows + THREADS[1] - 1) // THREADS[1])
        _kernel[grid, THREADS](cuda.to_device(geo), cuda.to_device(ints), cuda.to_device(sources),
                               cuda.to_device(table), cuda.to_device(np.zeros(1, dtype=np.int64)),
                               np.int64(row_lo), np.int64(col_lo), d_image, d_omega, d_stol, d_last,
                               np.int64(keep_last))
        image[window] = d_image.copy_to_host()
        if keep_last:
            last[window] = d_last.copy_to_host()
        omega = d_omega.copy_to_host()
        stol = d_stol.copy_to_host()
    omega_rows[window[0]] = omega.sum(axis=1)
    stol_rows[window[0], 0] = stol[:, :, 0].min(axis=1)
    stol_rows[window[0], 1] = stol[:, :, 1].max(axis=1)

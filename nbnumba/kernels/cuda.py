"""The CUDA backend: one GPU thread per pixel calling the shared per-pixel physics.

`render_rows` has the CPU backend's signature and fills the same outputs: the image pixels of the
scan range, and per row the solid-angle sum and the first column whose interpolation left the
table / that ran a phi pass.  Each thread writes its pixel's value, solid-angle sum and flags; a
second kernel (one thread per row) then adds up each row left to right, as the CPU does, so the
per-row results do not depend on the order in which threads ran.

Nothing here touches CUDA at import time: `numba.cuda`, the physics device functions and the
kernels are built at first use, once per precision, so importing this module on a machine without
a GPU costs nothing.  Set NUMBA_ENABLE_CUDASIM=1 (before numba is imported) to run the kernels in
Numba's CUDA simulator.

Each render kernel is compiled for one precision and one feature key (`physics.Features`: what
the command fixes, such as interpolation, a curved detector, one source and layer without
oversampling), so a thread's registers are sized for the features its render uses rather than for
every feature.  The real and integer parameters reach the kernel by value, as tuples of
scalars: they live in the GPU's constant bank instead of registers.  The integers are int32
(`MAX_PIXELS` bounds the scan indices, the largest of them).

The GPU target is NVIDIA's numba-cuda package (`from numba import cuda` resolves to it once
installed).  NVVM contracts a * b + c into fused multiply-adds, so float64 images agree with the
CPU's to about an ulp per operation rather than bit for bit.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import threading
import warnings

import numpy as np

from ..errors import UserError
from ..physics import features_of
from ..physics import layout as L
from ..physics.fused import exact_fma

THREADS = (32, 4)  # (fast, slow) threads per block: a warp along each detector row
ROW_THREADS = 64  # threads per block of the per-row reduction
MAX_GRID_Y = 65535  # CUDA's limit on the second grid dimension
SMALL_TABLE = 1 << 18  # tables up to this many bytes are compared by value before reusing their upload

RENDERED = 4  # flag bit the kernel adds to every pixel it rendered
MAX_PIXELS = 2**31 - 1  # scan indices are int32 on the GPU

_lock = threading.RLock()
_kernels: dict = {}  # (dtype char, Features) -> render kernel; (dtype char, None) -> row reduction
_tables: dict = {}  # argument name -> (host array, snapshot or None, device array)
_available: bool | None = None
cuda = None  # numba.cuda, imported at first use (a module global: the simulator swaps it in kernels)


def _numba_cuda():
    global cuda
    if cuda is None:
        from numba import cuda as module
        cuda = module
    return cuda


def _simulator() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


@contextlib.contextmanager
def _quiet():
    """Hide Numba's performance advice (small grids, host arrays) while launching."""
    with warnings.catch_warnings():
        _ignore_performance_warnings()
        yield


def _ignore_performance_warnings():
    for module in ("numba.core.errors", "numba.cuda.core.errors"):
        try:
            warnings.simplefilter("ignore", importlib.import_module(module).NumbaPerformanceWarning)
        except Exception:  # noqa: BLE001 - numba-cuda has its own class, the built-in target has not
            pass
    warnings.filterwarnings("ignore", message=r".*(Grid size|Host array used|under-utilization)")


# time of every render kernel launch (CUDA events), for benchmarks; callers may clear it
kernel_seconds: list[float] = []


def available() -> bool:
    """True when a CUDA GPU, its driver and Numba's CUDA compiler all work (never raises).

    The first call compiles and runs a one-thread kernel, so that a driver too old for the
    toolkit, or a missing NVVM, is found here and not in the middle of a render.  Under the
    simulator (NUMBA_ENABLE_CUDASIM=1) it is True.
    """
    global _available
    if _available is not None:
        return _available
    with _lock:
        if _available is None:
            _available = _probe()
    return _available


def _probe() -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from numba import config
            if config.ENABLE_CUDASIM or _simulator():
                return True
            _numba_cuda()
            if not cuda.is_available():
                return False
            if len(cuda.gpus) == 0:
                return False

            @cuda.jit
            def probe(out):
                out[0] = out[0] * 2.0 + 1.0

            out = cuda.to_device(np.array([20.0]))
            probe[1, 1](out)
            return float(out.copy_to_host()[0]) == 41.0
    except Exception:  # noqa: BLE001 - any failure (no driver, no NVVM, bad PTX) means no GPU
        return False


def _configure():
    """numba.cuda, with its cache in the source-hashed folder of the CPU kernels."""
    import numba

    _numba_cuda()
    from ..physics import compiled  # noqa: F401  (points Numba's cache folder at the source-hashed one)

    try:  # numba-cuda keeps its own configuration: give it the same cache folder
        from numba.cuda.core import config as cuda_config
        if getattr(cuda_config, "CACHE_DIR", None) is not None and numba.config.CACHE_DIR:
            cuda_config.CACHE_DIR = numba.config.CACHE_DIR
    except Exception:  # noqa: BLE001 - Numba's built-in CUDA target reads numba.config
        pass


def physics_jit():
    """The decorator the physics is compiled with for CUDA: device functions.  Under the simulator
    they run as plain Python instead: its device-function wrapper only swaps the `cuda` module in
    a function's globals, which the physics never names, and every call into another module of
    the physics package locks and scans that module (seven times the time of a simulated pixel)."""
    if _simulator():
        return lambda fn: fn
    return cuda.jit(device=True)


def physics_fma():
    """The fused multiply-add the physics is compiled with for CUDA: the device's instruction, or
    under the simulator (whose own is a * b + c, rounded twice) the exact plain Python one."""
    if _simulator():
        return exact_fma

    @cuda.jit(device=True)
    def fma(a, b, c):
        return cuda.fma(a, b, c)

    return fma


def _jit_kernel(py_func, tag):
    """A cached kernel whose cache entry is named after `tag`: kernels of different feature keys
    come from one Python function and must not share an entry."""
    if _simulator():
        return cuda.jit(py_func)
    py_func.__qualname__ = f"{py_func.__qualname__}_{tag}"
    return cuda.jit(cache=True)(py_func)


def key_tag(real, features) -> str:
    """A short name for a kernel's precision and feature key (cache entries, PTX file names)."""
    f = features
    parts = ["double" if np.dtype(real) == np.float64 else "single", "shape" + str(f.shape)]
    parts += [name for name, on in (("interp", f.interpolate), ("curved", f.curved), ("simple", f.simple),
                                    ("osthick", f.oversample_thick), ("ospolar", f.oversample_polar),
                                    ("osomega", f.oversample_omega)) if on]
    return "_".join(parts)


def _build(real, features):
    """The render kernel for one precision and feature key (the physics as CUDA device functions)."""
    _configure()
    from ..physics import make_physics

    # NumPy's floor and ceil are not available on CUDA; math's return a real there
    phys = make_physics(physics_jit(), real, floor=math.floor, ceil=math.ceil, features=features,
                        fma=physics_fma())
    render_strip = phys.render_strip
    pixel_active = phys.pixel_active

    # local array shapes must be compile-time constants: tuples closed over, not module lookups
    state_shape, tally_shape, scratch_shape = (L.N_STATE, 1), (L.N_TALLY, 1), (L.N_SCRATCH, 1)

    @cuda.jit(device=True)
    def evaluate(s, f, geo, ints, sources, lattice, recip, Fhkl, trace):
        """One pixel as a strip of its own; its state lives in the thread's local memory."""
        state = cuda.local.array(state_shape, real)
        tally = cuda.local.array(tally_shape, np.float64)
        scratch = cuda.local.array(scratch_shape, real)
        render_strip(s, f, 1, geo, ints, sources, lattice, recip, Fhkl, state, tally, scratch, trace, False)
        flags = (1 if tally[L.T_LEFT_TABLE, 0] != 0.0 else 0) | (2 if tally[L.T_RAN_PHI, 0] != 0.0 else 0)
        return state[L.P_VALUE, 0], tally[L.T_OMEGA_SUM, 0], flags

    def render_window(geo, ints, sources, lattice, recip, Fhkl, mask, trace, row0, col0,
                      image, omega_px, flag_px):
        """Pixel (row0 + r, col0 + c) of the window -> image, solid-angle sum and flags.  `geo` and
        `ints` are tuples (by value); row0, col0 and the scan index are int32."""
        c, r = cuda.grid(2)
        if r >= image.shape[0] or c >= image.shape[1]:
            return
        s = np.int32(row0 + r)
        f = np.int32(col0 + c)
        scan = np.int32(s * ints[L.I_FPIXELS] + f)
        if scan < ints[L.I_RENDER_FROM] or scan >= ints[L.I_RENDER_TO] or not pixel_active(s, f, ints, mask):
            flag_px[r, c] = 0
            return
        value, om, flags = evaluate(s, f, geo, ints, sources, lattice, recip, Fhkl, trace)
        image[r, c] = value
        omega_px[r, c] = om
        flag_px[r, c] = flags | RENDERED

    return _jit_kernel(render_window, key_tag(real, features))


def _build_reducer():
    _configure()

    def reduce_rows(omega_px, flag_px, col0, omega_rows, flag_rows):
        """Per window row, left to right as on the CPU: solid-angle sum and first flagged columns."""
        r = cuda.grid(1)
        if r >= omega_px.shape[0]:
            return
        omega = 0.0
        left_table = -1
        ran_phi = -1
        for c in range(omega_px.shape[1]):
            flags = flag_px[r, c]
            if flags & RENDERED:
                omega += omega_px[r, c]
                if flags & 1 and left_table < 0:
                    left_table = col0 + c
                if flags & 2 and ran_phi < 0:
                    ran_phi = col0 + c
        omega_rows[r] = omega
        flag_rows[r, 0] = left_table
        flag_rows[r, 1] = ran_phi

    return _jit_kernel(reduce_rows, "rows")


def kernel(real, features):
    """The render kernel for np.float64 or np.float32 and a `physics.Features`, built at first use."""
    key = (np.dtype(real).char, features)
    with _lock:
        if key not in _kernels:
            _kernels[key] = _build(np.dtype(real).type, features)
        return _kernels[key]


def reducer():
    """The per-row reduction kernel (one for every precision and key)."""
    with _lock:
        if ("rows", None) not in _kernels:
            _kernels[("rows", None)] = _build_reducer()
        return _kernels[("rows", None)]


def by_value(geo, ints):
    """The real and integer parameters as the render kernel takes them: tuples of scalars of the
    render precision and of int32.  Every integer fits: the scan indices (at most the pixel count)
    are the largest, the loop counts and Miller index bounds are far smaller."""
    if int(ints[L.I_FPIXELS]) * int(ints[L.I_SPIXELS]) > MAX_PIXELS:
        raise UserError(f"the CUDA backend renders at most {MAX_PIXELS} pixels; use -device cpu")
    if int(np.abs(np.asarray(ints, dtype=np.int64)).max(initial=0)) > MAX_PIXELS:
        raise UserError("a parameter of this render is beyond the CUDA backend's 32-bit integers; use -device cpu")
    real = geo.dtype.type
    return tuple(real(x) for x in geo), tuple(np.int32(x) for x in ints)


def _device_table(name, array):
    """A device copy of a read-only table, reused while the same array object comes back.

    Small tables are also compared by value, so an in-place edit of sources, recip or
    a modest lattice is seen; large ones (structure factors, mask) are trusted by identity.
    """
    hit = _tables.get(name)
    if hit is not None and hit[0] is array and hit[2].shape == array.shape:
        snapshot = hit[1]
        if snapshot is None or snapshot == array.tobytes():
            return hit[2]
    host = np.ascontiguousarray(array)
    device = cuda.to_device(host)
    snapshot = host.tobytes() if host.nbytes <= SMALL_TABLE else None
    _tables[name] = (array, snapshot, device)
    return device


def _rows_that_fit(cols: int) -> int:
    """Rows per launch whose image, solid-angle and flag buffers (16 bytes a pixel) fit in half
    the GPU memory now free: a detector larger than the GPU is rendered in tiles of rows."""
    try:
        free = cuda.current_context().get_memory_info().free
    except Exception:  # noqa: BLE001 - no figure: assume the launch fits
        return MAX_GRID_Y * THREADS[1]
    if not math.isfinite(free):
        return MAX_GRID_Y * THREADS[1]
    return max(1, int(free // 2 // (16 * max(cols, 1))))


def clear_cache() -> None:
    """Forget the device copies of the tables (frees their GPU memory)."""
    with _lock:
        _tables.clear()


def render_rows(geo, ints, sources, lattice, recip, Fhkl, mask, image, omega_rows, flag_rows, trace, progress=None):
    """Render scan indices [ints[I_RENDER_FROM], ints[I_RENDER_TO]) into `image` on the GPU.

    Same contract as the CPU backend: for every row touched by the scan range, omega_rows[s] is
    the row's solid-angle sum and flag_rows[s] the first column whose interpolation left the
    table and the first column that ran a phi pass (-1 if none).  Pixels outside the scan range,
    the ROI or the mask keep their values in `image`.  `progress(rows)`, if given, hears the
    rows of the range done so far after each launch (one, unless the image is larger than the
    GPU's memory takes at once).
    """
    fpixels = int(ints[L.I_FPIXELS])
    start = int(ints[L.I_RENDER_FROM])
    stop = int(ints[L.I_RENDER_TO])
    first_row = start // fpixels
    rows = (stop - 1) // fpixels - first_row + 1
    if rows <= 0:
        return
    omega_rows[first_row:first_row + rows] = 0.0
    flag_rows[first_row:first_row + rows, :] = -1

    # only the ROI's bounding box is launched: the rest is never rendered
    last_row = min(first_row + rows - 1, int(ints[L.I_ROI_YMAX]), image.shape[0] - 1)
    row_lo = max(first_row, int(ints[L.I_ROI_YMIN]), 0)
    col_lo = max(int(ints[L.I_ROI_XMIN]), 0)
    col_hi = min(int(ints[L.I_ROI_XMAX]), fpixels - 1, image.shape[1] - 1)
    if rows == 1:  # a partial row: only the columns of the scan range
        col_lo = max(col_lo, start - first_row * fpixels)
        col_hi = min(col_hi, stop - 1 - first_row * fpixels)
    if last_row < row_lo or col_hi < col_lo:
        return

    render_window = kernel(geo.dtype, features_of(ints))
    reduce_rows = reducer()
    geo_args, int_args = by_value(geo, ints)

    with _quiet(), _lock:
        d_sources = _device_table("sources", sources)
        d_lattice = _device_table("lattice", lattice)
        d_recip = _device_table("recip", recip)
        d_Fhkl = _device_table("Fhkl", Fhkl)
        d_mask = _device_table("mask", mask)
        d_trace = _device_table("trace", trace)
        cols = col_hi - col_lo + 1
        chunk = min(MAX_GRID_Y * THREADS[1], _rows_that_fit(cols))
        for lo in range(row_lo, last_row + 1, chunk):
            hi = min(last_row, lo + chunk - 1)
            nrows = hi - lo + 1
            window = (slice(lo, hi + 1), slice(col_lo, col_hi + 1))
            d_image = cuda.to_device(np.ascontiguousarray(image[window]))  # unrendered pixels keep theirs
            d_omega = cuda.device_array((nrows, cols), dtype=np.float64)
            d_flags = cuda.device_array((nrows, cols), dtype=np.int32)
            grid = ((cols + THREADS[0] - 1) // THREADS[0], (nrows + THREADS[1] - 1) // THREADS[1])
            begin, end = cuda.event(), cuda.event()
            begin.record()
            render_window[grid, THREADS](geo_args, int_args, d_sources, d_lattice, d_recip, d_Fhkl, d_mask,
                                         d_trace, np.int32(lo), np.int32(col_lo), d_image, d_omega, d_flags)
            end.record()
            end.synchronize()
            kernel_seconds.append(begin.elapsed_time(end) / 1000.0)
            d_omega_rows = cuda.device_array(nrows, dtype=np.float64)
            d_flag_rows = cuda.device_array((nrows, 2), dtype=np.int64)
            reduce_rows[(nrows + ROW_THREADS - 1) // ROW_THREADS, ROW_THREADS](
                d_omega, d_flags, np.int64(col_lo), d_omega_rows, d_flag_rows)
            image[window] = d_image.copy_to_host()
            omega_rows[lo:hi + 1] = d_omega_rows.copy_to_host()
            flag_rows[lo:hi + 1, :] = d_flag_rows.copy_to_host()
            if progress is not None:
                progress(hi + 1 - first_row)


# ---------------------------------------------------------------------------------------------
# compiling without a GPU: what a render would launch, as PTX and through ptxas

@contextlib.contextmanager
def standing_in_for(cc):
    """Compile for compute capability `cc` (e.g. (9, 0)) with no GPU: while compiling, device
    functions ask the current device for its compute capability, so a stand-in answers."""
    import types as pytypes

    _numba_cuda()
    import numba.cuda.dispatcher as dispatcher

    saved = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=tuple(cc))
    try:
        yield
    finally:
        dispatcher.get_current_device = saved


def launch_types(geo, ints, sources, lattice, recip, Fhkl, mask, trace):
    """Numba types of the render kernel's arguments as `render_rows` launches it."""
    from numba import typeof

    geo_args, int_args = by_value(geo, ints)
    window = (np.zeros((1, 1), np.float32), np.zeros((1, 1)), np.zeros((1, 1), np.int32))
    return tuple(typeof(x) for x in (geo_args, int_args, sources, lattice, recip, Fhkl, mask, trace,
                                     np.int32(0), np.int32(0), *window))


def reducer_types():
    from numba import typeof

    return tuple(typeof(x) for x in (np.zeros((1, 1)), np.zeros((1, 1), np.int32), np.int64(0), np.zeros(1),
                                     np.zeros((1, 2), np.int64)))


def compile_ptx(arrays: dict, cc=(9, 0)) -> dict:
    """PTX of the kernels `render_rows` would launch for `arrays` (render.kernel_arrays), for
    compute capability `cc`, without a GPU: {kernel name: PTX text}."""
    _numba_cuda()
    trace = np.zeros((1, L.TRACE_WIDTH))
    geo, ints = arrays["geo"], arrays["ints"]
    render_window = kernel(geo.dtype, features_of(ints))
    types = launch_types(geo, ints, arrays["sources"], arrays["lattice"], arrays["recip"], arrays["Fhkl"],
                         arrays["mask"], trace)
    with standing_in_for(cc):
        render_ptx, _ = cuda.compile_ptx(render_window.py_func, types, cc=tuple(cc))
        reduce_ptx, _ = cuda.compile_ptx(reducer().py_func, reducer_types(), cc=tuple(cc))
    return {"render_window": render_ptx, "reduce_rows": reduce_ptx}


def ptxas_path():
    """ptxas from the `nbnumba[cuda]` wheels (or a toolkit), None when there is none."""
    try:
        from cuda import pathfinder
    except ImportError:
        return None
    return pathfinder.find_nvidia_binary_utility("ptxas")


def ptxas_version(ptxas) -> str:
    import subprocess

    out = subprocess.run([ptxas, "--version"], capture_output=True, text=True).stdout
    lines = [line for line in out.splitlines() if "release" in line] or out.strip().splitlines() or ["?"]
    return lines[-1].strip()


def assemble(ptx: str, arch: str, ptxas, cubin=None) -> dict:
    """Assemble PTX for `arch` (e.g. "sm_90") with `ptxas -v`; the entry kernel's resources:
    registers, spill stores/loads and stack frame (bytes), and its local memory (the largest of
    the stack frame, ptxas's cumulative stack size and any lmem it reports)."""
    import re
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "kernel.ptx")
        with open(source, "w") as handle:
            handle.write(ptx)
        target = cubin or os.path.join(tmp, "kernel.cubin")
        done = subprocess.run([ptxas, "-v", f"-arch={arch}", source, "-o", target], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ptxas failed: {done.stderr.strip()[-2000:]}")
    entry = re.search(r"Compiling entry function '([^']+)'", done.stderr).group(1)
    block = done.stderr.split(f"Function properties for {entry}", 1)[1]
    number = lambda pattern: int(m.group(1)) if (m := re.search(pattern, block)) else 0  # noqa: E731
    figures = {"registers": number(r"Used (\d+) registers"), "spill_stores": number(r"(\d+) bytes spill stores"),
               "spill_loads": number(r"(\d+) bytes spill loads"), "stack_frame": number(r"(\d+) bytes stack frame")}
    figures["local_memory"] = max(figures["stack_frame"], number(r"(\d+) bytes cumulative stack size"),
                                  number(r"(\d+) bytes lmem"))
    return figures

"""Drive a backend over the detector, with progress, and resolve the reference's
order-dependent switches (phi = 0 carry-over, interpolation switched off mid-scan) exactly from
what each pass reports."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from ..model.simulation import Simulation
from ..physics import layout as L
from ..runtime import interrupt


@dataclass
class Rendered:
    image: np.ndarray  # float32 (slow, fast)
    omega_sum: float
    interpolation_left_at: int  # scan index where interpolation was switched off, -1 if never
    seconds: float


def kernel_arrays(sim: Simulation, precision: str) -> dict:
    real = np.float32 if precision == "single" else np.float64
    mask = sim.mask if sim.mask is not None else np.zeros((1, 1), dtype=np.uint16)
    return dict(geo=sim.geo.astype(real), ints=sim.ints.copy(), sources=sim.source_table.astype(real),
                lattice=_pair_major(sim.lattice, real), recip=sim.recip.astype(real),
                Fhkl=sim.Fgrid.astype(real), mask=np.ascontiguousarray(mask))


def _pair_major(lattice: np.ndarray, real) -> np.ndarray:
    """(variant, phi, mosaic, 9) -> (variant, phi*mosaic, 9): the nine components of one
    (phi step, mosaic domain) pair side by side, as the kernels read them."""
    return np.ascontiguousarray(lattice.reshape(lattice.shape[0], -1, 9), dtype=real)


def first_active_pixel(sim: Simulation) -> int:
    """Scan index of the first pixel the reference renders (ROI and mask), -1 if none."""
    xmin, xmax, ymin, ymax = sim.detector.roi
    x0, y0 = max(xmin, 0), max(ymin, 0)
    window = np.ones((1, 1), dtype=bool) if sim.mask is None else sim.mask[y0:ymax + 1, x0:xmax + 1] != 0
    if y0 >= sim.detector.spixels or x0 >= sim.detector.fpixels or x0 > xmax or y0 > ymax or not window.any():
        return -1
    s, f = np.unravel_index(int(np.argmax(window)), window.shape)
    return int((y0 + s) * sim.detector.fpixels + x0 + f)


def _first_flagged(flag_rows: np.ndarray, column: int, fpixels: int) -> int:
    rows = np.flatnonzero(flag_rows[:, column] >= 0)
    if rows.size == 0:
        return -1
    return int(rows[0] * fpixels + flag_rows[rows[0], column])


class Progress:
    """Percent done on stderr for runs longer than a second."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self.start, self.shown = enabled, total, time.perf_counter(), -1

    def update(self, done: int) -> None:
        if not self.enabled or time.perf_counter() - self.start < 1.0:
            return
        percent = int(100 * done / max(self.total, 1))
        if percent != self.shown:
            self.shown = percent
            print(f"\r{percent:3d}% done", end="", file=sys.stderr, flush=True)
            interrupt.line_open(True)

    def close(self) -> None:
        if self.enabled and self.shown >= 0:
            print(file=sys.stderr, flush=True)
            interrupt.line_open(False)


def render(sim: Simulation, backend, precision: str = "double", progress: bool = False) -> Rendered:
    """Render the whole detector with `backend.render_rows` (same signature on every backend)."""
    t0 = time.perf_counter()
    arrays = kernel_arrays(sim, precision)
    ints = arrays["ints"]
    spixels, fpixels = sim.shape
    npix = spixels * fpixels
    guess = first_active_pixel(sim)
    ints[L.I_FIRST_PIXEL] = guess
    image, omega_rows, flag_rows = _pass(backend, arrays, spixels, fpixels, 0, npix, progress)
    ran_phi = _first_flagged(flag_rows, 1, fpixels)
    if ran_phi >= 0 and ran_phi != guess and not np.array_equal(sim.lattice[0], sim.lattice[1]):
        ints[L.I_FIRST_PIXEL] = ran_phi
        image, omega_rows, flag_rows = _pass(backend, arrays, spixels, fpixels, 0, npix, progress)
    left = _first_flagged(flag_rows, 0, fpixels) if sim.interpolate else -1
    if 0 <= left < npix - 1:
        ints[L.I_INTERP_UNTIL] = left
        later, _, _ = _pass(backend, arrays, spixels, fpixels, left + 1, npix, False, out=image)
        image = later
    return Rendered(image, float(omega_rows.sum()), left, time.perf_counter() - t0)


def _pass(backend, arrays, spixels, fpixels, start, stop, progress, out=None):
    image = out if out is not None else np.zeros((spixels, fpixels), dtype=np.float32)
    omega_rows = np.zeros(spixels)
    flag_rows = np.full((spixels, 2), -1, dtype=np.int64)
    ints = arrays["ints"]
    meter = Progress(progress, stop - start)
    first_row = start // fpixels
    trace = np.zeros((1, L.TRACE_WIDTH))
    ints[L.I_RENDER_FROM] = start
    ints[L.I_RENDER_TO] = stop
    # the whole range in one call: cut in blocks, the CPU threads were started and waited for
    # each other at every block (the supervisor's render on 2 threads took 5-8 % longer)
    try:
        backend.render_rows(arrays["geo"], ints, arrays["sources"], arrays["lattice"], arrays["recip"],
                            arrays["Fhkl"], arrays["mask"], image, omega_rows, flag_rows, trace,
                            lambda rows: meter.update(min(stop, (first_row + rows) * fpixels) - start))
        meter.update(stop - start)
    finally:  # an interruption's message must start on a line of its own
        meter.close()
    return image, omega_rows, flag_rows

"""How much work a render is, and how long it should take, worked out before anything starts.

The work is counted in pixel-steps: every pixel rendered (inside -roi, not masked) is evaluated
once per sub-pixel, sensor layer, source, phi step and mosaic domain, and each evaluation costs
about the same.  A job past limits that no sane experiment needs is refused, naming the flags to
check; `-force` renders it anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .params import Params
from .sampling import sane, steps_range_step

# CPU cost of one pixel-step on one thread, in ns.  From reports/cpu_benchmark.md (thread-scaling
# table, render alone, warm, 1 thread): the supervisor workload, 2463 x 2527 pixels x 10 phi steps
# = 62.2e6 pixel-steps with HKL look-ups, renders in 0.748 s in double precision (12.0 ns) and
# 0.526 s in single (8.5 ns).  The heavy workload (default_F, 2x2 sub-pixels, 5 domains, 4 steps,
# 21.0e6 pixel-steps) gives 10.7 and 7.1 ns, so these are the higher figures.  Two threads run
# 1.86-1.97x as fast as one in that table: the time is divided by the thread count.
CPU_NS_PER_STEP = {"double": 12.0, "single": 8.5}
# Tricubic interpolation of the structure factors (64 look-ups and the polynomial fits per step)
# costs about 11 times as much: measured with benchmarks-style warm renders of the golden
# hkl_interpolate geometry (60 A cell, P1_dense.hkl, N 5, 256 x 256 pixels, 8 phi steps, 1 thread,
# double), -interpolate and -nointerpolate interleaved: 145-158 ns against 13.2-15.9 ns per step,
# ratios 9.9, 10.9 and 12.0 (2026-12-01, a shared 2-core machine).  The nearest-F figure there
# agrees with the 12 ns above.
TRICUBIC_FACTOR = 11.0
# nonBragg's pixel-step (one sub-pixel and source: the F(sin theta/lambda) spline, polarization,
# solid angle) on one CPU thread: warm renders of water.stol on 1024 x 1024 pixels x 4x4
# sub-pixels x 1 source took 1.21 s (72 ns a step), on 256 x 256 x 2x2, 87 ns (double, 1 thread,
# a shared 2-core machine, 2026-12-06).
AMORPHOUS_NS_PER_STEP = 72.0
# No GPU has been measured yet (reports/gpu_benchmark.md does not exist).  A pixel-step is well
# over 100 floating-point operations (three sincg, the scattering vector, its rotation), and no
# GPU does more than about 1e14 of those a second: 1e12 pixel-steps/s is an upper bound, so an
# estimate made with it is a lower bound on the time and a refusal made with it is never wrong.
GPU_MAX_STEPS_PER_S = 1e12

AUTO_OVERSAMPLE_LIMIT = 64  # sub-pixels a side: beyond it the automatic choice is a unit slip
TIME_LIMIT_S = 86400.0  # a day
SAY_AFTER_S = 5.0

FACTOR_FLAGS = {
    "pixels": "-detpixels, -detsize, -pixel or -roi",
    "sub-pixels": "-oversample",
    "layers": "-thicksteps",
    "sources": "-divsteps, -hdivstep, -vdivstep, -dispsteps or -sourcefile",
    "phi steps": "-phisteps or -phistep",
    "mosaic domains": "-mosaic_domains",
}

SINGULAR = {"layers": "layer", "sources": "source", "phi steps": "phi step", "mosaic domains": "mosaic domain"}


@dataclass(frozen=True)
class Estimate:
    pixels: int
    oversample: int
    layers: int
    sources: int
    phisteps: int
    domains: int
    device: str  # "cpu", or "gpu" for -device cuda and auto
    precision: str
    threads: int
    interpolate: bool = False
    amorphous: bool = False  # nonBragg's render: no lattice, one layer, phi step and domain

    def factors(self) -> dict[str, int]:
        return {"pixels": self.pixels, "sub-pixels": self.oversample ** 2, "layers": self.layers,
                "sources": self.sources, "phi steps": self.phisteps, "mosaic domains": self.domains}

    @property
    def steps(self) -> float:
        return float(math.prod(self.factors().values()))

    def ns_per_step(self) -> float:
        """CPU nanoseconds per pixel-step on one thread."""
        if self.amorphous:
            return AMORPHOUS_NS_PER_STEP
        ns = CPU_NS_PER_STEP.get(self.precision, CPU_NS_PER_STEP["double"])
        return ns * TRICUBIC_FACTOR if self.interpolate else ns

    @property
    def seconds(self) -> float:
        """The expected render time on the CPU; on a GPU the least it can take."""
        if self.device == "cpu":
            return self.steps * self.ns_per_step() * 1e-9 / self.threads
        return self.steps / GPU_MAX_STEPS_PER_S

    def rate(self) -> str:
        if self.device == "cpu":
            how = " (tricubic interpolation)" if self.interpolate else ""
            return f"{self.ns_per_step():g} ns per step{how} on {self.threads} CPU thread{'s' * (self.threads != 1)}"
        return f"on a GPU doing at most {GPU_MAX_STEPS_PER_S:.0e} pixel-steps/s (no GPU has been measured yet)"

    def breakdown(self) -> str:
        parts = [f"{self.pixels} pixels", f"{self.oversample}x{self.oversample} sub-pixels"]
        for name, value in self.factors().items():
            if name not in ("pixels", "sub-pixels") and not (self.amorphous and name != "sources"):
                parts.append(f"{value} {name if value != 1 else SINGULAR[name]}")
        return " x ".join(parts)

    def summary(self) -> str:
        about = "about" if self.device == "cpu" else "at least"
        return (f"{about} {duration(self.seconds)} of rendering: {self.steps:.3g} pixel-steps ({self.breakdown()}), "
                f"{self.rate()}")

    def worth_saying(self) -> bool:
        return self.seconds > SAY_AFTER_S

    def largest(self) -> list[str]:
        """The two factors with most weight (after the pixel count, which is the image asked for)."""
        others = sorted(((v, k) for k, v in self.factors().items() if k != "pixels" and v > 1), reverse=True)
        return [k for _, k in others[:2]] or ["pixels"]


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.2g} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    if seconds < 2 * 365.25 * 86400:
        return f"{seconds / 86400:.0f} days"
    return f"{seconds / (365.25 * 86400):.3g} years"


def rendered_pixels(roi, fpixels: int, spixels: int, mask) -> int:
    """Pixels inside the -roi (which the reference clips to the detector) and not masked."""
    xmin, xmax, ymin, ymax = roi
    xmax, ymax = min(xmax, fpixels - 1), min(ymax, spixels - 1)
    if xmin > xmax or ymin > ymax:
        return 0
    if mask is None:
        return (xmax - xmin + 1) * (ymax - ymin + 1)
    return int(np.count_nonzero(mask[ymin:ymax + 1, xmin:xmax + 1]))


def source_bound(p: Params) -> int:
    """The number of sources of the divergence x dispersion grid before -round_div trims its
    corners (at most 4/pi too many), computed without building the grid."""
    counts = [sane(*steps_range_step(steps, span, step, count_only_span=1.0, span_only_halves=False))[0]
              for steps, span, step in ((p.hdivsteps, p.hdivrange, p.hdivstep), (p.vdivsteps, p.vdivrange, p.vdivstep),
                                        (p.dispsteps, p.dispersion, p.dispstep))]
    return math.prod(counts)


def work_estimate(p: Params, pixels: int, oversample: int, layers: int, sources: int, phisteps: int,
                  domains: int, interpolate: bool) -> Estimate:
    import numba

    device = "cpu" if p.device == "cpu" else "gpu"
    threads = p.nthreads if p.nthreads > 0 else numba.config.NUMBA_NUM_THREADS
    return Estimate(pixels, oversample, layers, sources, phisteps, domains, device, p.precision, max(threads, 1),
                    interpolate)


def _slips(p: Params) -> str:
    return "; ".join(short for short, _ in p.slips)


def check_automatic_oversample(p: Params, wanted: float, figures: str) -> None:
    """The automatic oversampling grows with the crystal size and the pixel, and shrinks with the
    distance and wavelength: past the limit one of them is almost surely in the wrong unit."""
    if p.oversample > 0 or p.force or not wanted > AUTO_OVERSAMPLE_LIMIT:
        return
    check = (f"check {_slips(p)}" if p.slips else
             "check the crystal size (-N, -samplesize), -distance (mm), -pixel (mm) and -lambda (A)")
    raise UserError(f"the automatic oversampling would be {wanted:.3g} sub-pixels a side (more than "
                    f"{AUTO_OVERSAMPLE_LIMIT}{figures}); {check}; give -oversample N to choose it yourself, or "
                    f"-force to render anyway")


def check_time(p: Params, estimate: Estimate) -> None:
    if p.force or not estimate.seconds > TIME_LIMIT_S:
        return
    check = "; ".join(f"{FACTOR_FLAGS[k]} ({k})" for k in estimate.largest())
    if p.slips:
        check = f"{_slips(p)}; {check}"
    raise UserError(f"this render would take {'at least ' * (estimate.device != 'cpu')}"
                    f"{duration(estimate.seconds)} (more than a day): {estimate.steps:.3g} pixel-steps "
                    f"({estimate.breakdown()}), {estimate.rate()}; check {check}; -force renders it anyway")

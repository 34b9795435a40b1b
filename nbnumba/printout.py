"""`-printout` and `-printout_pixel`: nanoBragg's per-pixel report on stdout, made from the
trace of each pixel (the values its last evaluation left, as the reference prints them when the
pixel is done)."""

from __future__ import annotations

import math

import numpy as np

from . import layout as L
from .simulation import Simulation
from .trace_report import trace_pixels


def printout_pixels(sim: Simulation) -> list[tuple[int, int]]:
    """(slow, fast) of the pixels to report, in scan order: the one -printout_pixel names, or every
    pixel the render visits (ROI and mask) for a bare -printout."""
    p = sim.params
    xmin, xmax, ymin, ymax = sim.detector.roi
    spixels, fpixels = sim.shape

    def rendered(s, f):
        inside = xmin <= f <= xmax and ymin <= s <= ymax
        return inside and (sim.mask is None or sim.mask[s, f] != 0)

    if p.printout_fpixel >= 0:
        s, f = p.printout_spixel, p.printout_fpixel
        return [(s, f)] if 0 <= s < spixels and 0 <= f < fpixels and rendered(s, f) else []
    return [(s, f) for s in range(max(ymin, 0), min(ymax + 1, spixels))
            for f in range(max(xmin, 0), min(xmax + 1, fpixels)) if rendered(s, f)]


def _last(rows: np.ndarray) -> dict[int, np.ndarray]:
    return {int(row[0]): row[1:] for row in rows}


def pixel_report(sim: Simulation, spixel: int, fpixel: int, rows: np.ndarray, pixel: float) -> list[str]:
    """The reference's lines for one finished pixel; `pixel` is its value in the float image."""
    last = _last(rows)
    pos, scattering, hkl = last[L.TR_POS], last[L.TR_SCATTERING], last[L.TR_HKL]
    h0, final = last[L.TR_HKL0], last[L.TR_FINAL]
    stol = 0.5 * math.sqrt(float(np.dot(scattering[:3], scattering[:3])))
    twotheta = math.atan2(math.sqrt(pos[1] * pos[1] + pos[2] * pos[2]), pos[0])
    test = math.sin(twotheta / 2.0) / (sim.lambda0 * 1e10)
    f_latt = last[L.TR_FLATT][3] if L.TR_FLATT in last else 0.0
    f_cell = last[L.TR_FCELL][0] if L.TR_FCELL in last else 0.0
    axes = [last[code][:3] * 1e10 for code in (L.TR_A, L.TR_B, L.TR_C)]
    return [
        f"{fpixel:4d} {spixel:4d} : stol = {stol:g} or {test:g}",
        f"at {pos[0]:g} {pos[1]:g} {pos[2]:g}",
        f"hkl= {hkl[0]:f} {hkl[1]:f} {hkl[2]:f}  hkl0= {int(h0[0])} {int(h0[1])} {int(h0[2])}",
        f" F_cell={f_cell:g}  F_latt={f_latt:g}   I = {final[0]:g}",
        f"I/steps {final[0] / sim.steps:15.10g}",
        f"polar   {final[2]:15.10g}",
        f"omega   {final[3]:15.10g}",
        f"capfrac {final[1]:15.10g}",
        f"pixel   {pixel:15.10g}",
        "real-space cell vectors (Angstrom):",
        f"     {'a':<10s}  {'b':<10s}  {'c':<10s}",
        *(f"{name}: {axes[0][i]:11.8f} {axes[1][i]:11.8f} {axes[2][i]:11.8f}" for i, name in enumerate("XYZ")),
    ]


def printout_lines(sim: Simulation, image: np.ndarray):
    """Every reported pixel's lines, pixel by pixel."""
    pixels = printout_pixels(sim)
    for (s, f), (_, rows) in zip(pixels, trace_pixels(sim, pixels)):
        yield from pixel_report(sim, s, f, rows, float(image[s, f]))

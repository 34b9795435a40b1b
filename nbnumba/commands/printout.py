"""`-printout` and `-printout_pixel`: nanoBragg's per-pixel report on stdout, made from the
trace of each pixel (the values its last evaluation left, as the reference prints them when the
pixel is done)."""

from __future__ import annotations

import math

import numpy as np

from ..model.simulation import Simulation
from ..physics import layout as L
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


def pixel_report(sim: Simulation, spixel: int, fpixel: int, rows: np.ndarray, last: dict, pixel: float) -> list[str]:
    """The reference's lines for one finished pixel: the values its last evaluation left (`last`,
    the trace's TL_* slots), its final sums (the trace's last rows); `pixel`: its image value."""
    pos = next(row[1:] for row in rows[::-1] if row[0] == L.TR_POS)
    final = next(row[1:] for row in rows[::-1] if row[0] == L.TR_FINAL)
    q, hkl, h0 = last[L.TL_Q], last.get(L.TL_HKL, np.zeros(5)), last.get(L.TL_HKL0, np.zeros(5))
    stol = 0.5 * math.sqrt(float(np.dot(q[:3], q[:3])))
    twotheta = math.atan2(math.sqrt(pos[1] * pos[1] + pos[2] * pos[2]), pos[0])
    test = math.sin(twotheta / 2.0) / (sim.lambda0 * 1e10)
    f_cell = last[L.TL_FCELL][0] if L.TL_FCELL in last else 0.0
    axes = [last[slot][:3] * 1e10 if slot in last else np.zeros(3) for slot in (L.TL_A, L.TL_B, L.TL_C)]
    return [
        f"{fpixel:4d} {spixel:4d} : stol = {stol:g} or {test:g}",
        f"at {pos[0]:g} {pos[1]:g} {pos[2]:g}",
        f"hkl= {hkl[0]:f} {hkl[1]:f} {hkl[2]:f}  hkl0= {int(h0[0])} {int(h0[1])} {int(h0[2])}",
        f" F_cell={f_cell:g}  F_latt={hkl[3]:g}   I = {final[0]:g}",
        f"I/steps {final[0] / sim.steps:15.10g}",
        f"polar   {final[2]:15.10g}",
        f"omega   {final[3]:15.10g}",
        f"capfrac {final[1]:15.10g}",
        f"pixel   {pixel:15.10g}",
        "real-space cell vectors (Angstrom):",
        f"     {'a':<10s}  {'b':<10s}  {'c':<10s}",
        *(f"{name}: {axes[0][i]:11.8f} {axes[1][i]:11.8f} {axes[2][i]:11.8f}" for i, name in enumerate("XYZ")),
    ]


def interpolation_warning(sim: Simulation, scan_index: int) -> list[str]:
    """The reference's warning when interpolation first leaves the table, with the h k l of that
    evaluation (from a trace of the pixel where the render saw it happen)."""
    pixel = divmod(scan_index, sim.detector.fpixels)
    _, _, last = next(trace_pixels(sim, [pixel]))
    if L.TL_LEFT not in last:
        return []
    h, k, l, h0, k0 = last[L.TL_LEFT]
    l0 = last[L.TL_LEFT0][0]
    return [f"WARNING: out of range for three point interpolation: h,k,l,h0,k0,l0: "
            f"{h:g},{k:g},{l:g},{int(h0)},{int(k0)},{int(l0)} ",
            "WARNING: further warnings will not be printed! "]


def printout_lines(sim: Simulation, image: np.ndarray):
    """Every reported pixel's lines, pixel by pixel."""
    pixels = printout_pixels(sim)
    for (s, f), (_, rows, last) in zip(pixels, trace_pixels(sim, pixels)):
        yield from pixel_report(sim, s, f, rows, last, float(image[s, f]))

"""X-ray sources: a user's source file, or the grid of divergence angles x wavelengths."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..io.textcolumns import read_columns
from .detector import cross, rotate_axis, unit
from .params import Params
from .sampling import sane, steps_range_step


@dataclass
class Sources:
    directions: np.ndarray  # (n, 3) unit vectors from the sample toward each source
    wavelengths: np.ndarray  # (n,) m
    listing: list  # (X, Y, Z, weight, lambda) as given, for the report
    divergence: tuple  # (hdivrange, hdivstep, vdivrange, vdivstep, divsteps)
    dispersion: tuple  # (dispersion, dispstep, dispsteps)
    divergence_points: list
    wavelength_steps: list


def build_sources(p: Params, beam, polar_vector, lambda0: float) -> Sources:
    hsteps, hrange, hstep = sane(*steps_range_step(p.hdivsteps, p.hdivrange, p.hdivstep,
                                                   count_only_span=1.0, span_only_halves=False))
    vsteps, vrange, vstep = sane(*steps_range_step(p.vdivsteps, p.vdivrange, p.vdivstep,
                                                   count_only_span=1.0, span_only_halves=False))
    dsteps, disp, dstep = sane(*steps_range_step(p.dispsteps, p.dispersion, p.dispstep,
                                                 count_only_span=1.0, span_only_halves=False))
    wavelengths = [lambda0 * (1.0 + dstep * t - disp / 2.0) for t in range(dsteps)]
    points: list = []
    if p.sourcefile is not None:
        rows = read_columns(p.sourcefile, 5)
        listing = []
        for x, y, z, weight, lam in rows:
            listing.append((-p.source_distance * beam[0] if math.isnan(x) else x,
                            -p.source_distance * beam[1] if math.isnan(y) else y,
                            -p.source_distance * beam[2] if math.isnan(z) else z,
                            1.0 if math.isnan(weight) else weight,
                            lambda0 if math.isnan(lam) else lam))
    else:
        _, vert = unit(cross(beam, polar_vector))
        listing = []
        with np.errstate(divide="ignore", invalid="ignore"):
            for ht in range(hsteps):
                for vt in range(vsteps):
                    hdiv = hstep * ht - hrange / 2.0
                    vdiv = vstep * vt - vrange / 2.0
                    test = np.float64(hdiv * hdiv - hstep * hstep / 4.0 * (1 - hsteps % 2)) / hrange / hrange
                    test += np.float64(vdiv * vdiv - vstep * vstep / 4.0 * (1 - vsteps % 2)) / vrange / vrange
                    if p.round_div and test * 4.0 > 1.1:
                        continue
                    points.append((hdiv, vdiv))
        if not points:
            # nanoBragg would divide by zero and write an image of NaN
            raise UserError("no X-ray source: a divergence step (-hdivstep/-vdivstep) larger than its range leaves "
                            "no point of the divergence grid (the reference writes an image of NaN)")
        weight = 1.0 / (len(points) * dsteps)
        for hdiv, vdiv in points:
            start = tuple(-p.source_distance * b for b in beam)
            v = rotate_axis(rotate_axis(start, polar_vector, vdiv), vert, hdiv)
            for lam in wavelengths:
                listing.append((v[0], v[1], v[2], weight, lam))
    directions = np.array([unit(row[:3])[1] for row in listing], dtype=np.float64).reshape(-1, 3)
    lams = np.array([row[4] for row in listing], dtype=np.float64)
    if not np.all(lams > 0) or not np.all(np.isfinite(lams)):
        raise UserError("every source wavelength must be positive (check -lambda/-energy/-sourcefile)")
    if not np.all(np.isfinite(directions)) or np.any(np.all(directions == 0, axis=1)):
        raise UserError("a source direction is zero or not a number (check -sourcefile)")
    if p.sourcefile is not None:
        # the reference skips its divergence and dispersion loops: no lambda lines are printed and
        # its count of divergence steps keeps its initial -1
        return Sources(directions, lams, listing, (hrange, hstep, vrange, vstep, -1),
                       (disp, dstep, dsteps), points, [])
    return Sources(directions, lams, listing, (hrange, hstep, vrange, vstep, len(points)),
                   (disp, dstep, dsteps), points, wavelengths)

"""nonBragg's -img mode: an SMV image's pixels turned back into structure factors and averaged in
the bins of the -stol table, written as a new table (-stolout).

The image's header sets up the detector before the flags are read (flags override it), as in
nonBragg.  Each valid pixel's F undoes the rendering: with its image value less the ADC offset
over the gain (`deviate`, a float),

    F = sign(deviate) sqrt(|deviate| / polarization / solid angle / fluence / r_e^2 / molecules * steps)

where polarization, solid angle and sin(theta)/lambda are what the amorphous kernel leaves from
the last source at the last sub-pixel (`amorphous.amorphous_pixel`), as nonBragg's loop leaves
them, and steps = sources x oversample^2 (the rendering divides by them, so F comes out
sqrt(steps) too large; -fix_steps leaves them out).  Each pixel joins the table row nearest its
sin(theta)/lambda.  Host-side numpy only; SI units inside, the table's own units in the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..io.smv import cfmt_g
from ..model.amorphous_sample import R_E_SQR, StolTable
from ..model.nonbragg import ignore_values, stolout_path, valid_pixels
from .rejection import mean_with_rejection, median, median_with_rejection, reference_mean

MIN_PIXELS = 100  # a bin is written when it holds more pixels than this
SIGMA = 6.0  # the reference's rejection limits: bins, and the image-minus-model median and mean
DIFF_MEAN_SIGMA = 4.0


def pixel_F(image: np.ndarray, last: np.ndarray, adc: float, gain: float, fluence: float, molecules: float,
            steps: int) -> np.ndarray:
    """Each pixel's F, float32 as nonBragg keeps it, in its order of operations (NaN outside the ROI)."""
    deviate = ((image.astype(np.float64) - adc) / gain).astype(np.float32)
    sign = np.where(deviate < 0.0, -1.0, 1.0)
    magnitude = np.abs(deviate).astype(np.float64)
    polar, omega = last[..., 1], last[..., 2]
    with np.errstate(all="ignore"):
        F = sign * np.sqrt(magnitude / polar / omega / fluence / R_E_SQR / molecules * steps)
    return F.astype(np.float32)


def stol_bins(table: StolTable, stol: np.ndarray) -> np.ndarray:
    """The table row nearest each sin(theta)/lambda (1/m): the kernel's interval (`amorphous.locate`:
    the last row at or below it), or the next row past their midpoint."""
    points = table.points[0]
    i = np.clip(np.searchsorted(points, stol, side="right") - 1, 1, len(points) - 3)
    return i + (stol > (points[i] + points[i + 1]) / 2.0)


@dataclass
class ImageFit:
    path: str
    lines: list[str]  # the table's lines
    warnings: list[str]  # one per table row with too few pixels
    last_count: int  # the last row's final pixel count (nonBragg's statistics then divide by it)
    difference: list[str]  # -fix_reject: image minus model after rejection, printed with the outputs


def _fmt(*values) -> list[str]:
    return [cfmt_g(float(v)) for v in values]


def _bin_statistics(values: np.ndarray, fixed: bool, reject: bool) -> tuple[float, float, float, float, int]:
    """(mean, rmsd, median, mad, n) of one bin."""
    if not fixed:  # nonBragg: no rejection, and its median and MAD are never computed
        avg, rmsd = reference_mean(values)
        return avg, rmsd, 0.0, 0.0, len(values)
    if reject:
        centre, mad, kept = median_with_rejection(values, SIGMA)
        avg, rmsd, kept = mean_with_rejection(kept, SIGMA)
        return avg, rmsd, centre, mad, len(kept)
    centre = median(values)
    mad = median(np.abs(values.astype(np.float64) - centre))
    avg, rmsd, kept = mean_with_rejection(values, math.inf)
    return avg, rmsd, centre, mad, len(kept)


def _difference(image: np.ndarray, floatimage: np.ndarray, valid: np.ndarray) -> list[str]:
    diff = image[valid].astype(np.float32) - floatimage[valid]
    centre, mad, kept = median_with_rejection(diff, SIGMA)
    head = "difference from input image after outlier rejection:"
    lines = [f"{head} median= {cfmt_g(centre)} mad= {cfmt_g(mad)} ( {len(kept)} pixels)"]
    avg, rmsd, kept = mean_with_rejection(kept, DIFF_MEAN_SIGMA)
    rms = math.sqrt(float((kept * kept).mean())) if len(kept) else math.nan
    lines.append(f"{head} mean= {cfmt_g(avg)} rms= {cfmt_g(rms)} rmsd= {cfmt_g(rmsd)} ( {len(kept)} pixels)")
    return lines


def fit(nb, floatimage: np.ndarray, last: np.ndarray) -> ImageFit:
    """The -img table from the image (`nb.img`), the rendered image and the kernel's per-pixel
    sin(theta)/lambda, polarization and solid angle (`Background.last`)."""
    p, det, table = nb.params, nb.detector, nb.table
    image = nb.img
    path = stolout_path(p)
    valid = valid_pixels(image, det.roi, ignore_values(p))
    # nonBragg multiplies by its steps where the rendering divided by them; -fix_steps does not
    steps = 1 if p.fix_steps else nb.steps
    F = pixel_F(image, last, p.adc_offset, p.quantum_gain, nb.fluence, nb.sample.molecules, steps)[valid]
    bins = stol_bins(table, last[..., 0][valid])
    rows = table.points.shape[1]
    counts = np.bincount(bins, minlength=rows)
    starts = np.concatenate(([0], np.cumsum(counts)))
    grouped = F[np.argsort(bins, kind="stable")]  # each bin's values in scan order
    reject = p.fix_reject and not p.noreject
    lines, warnings = [], []
    n = 0
    for b in range(2, rows - 2):
        values = grouped[starts[b]:starts[b + 1]]
        avg, rmsd, centre, mad, n = _bin_statistics(values, p.fix_reject, reject)
        stol = table.points[0, b] / table.unit
        if n > MIN_PIXELS:
            a, r, m, d, s = _fmt(avg, rmsd, centre, mad, stol)
            lines.append(f"{s} {a} {r}   {m} {d}  {n}")
        else:
            s, m, a = _fmt(stol, centre, avg)
            warnings.append(f"WARNING: not enough pixels in bin= {b} n={n} stol= {s} median= {m} avg_arej= {a}")
    difference = _difference(image, floatimage, valid) if reject else []
    return ImageFit(path, lines, warnings, n, difference)


def table_text(result: ImageFit) -> bytes:
    return "".join(line + "\n" for line in result.lines).encode("ascii")

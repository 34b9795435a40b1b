"""Statistics of a bin of values with outlier rejection, on the host in numpy (nonbragg -img).

`reference_mean` is what nonBragg prints for every bin: its fmean_with_rejection with rejection
switched off (nonBragg cannot switch it on), float32 sums taken in the order of the values.
`median_with_rejection` and `mean_with_rejection` are the rejection nonBragg means to do, as
nonbragg's -fix_reject does it: in float64, each pass rejecting against the statistics of the
values still kept.  The median is the reference's: the ((n+1)//2)-th smallest value.
"""

from __future__ import annotations

import math

import numpy as np


def reference_mean(values: np.ndarray) -> tuple[float, float]:
    """Mean and rms deviation of float32 `values` as nonBragg forms them: each sum in float32,
    value after value, divided in float32; both 0.0 for no values (the reference leaves them unset,
    and prints 0)."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0
    x = np.asarray(values, dtype=np.float32)
    count = np.float32(n)
    avg = np.cumsum(x, dtype=np.float32)[-1] / count
    deviation = np.abs(x - avg)
    sumd = np.cumsum(deviation * deviation, dtype=np.float32)[-1]
    return float(avg), float(np.sqrt(sumd / count))


def median(values: np.ndarray) -> float:
    """The ((n+1)//2)-th smallest value (the lower median for an even count); NaN for none."""
    n = len(values)
    if n == 0:
        return math.nan
    k = (n + 1) // 2 - 1
    return float(np.partition(values, k)[k])


def median_with_rejection(values: np.ndarray, sigma: float) -> tuple[float, float, np.ndarray]:
    """Median and median absolute deviation after rejecting, pass after pass, every value more than
    `sigma` MADs from the median of those kept; returns them and the kept values (in their order)."""
    kept = np.asarray(values, dtype=np.float64)
    while True:
        centre = median(kept)
        deviation = np.abs(kept - centre)
        mad = median(deviation)
        outliers = deviation > sigma * mad
        if not outliers.any():
            return centre, mad, kept
        kept = kept[~outliers]


def mean_with_rejection(values: np.ndarray, sigma: float) -> tuple[float, float, np.ndarray]:
    """Mean and rms deviation after rejecting, one at a time, the value farthest from the mean while
    it lies more than `sigma` rms deviations out and more than half the values are kept; returns
    them (of the kept values; NaN for none) and the kept values (in their order)."""
    kept = np.asarray(values, dtype=np.float64)
    start = len(kept)
    while True:
        if len(kept) == 0:
            return math.nan, math.nan, kept
        avg = float(kept.mean())
        deviation = np.abs(kept - avg)
        rmsd = math.sqrt(float((deviation * deviation).mean()))
        worst = int(np.argmax(deviation))
        if len(kept) <= start / 2.0 or not deviation[worst] > sigma * rmsd:
            return avg, rmsd, kept
        kept = np.delete(kept, worst)

"""The pixels a fit uses, grouped into windows that each get their own background plane.

Spot windows (diffBragg's shoeboxes): a square of `shoebox` pixels around every local maximum of
the model image above `threshold` times its brightest pixel and around each spot found in the data
(where the model has none yet, the fit must see that it lacks one); boxes that touch merge into one
window.  Tiles: the whole detector cut into squares of `shoebox` pixels.  Either way only usable
pixels (the data's mask and the run's ROI and mask) are kept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class Windows:
    """pixels: (n, 2) int64 rows (slow, fast), in scan order; flat: their indices in the raveled
    image; label: (n,) window of each pixel, 0..count-1; design: (n, 3) the plane's columns
    (1, x, y), x and y measured from the window's centre in units of its half-size."""

    pixels: np.ndarray
    flat: np.ndarray
    label: np.ndarray
    count: int
    design: np.ndarray
    shape: tuple

    def same_pixels(self, other: "Windows | None") -> bool:
        return other is not None and np.array_equal(self.flat, other.flat) and np.array_equal(self.label,
                                                                                               other.label)

    def image(self, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """The values of the window pixels as an image, `fill` elsewhere."""
        out = np.full(self.shape[0] * self.shape[1], fill, dtype=np.float64)
        out[self.flat] = values
        return out.reshape(self.shape)


def _windows(labels: np.ndarray, usable: np.ndarray) -> Windows:
    keep = (labels > 0) & usable
    flat = np.flatnonzero(keep.ravel())
    _, label = np.unique(labels.ravel()[flat], return_inverse=True)
    count = int(label.max()) + 1 if label.size else 0
    slow, fast = np.divmod(flat, labels.shape[1])
    n = np.maximum(np.bincount(label, minlength=count), 1)
    centre_s = np.bincount(label, slow, count) / n
    centre_f = np.bincount(label, fast, count) / n
    half = np.ones(count)
    np.maximum.at(half, label, np.maximum(np.abs(slow - centre_s[label]), np.abs(fast - centre_f[label])))
    design = np.column_stack([np.ones(flat.size), (fast - centre_f[label]) / half[label],
                              (slow - centre_s[label]) / half[label]])
    return Windows(np.column_stack([slow, fast]).astype(np.int64), flat.astype(np.int64), label.astype(np.int64),
                   count, design, labels.shape)


def spot_windows(model: np.ndarray, usable: np.ndarray, shoebox: int, threshold: float, also=None) -> Windows:
    """`also`: (k, 2) positions (slow, fast) of more spots to box, the data's own."""
    top = float(np.nanmax(model)) if model.size else 0.0
    peaks = (model == ndimage.maximum_filter(model, size=3, mode="constant")) & (model > threshold * top) & (top > 0)
    if also is not None and len(also):
        at = np.clip(np.rint(also).astype(np.int64), 0, np.array(model.shape) - 1)
        peaks[at[:, 0], at[:, 1]] = True
    boxes = ndimage.maximum_filter(peaks.astype(np.uint8), size=shoebox, mode="constant") > 0
    labels, _ = ndimage.label(boxes)
    return _windows(labels, usable)


def tiles(usable: np.ndarray, shoebox: int) -> Windows:
    slow, fast = np.indices(usable.shape)
    per_row = -(-usable.shape[1] // shoebox)
    return _windows((slow // shoebox) * per_row + fast // shoebox + 1, usable)

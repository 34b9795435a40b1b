"""The first stage of a fit from a start whose spots miss the data's: it fits the spots' positions,
not their pixels, as DIALS refines against centroids.

A pixel fit needs the model's spots to overlap the data's: where they lie side by side, the
Poisson loss falls fastest by switching the model's spots off (the scale to 0, N up), not by
moving them.  A centroid has no such trap: its residual shrinks steadily as the spot moves across.

Data spots: pixels whose 3x3 mean stands SIGNIFICANCE standard errors above the mean of a box of
BOX pixels around them, grown by one pixel and labelled; each spot's centroid is that of its counts
less the median of the pixels around its box.  Model spots: the local maxima of
the model (rendered without background) above the fit's threshold of its brightest pixel, each
with the centroid of the box of 2 HALF + 1 pixels about it (see BROADEN for its N).
Each model spot is paired with the nearest data spot within `reach` pixels where each is the
other's nearest.  A pair's window is the box around both grown by MARGIN pixels, so that the
model's spot stays inside while it moves to the data's.  The model's centroid there is
c = sum x s / sum s, its derivative dc/dp = (sum x ds/dp - c sum ds/dp) / sum s, s and ds/dp the
model and its derivatives at the window pixels from the same Jacobian pass the pixel fit uses.
SciPy's least_squares (trust region within the fit's bounds, a soft-L1 loss of scale one pixel, so
that a wrong pair pulls no harder than a right one far off) fits the parameters that move spots to
the pairs' differences; the pairs are drawn again from the moved model until a cycle pairs no
more spots and barely lowers the offsets, at most CYCLES times.

Wrong pairs can still lead a cycle off: nine parameters find a way to bring fifty windowed
centroids near their targets that has nothing to do with the crystal (seen: rotations 1-2 deg
and cell edges 3 A off after one cycle, from a start 0.1 deg off).  Two guards: a cycle moves each
parameter at most STEP (a few times an indexing solution's error), and a cycle after which the
moved model pairs fewer than KEPT of the spots it was fitted to is undone, and the stage ends."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.optimize import least_squares

# what moves a spot on the detector; N, the scales and the mosaic spread change its size or height
MOVERS = ("rotx", "roty", "rotz", "a", "b", "c", "alpha", "beta", "gamma", "distance", "Xbeam", "Ybeam",
          "detector_rotx", "detector_roty", "detector_rotz", "lambda")
SIGNIFICANCE = 5.0
BOX = 15
MARGIN = 2
HALF = 2  # the model's spot: the box of 2 HALF + 1 pixels about its peak
CYCLES = 5
EVALUATIONS = 30  # per cycle: the stage need only bring the spots within a fraction of a pixel
SETTLED = 0.9  # a cycle that pairs no more spots and cuts the rms offset less than this ends the stage
LEAST_PAIRS = 6  # and as many as the parameters (twice the residuals): fewer leave the stage out
# A start's sharp spots may light other reflections than the data's (a turn of 0.1 deg moves a
# reflection by about the width 1/N of its spot in reciprocal space at 2 A), so that few of them
# pair.  Where fewer than ENOUGH of the data's spots pair, the stage's crystal takes N times each
# factor of BROADEN in turn (where N is refined), keeping the first that pairs ENOUGH, else the one
# that pairs most: broader spots light every reflection near the Ewald sphere.  Not broader than
# needed: a spot wider than its window no longer moves its centroid there.
BROADEN = (0.7, 0.5, 0.35)
ENOUGH = 0.5
# the most one cycle moves a parameter, in its flag units (deg, mm), or relative (edges, lambda)
STEP = {**dict.fromkeys(("rotx", "roty", "rotz", "alpha", "beta", "gamma", "detector_rotx", "detector_roty",
                         "detector_rotz"), 0.3), "distance": 1.5, "Xbeam": 0.3, "Ybeam": 0.3}
RELATIVE_STEP = {"a": 0.01, "b": 0.01, "c": 0.01, "lambda": 0.005}
KEPT = 0.5


@dataclass
class Stage:
    """What the stage did: values (all the fit's parameters), or `skipped` (why it was left out)."""

    values: np.ndarray
    skipped: str = ""


def _centroids(weights: np.ndarray, labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(the (count, 2) centroids (slow, fast) of `weights` over each label 1..count, their sums)."""
    index = np.arange(1, count + 1)
    total = ndimage.sum_labels(weights, labels, index)
    slow, fast = np.indices(weights.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.column_stack([ndimage.sum_labels(weights * slow, labels, index),
                                  ndimage.sum_labels(weights * fast, labels, index)]) / total[:, None]
    return centre, total


def data_spots(data: np.ndarray, usable: np.ndarray, readout: float) -> np.ndarray:
    """The (k, 2) background-subtracted centroids (slow, fast) of the data's spots."""
    d = np.where(usable, data, 0.0)
    local = ndimage.uniform_filter(d, BOX, mode="constant")
    near = ndimage.uniform_filter(d, 3, mode="constant")
    noise = np.sqrt((np.maximum(local, 0.0) + readout ** 2 + 1.0) / 9.0)
    strong = (near - local > SIGNIFICANCE * noise) & usable
    labels, count = ndimage.label(ndimage.binary_dilation(strong) & usable)
    if count == 0:
        return np.zeros((0, 2))
    net = np.zeros_like(d)
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        grown = tuple(slice(max(s.start - MARGIN, 0), s.stop + MARGIN) for s in box)
        around = usable[grown] & (labels[grown] == 0)
        level = float(np.median(d[grown][around])) if around.any() else 0.0
        mine = labels[box] == k
        net[box][mine] = d[box][mine] - level
    centre, total = _centroids(net, labels, count)
    return centre[total > 0]


def model_spots(image: np.ndarray, usable: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(peaks (k, 2) int, centroids (k, 2)) of the model's spots: its local maxima above
    `threshold` of its brightest pixel, each centroid over the box of HALF pixels about its peak
    (broad spots touch: their pixels above a threshold would run together)."""
    top = float(image[usable].max(initial=0.0))
    if not top > 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2))
    masked = np.where(usable, image, 0.0)
    peaks = np.argwhere((masked == ndimage.maximum_filter(masked, size=3, mode="constant"))
                        & (masked > threshold * top))
    size = 2 * HALF + 1
    slow, fast = np.indices(image.shape)
    at = (peaks[:, 0], peaks[:, 1])
    weight = ndimage.uniform_filter(masked, size, mode="constant")[at]
    centres = np.column_stack([ndimage.uniform_filter(masked * slow, size, mode="constant")[at],
                               ndimage.uniform_filter(masked * fast, size, mode="constant")[at]])
    return peaks, centres / weight[:, None]


def pair(model: np.ndarray, data: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i into model, j into data) of the mutually nearest spots within `reach`."""
    if len(model) == 0 or len(data) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    distance = np.linalg.norm(model[:, None, :] - data[None, :, :], axis=2)
    nearest_data = distance.argmin(axis=1)
    nearest_model = distance.argmin(axis=0)
    i = np.flatnonzero((nearest_model[nearest_data] == np.arange(len(model)))
                       & (distance[np.arange(len(model)), nearest_data] <= reach))
    return i, nearest_data[i]


@dataclass
class PairWindows:
    """The window pixels of each pair: flat indices, their pair, their (slow, fast)."""

    flat: np.ndarray
    label: np.ndarray
    coords: np.ndarray
    count: int

    @classmethod
    def around(cls, peaks: np.ndarray, targets: np.ndarray, usable: np.ndarray) -> PairWindows:
        """A box per pair holding the model's spot (HALF about its peak) and the data's."""
        flats, owners = [], []
        for n, (peak, target) in enumerate(zip(peaks, targets)):
            low = np.maximum(np.minimum(peak - HALF, np.floor(target)).astype(int) - MARGIN, 0)
            high = np.minimum(np.maximum(peak + HALF + 1, np.ceil(target) + 1).astype(int) + MARGIN, usable.shape)
            slow, fast = np.mgrid[low[0]:high[0], low[1]:high[1]]
            keep = usable[slow, fast]
            flats.append(np.ravel_multi_index((slow[keep], fast[keep]), usable.shape))
            owners.append(np.full(int(keep.sum()), n))
        flat = np.concatenate(flats).astype(np.int64)
        label = np.concatenate(owners).astype(np.int64)
        return cls(flat, label, np.column_stack(np.divmod(flat, usable.shape[1])).astype(np.float64), len(peaks))


class Centroids:
    """The model's centroid in each pair's window as a function of the moving parameters."""

    def __init__(self, model, values: np.ndarray, moving: list[int], windows: PairWindows, targets: np.ndarray,
                 shape):
        self.model, self.values, self.moving, self.windows = model, values, moving, windows
        self.targets, self.shape = targets, shape
        n = windows.flat.size
        self.members = sparse.csr_matrix((np.ones(n), (windows.label, np.arange(n))), shape=(windows.count, n))
        self._at, self._done = None, None

    def _evaluate(self, x: np.ndarray):
        if self._at is None or not np.array_equal(x, self._at):
            values = self.values.copy()
            values[self.moving] = x
            s, J = self.model.evaluate(values, self.windows.flat, self.shape, background=False)
            J = J[:, self.moving]
            total = self.members @ s
            first = self.members @ (self.windows.coords * s[:, None])
            lost = ~(total > 0)
            safe = np.where(lost, 1.0, total)
            centre = first / safe[:, None]
            residual = np.where(lost[:, None], 0.0, centre - self.targets)
            slopes = []
            for axis in (0, 1):
                moment = self.members @ (self.windows.coords[:, axis:axis + 1] * J)
                slope = (moment - centre[:, axis:axis + 1] * (self.members @ J)) / safe[:, None]
                slopes.append(np.where(lost[:, None], 0.0, slope))
            self._at = x.copy()
            self._done = residual.ravel(), np.stack(slopes, axis=1).reshape(-1, len(self.moving))
        return self._done

    def residuals(self, x: np.ndarray) -> np.ndarray:
        return self._evaluate(x)[0]

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        return self._evaluate(x)[1]


def fit(model, found: np.ndarray, usable: np.ndarray, values: np.ndarray, bounds, threshold: float, reach: float,
        say=None) -> Stage:
    """Move the spots of `model` at `values` onto `found`, the data's spots (data_spots); returns
    the Stage with the new values (those of the parameters that do not move spots unchanged)."""
    names = list(model.names)
    moving = [k for k, n in enumerate(names) if n in MOVERS]
    values = np.asarray(values, dtype=np.float64).copy()
    if not moving:
        return Stage(values, skipped="no refined parameter moves the spots")
    sizes = [k for k, n in enumerate(names) if n in ("N", "Na", "Nb", "Nc")]
    held = values[sizes].copy()
    low = np.array([bounds[k][0] for k in moving])
    high = np.array([bounds[k][1] for k in moving])
    least = max(LEAST_PAIRS, len(moving))

    def spots(factor):
        values[sizes] = np.maximum(held * factor, [bounds[k][0] for k in sizes])
        peaks, centres = model_spots(model.render(model.simulation(values), 1.0, 0.0), usable, threshold)
        return (peaks, *pair(centres, found, reach))

    factor = 1.0
    peaks, i, j = spots(factor)
    if sizes:
        for wider in BROADEN:
            if len(i) >= ENOUGH * len(found):
                break
            tried = spots(wider)
            if len(tried[1]) > len(i):
                factor, (peaks, i, j) = wider, tried
        values[sizes] = np.maximum(held * factor, [bounds[k][0] for k in sizes])
    if len(i) < least:
        values[sizes] = held
        return Stage(values, skipped=f"{len(i)} spots of the model paired with the data's "
                                                   f"({len(found)} found there)")
    stage = Stage(values.copy())
    previous = None  # (pairs, rms offset after) of the cycle before
    for cycle in range(1, CYCLES + 1):
        if cycle > 1:
            peaks, centres = model_spots(model.render(model.simulation(values), 1.0, 0.0), usable, threshold)
            i, j = pair(centres, found, reach)
            if len(i) < max(least, KEPT * previous[0]):
                if say is not None:
                    say(f"refine: positions cycle {cycle - 1} undone: its model pairs {len(i)} spots")
                values[moving] = undo
                stage = Stage(values.copy())
                break
        windows = PairWindows.around(peaks[i], found[j], usable)
        centroids = Centroids(model, values, moving, windows, found[j], usable.shape)
        x0 = np.clip(values[moving], low, high)
        undo = x0
        step = np.array([STEP.get(names[k], RELATIVE_STEP.get(names[k], 0.0) * abs(values[k])) for k in moving])
        box = (np.maximum(low, x0 - step), np.minimum(high, x0 + step))
        before = centroids.residuals(x0)
        done = least_squares(centroids.residuals, x0, jac=centroids.jacobian, bounds=box, x_scale="jac",
                             loss="soft_l1", f_scale=1.0, method="trf", xtol=1e-8, ftol=1e-8, gtol=1e-8,
                             max_nfev=EVALUATIONS)
        values[moving] = done.x
        after = centroids.residuals(done.x)
        rms = float(np.sqrt(np.mean(before ** 2))), float(np.sqrt(np.mean(after ** 2)))
        stage = Stage(values.copy())
        if say is not None:
            say(f"refine: positions cycle {cycle}: {len(i)} spots paired (N x{factor:g}), rms offset {rms[0]:.3g} "
                f"-> {rms[1]:.3g} pixels in {done.nfev} evaluations")
        if previous is not None and len(i) <= previous[0] and rms[1] > SETTLED * previous[1]:
            break
        previous = (len(i), rms[1])
    stage.values[sizes] = held
    return stage

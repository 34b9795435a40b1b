"""The first stage of a fit from a start whose spots miss the data's: it fits the spots' positions,
not their pixels, as DIALS refines against centroids.

A pixel fit needs the model's spots to overlap the data's: where they lie side by side, the
Poisson loss falls fastest by switching the model's spots off (the scale to 0, N up), not by
moving them.  A centroid has no such trap: its residual shrinks steadily as the spot moves across.

Data spots: pixels whose 3x3 mean stands SIGNIFICANCE standard errors above the mean of a box of
BOX pixels around them, grown by one pixel and labelled; each spot's centroid is that of its counts
less the median of the pixels around its box.  Model spots: the pixels of the model (rendered
without background) above the fit's threshold of its brightest pixel, grown and labelled alike.
Each model spot is paired with the nearest data spot within `reach` pixels where each is the
other's nearest.  A pair's window is the box around both spots grown by MARGIN pixels, so that the
model's spot stays inside while it moves to the data's.  The model's centroid there is
c = sum x s / sum s, its derivative dc/dp = (sum x ds/dp - c sum ds/dp) / sum s, s and ds/dp the
model and its derivatives at the window pixels from the same Jacobian pass the pixel fit uses.
SciPy's least_squares (trust region within the fit's bounds, a soft-L1 loss of scale one pixel, so
that a wrong pair pulls no harder than a right one far off) fits the parameters that move spots to
the pairs' differences; the pairs are drawn again from the moved model until a cycle pairs no
more spots and barely lowers the offsets, at most CYCLES times."""

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
CYCLES = 5
EVALUATIONS = 30  # per cycle: the stage need only bring the spots within a fraction of a pixel
SETTLED = 0.9  # a cycle that pairs no more spots and cuts the rms offset less than this ends the stage
LEAST_PAIRS = 6  # and more than twice the parameters: fewer pairs leave the stage out
# the stage's crystal has N times BROADEN (where N is refined): a start's sharp spots light other
# reflections than the data's (a turn of 0.1 deg moves a reflection by about the width 1/N of its
# spot in reciprocal space at 2 A), so that few of them pair; broad ones light every reflection
# near the Ewald sphere, and the data's spots pair with theirs
BROADEN = 0.5


@dataclass
class Stage:
    """What the stage did: values (all the fit's parameters), pairs (at the last cycle),
    rms (pixels) of the pairs' differences before and after, cycles run, or `skipped` (why not)."""

    values: np.ndarray
    pairs: int = 0
    rms_before: float = float("nan")
    rms_after: float = float("nan")
    cycles: int = 0
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


def model_spots(image: np.ndarray, usable: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(labels, centroids (k, 2), k) of the model's spots above `threshold` of its brightest pixel."""
    top = float(image[usable].max(initial=0.0))
    if not top > 0:
        return np.zeros(image.shape, dtype=np.int64), np.zeros((0, 2)), 0
    labels, count = ndimage.label(ndimage.binary_dilation((image > threshold * top) & usable) & usable)
    centre, _ = _centroids(np.where(labels > 0, image, 0.0), labels, count)
    return labels, centre, count


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
    def around(cls, labels: np.ndarray, spots: np.ndarray, targets: np.ndarray, usable: np.ndarray) -> "PairWindows":
        boxes = ndimage.find_objects(labels)
        flats, owners = [], []
        for n, (k, target) in enumerate(zip(spots, targets)):
            box = boxes[k]
            low = np.minimum([box[0].start, box[1].start], np.floor(target)).astype(int) - MARGIN
            high = np.maximum([box[0].stop, box[1].stop], np.ceil(target) + 1).astype(int) + MARGIN
            low = np.maximum(low, 0)
            high = np.minimum(high, labels.shape)
            slow, fast = np.mgrid[low[0]:high[0], low[1]:high[1]]
            keep = usable[slow, fast]
            flats.append(np.ravel_multi_index((slow[keep], fast[keep]), labels.shape))
            owners.append(np.full(int(keep.sum()), n))
        flat = np.concatenate(flats).astype(np.int64)
        label = np.concatenate(owners).astype(np.int64)
        return cls(flat, label, np.column_stack(np.divmod(flat, labels.shape[1])).astype(np.float64), len(spots))


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
    sizes = [k for k, n in enumerate(names) if n in ("N", "Na", "Nb", "Nc")]
    held = values[sizes].copy()
    values[sizes] = np.maximum(held * BROADEN, [bounds[k][0] for k in sizes])
    if not moving:
        return Stage(values, skipped="no refined parameter moves the spots")
    low = np.array([bounds[k][0] for k in moving])
    high = np.array([bounds[k][1] for k in moving])
    stage = Stage(values)
    previous = None  # (pairs, rms offset after) of the cycle before
    for cycle in range(1, CYCLES + 1):
        image = model.render(model.simulation(values), 1.0, 0.0)
        labels, centres, _ = model_spots(image, usable, threshold)
        i, j = pair(centres, found, reach)
        if len(i) < max(LEAST_PAIRS, 2 * len(moving) + 1):
            if cycle == 1:
                values[sizes] = held
                return Stage(values, pairs=len(i), skipped=f"{len(i)} spots of the model paired with the data's "
                                                           f"({len(found)} found there)")
            break
        windows = PairWindows.around(labels, i, found[j], usable)
        centroids = Centroids(model, values, moving, windows, found[j], image.shape)
        x0 = np.clip(values[moving], low, high)
        before = centroids.residuals(x0)
        done = least_squares(centroids.residuals, x0, jac=centroids.jacobian, bounds=(low, high), x_scale="jac",
                             loss="soft_l1", f_scale=1.0, method="trf", xtol=1e-8, ftol=1e-8, gtol=1e-8,
                             max_nfev=EVALUATIONS)
        values[moving] = done.x
        after = centroids.residuals(done.x)
        rms = float(np.sqrt(np.mean(before ** 2))), float(np.sqrt(np.mean(after ** 2)))
        stage = Stage(values.copy(), len(i), rms[0] if cycle == 1 else stage.rms_before, rms[1], cycle)
        if say is not None:
            say(f"refine: positions cycle {cycle}: {len(i)} spots paired, rms offset {rms[0]:.3g} -> {rms[1]:.3g} "
                f"pixels in {done.nfev} evaluations")
        if previous is not None and len(i) <= previous[0] and rms[1] > SETTLED * previous[1]:
            break
        previous = (len(i), rms[1])
    stage.values[sizes] = held
    return stage

"""The per-pixel loss of a model m against data d (photons), its derivative in m and the weights
of the Gauss-Newton information.

Poisson counts with Gaussian read-out noise of sigma photons: d + sigma^2 is treated as a Poisson
count of mean m + sigma^2 (mean and variance both m + sigma^2, as for the sum of the two), whose
negative log-likelihood, written as a deviance that is 0 at u = D,

    l(m) = u - D + D ln(D / u),   u = m + sigma^2,   D = max(d + sigma^2, 0)

is convex in m and has its minimum at m = d.  Below u = FLOOR D (a model negative after its
background plane, or a thousand times under a pixel's count) l continues as a parabola with l's
value and slope there and the curvature min(D / (FLOOR D)^2, 4) (l's own, capped), so that the
loss stays finite, convex and smooth for any m and the minimum is unmoved.  The floor must lie
far below D: a spot's faint wings, where a model of a tenth of a photon meets a count of one, are
where the Poisson loss tells the spot's width; a floor at D/2 softened their pull and biased the
refined N up by two standard errors (tests/test_refine_engine.py's faint spots).  u and D
both carry EPSILON photons more, so that a pixel of zero counts without read-out noise has its
minimum at m = 0 too (the Poisson loss of a zero count, m, has none for the negative models a
background plane can reach).  Least squares: l = (d - m)^2 / 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError

KINDS = ("poisson", "lsq")
EPSILON = 1e-6  # photons
FLOOR = 1e-3  # of D: where l continues as a parabola
CURVATURE = 4.0  # 1/photons^2: the most the continuation curves


@dataclass(frozen=True)
class Likelihood:
    kind: str = "poisson"
    readout: float = 0.0  # sigma of the read-out noise, photons

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"-likelihood must be {' or '.join(KINDS)}, got {self.kind!r}")
        if not (np.isfinite(self.readout) and self.readout >= 0):
            raise UserError(f"-readout must be a number >= 0 (photons), got {self.readout:g}")

    def target(self, d: np.ndarray) -> np.ndarray:
        """What the loss compares the model with: D for Poisson, d for least squares."""
        if self.kind == "lsq":
            return d
        return np.maximum(d + self.readout ** 2, 0.0) + EPSILON

    def terms(self, D: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pixel: l, dl/dm and d2l/dm2."""
        if self.kind == "lsq":
            r = m - D
            return 0.5 * r * r, r, np.ones_like(r)
        u = m + self.readout ** 2 + EPSILON
        floor = FLOOR * D
        low = u < floor
        at = np.where(low, floor, u)
        ratio = D / at
        value = at - D + D * np.log(D / at)
        slope = 1.0 - ratio
        curve = ratio / at
        if low.any():
            curve = np.where(low, np.minimum(curve, CURVATURE), curve)
            step = u - at
            value = value + slope * step + 0.5 * curve * step * step
            slope = slope + curve * step
        return value, slope, curve

    def loss(self, D: np.ndarray, m: np.ndarray) -> tuple[float, np.ndarray]:
        """(sum of l over the pixels, dl/dm per pixel)."""
        value, slope, _ = self.terms(D, m)
        return float(value.sum()), slope

    def information_weights(self, m: np.ndarray, spots: np.ndarray) -> np.ndarray:
        """Per pixel, the Fisher information of l per unit of m: 1 / variance (1 for least
        squares).  The variance is that of the model m, but never below the model without its
        background plane (`spots`): a plane may dip under zero where the counts are faint, the
        counts' mean cannot."""
        if self.kind == "lsq":
            return np.ones_like(m)
        return 1.0 / (np.maximum(m, spots) + self.readout ** 2 + EPSILON)

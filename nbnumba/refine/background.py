"""Each window's background plane a + b x + c y, solved at every step of the fit.

The planes belong to the likelihood: at each evaluation they are its minimum for the current
model of the spots s(p) (per window three unknowns; Newton's method, each step solved in closed
form, from the previous evaluation's planes, with step halving where a window's loss would rise;
one step for least squares).  The fit then minimises the profiled loss L(p) = min over the planes,
whose gradient is the partial one at the planes' minimum, J^T dl/dm (the planes' own gradient is
zero there).  For the errors the planes are profiled out of the information: J is replaced by
(I - X (X^T W X)^+ X^T W) J, W the information weights.  `Flat`: no planes."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .windows import Windows

NEWTON_STEPS = 50
HALVINGS = 30
DONE = 1e-20  # Newton decrement of a window's loss: converged (far below what the fit resolves)


class Planes:
    def __init__(self, windows: Windows):
        self.windows = windows
        label, n = windows.label, windows.label.size
        self.members = sparse.csr_matrix((np.ones(n), (label, np.arange(n))), shape=(windows.count, n))
        self.coefficients = np.zeros((windows.count, 3))

    def _sum(self, values: np.ndarray) -> np.ndarray:
        """Per window, the sum of `values` (n, ...) over its pixels: (count, ...)."""
        flat = values.reshape(values.shape[0], -1)
        return np.asarray(self.members @ flat).reshape((self.windows.count,) + values.shape[1:])

    def _expand(self, coefficients: np.ndarray) -> np.ndarray:
        X, label = self.windows.design, self.windows.label
        if coefficients.ndim == 2:
            return np.einsum("ni,ni->n", X, coefficients[label])
        return np.einsum("ni,nik->nk", X, coefficients[label])

    def _normal_inverse(self, weights: np.ndarray) -> np.ndarray:
        X = self.windows.design
        return np.linalg.pinv(self._sum(weights[:, None, None] * X[:, :, None] * X[:, None, :]), hermitian=True)

    def fit(self, s: np.ndarray, D: np.ndarray, likelihood) -> np.ndarray:
        """The model with the planes at their minimum, s + X c.  A window is done when its Newton
        decrement (the loss it could still lose, twice over) is below DONE."""
        X = self.windows.design
        c = self.coefficients
        value, slope, curve = likelihood.terms(D, s + self._expand(c))
        for _ in range(NEWTON_STEPS):
            gradient = self._sum(X * slope[:, None])
            step = -np.einsum("wij,wj->wi", self._normal_inverse(curve), gradient)
            active = -np.einsum("wi,wi->w", step, gradient) > DONE
            if not active.any():
                break
            before = self._sum(value)
            length = np.where(active, 1.0, 0.0)
            for _ in range(HALVINGS):
                trial = c + length[:, None] * step
                t_value, t_slope, t_curve = likelihood.terms(D, s + self._expand(trial))
                after = self._sum(t_value)
                worse = after > before + 1e-13 * (1.0 + np.abs(before))
                if not worse.any():
                    break
                length[worse] *= 0.5
            length[worse] = 0.0
            c = c + length[:, None] * step
            value, slope, curve = likelihood.terms(D, s + self._expand(c))
        self.coefficients = c
        return s + self._expand(c)

    def profiled(self, jacobian: np.ndarray, weights: np.ndarray) -> np.ndarray:
        X = self.windows.design
        solved = np.einsum("wij,wjk->wik", self._normal_inverse(weights),
                           self._sum(X[:, :, None] * (weights[:, None] * jacobian)[:, None, :]))
        return jacobian - self._expand(solved)


class Flat:
    """No background planes (the model holds its whole background)."""

    def __init__(self, windows: Windows):
        self.windows = windows
        self.coefficients = np.zeros((windows.count, 3))

    def fit(self, s: np.ndarray, D: np.ndarray, likelihood) -> np.ndarray:
        return s

    def profiled(self, jacobian: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return jacobian

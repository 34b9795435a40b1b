"""Each window's background plane a + b x + c y, solved in closed form at every step.

The plane is the weighted least-squares fit of the data minus the model, with weights fixed from
the data (1 / max(d + sigma^2, 1): bright pixels, the spot itself, count less), so that it is a
linear function of the model: b = H (d - s), H = X (X^T W X)^+ X^T W per window.  The fit then
minimises L(p) = sum l(d, s(p) + H (d - s(p))); its exact gradient is the reduced gradient of s
with the weights g - W X (X^T W X)^+ X^T g (g = dl/dm), and its Jacobian for the errors is
(I - H) ds/dp.  `Flat` is the same without planes."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .windows import Windows


class Planes:
    def __init__(self, windows: Windows, weights: np.ndarray):
        self.windows = windows
        self.weights = weights
        X, label, count = windows.design, windows.label, windows.count
        n = label.size
        self.members = sparse.csr_matrix((np.ones(n), (label, np.arange(n))), shape=(count, n))
        normal = self._sum(weights[:, None, None] * X[:, :, None] * X[:, None, :])
        self.inverse = np.linalg.pinv(normal, hermitian=True)

    def _sum(self, values: np.ndarray) -> np.ndarray:
        """Per window, the sum of `values` (n, ...) over its pixels: (count, ...)."""
        flat = values.reshape(values.shape[0], -1)
        return np.asarray(self.members @ flat).reshape((self.windows.count,) + values.shape[1:])

    def _solve(self, v: np.ndarray) -> np.ndarray:
        """Per window, (X^T W X)^+ X^T v for v (n,) or (n, K): (count, 3) or (count, 3, K)."""
        X = self.windows.design
        if v.ndim == 1:
            return np.einsum("wij,wj->wi", self.inverse, self._sum(X * v[:, None]))
        return np.einsum("wij,wjk->wik", self.inverse, self._sum(X[:, :, None] * v[:, None, :]))

    def _expand(self, coefficients: np.ndarray) -> np.ndarray:
        X, label = self.windows.design, self.windows.label
        if coefficients.ndim == 2:
            return np.einsum("ni,ni->n", X, coefficients[label])
        return np.einsum("ni,nik->nk", X, coefficients[label])

    def fit(self, residual: np.ndarray) -> np.ndarray:
        """The planes' values at the pixels, fitted to `residual` (data minus model)."""
        return self._expand(self._solve(self.weights * residual))

    def coefficients(self, residual: np.ndarray) -> np.ndarray:
        return self._solve(self.weights * residual)

    def gradient_weights(self, slope: np.ndarray) -> np.ndarray:
        return slope - self.weights * self._expand(self._solve(slope))

    def profiled(self, jacobian: np.ndarray) -> np.ndarray:
        return jacobian - self._expand(self._solve(self.weights[:, None] * jacobian))


class Flat:
    """No background planes (the model holds its whole background)."""

    def __init__(self, windows: Windows, weights: np.ndarray):
        self.windows = windows

    def fit(self, residual: np.ndarray) -> np.ndarray:
        return np.zeros_like(residual)

    def coefficients(self, residual: np.ndarray) -> np.ndarray:
        return np.zeros((self.windows.count, 3))

    def gradient_weights(self, slope: np.ndarray) -> np.ndarray:
        return slope

    def profiled(self, jacobian: np.ndarray) -> np.ndarray:
        return jacobian

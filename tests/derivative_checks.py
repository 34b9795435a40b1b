"""Finite differences of nbnumba's own float64 render, to check its derivatives against."""

from __future__ import annotations

import numpy as np

from nbnumba.derivatives import apply, base, jacobian

# steps of the central differences, in flag units (five points: truncation O(h^4))
STEP = {"rotx": 1e-3, "roty": 1e-3, "rotz": 1e-3, "a": 1e-3, "b": 1e-3, "c": 1e-3, "alpha": 1e-3,
        "beta": 1e-3, "gamma": 1e-3, "Na": 1e-3, "Nb": 1e-3, "Nc": 1e-3, "scale": 1e-3, "distance": 1e-3,
        "Xbeam": 1e-3, "Ybeam": 1e-3, "detector_rotx": 1e-3, "detector_roty": 1e-3, "detector_rotz": 1e-3,
        "lambda": 1e-5, "mosaic": 1e-3}
STENCIL = ((-2, 1.0 / 12.0), (-1, -8.0 / 12.0), (1, 8.0 / 12.0), (2, -1.0 / 12.0))


def finite_difference(sim, name, step, mask=None):
    """Five-point central difference of the float64 value image, step `step` (flag units)."""
    x0 = base(sim, name)
    return sum(w * jacobian(apply(sim, {name: x0 + k * step}), mask=mask).image for k, w in STENCIL) / step


def worst_error(analytic, numeric, value, pieces=None):
    """Largest |analytic - numeric| over the pixels above 1e-3 of the image maximum, relative to the
    largest |numeric| there; `pieces` (bool) drops pixels whose stencil crossed a step."""
    chosen = value > 1e-3 * value.max()
    if pieces is not None:
        chosen &= pieces
    scale = np.abs(numeric[chosen]).max()
    if scale == 0:
        return float(np.abs(analytic[chosen]).max())
    return float(np.abs(analytic - numeric)[chosen].max() / scale)

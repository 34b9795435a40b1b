"""The fit: macro-cycles of SciPy's L-BFGS-B over the window pixels, then the errors.

Each macro-cycle renders the whole model at the current values, chooses the windows from it and
minimises the loss over those pixels, the background planes solved at every step.  The parameters
are rescaled to O(1): x_k = (p_k - p_k0) / t_k with t_k = (J^T W J)_kk^(-1/2) at the cycle's
start, so that one unit of x is about one standard error.  Convergence: the largest component of
the projected gradient in x at most `gtol`, or an iteration lowering the loss by at most
ftol * max(|L|, 1) (SciPy's pgtol and factr), or a line search that finds no lower point where
that gradient is at most LINE_END; otherwise not converged (`maxiter` iterations, or a line search
that failed elsewhere).  The cycles stop when the
windows no longer change, or after `cycles`.  The standard errors are the square roots of the
diagonal of (J^T W J)^-1 at the minimum (J the Jacobian with the planes profiled out, W the
information weights); for least squares, of the sandwich estimate (see _covariance)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from ..errors import UserError
from .background import Flat, Planes
from .likelihood import Likelihood
from .windows import Windows, spot_windows, tiles


@dataclass
class Settings:
    likelihood: Likelihood = field(default_factory=Likelihood)
    shoebox: int = 15
    threshold: float = 0.02  # of the model's brightest pixel, for a spot
    allpixels: bool = False
    planes: bool = True
    maxiter: int = 300
    cycles: int = 3
    gtol: float = 1e-7
    ftol: float = 1e-14
    positions: bool = True  # a first stage on the spots' positions (refine.positions)

    def __post_init__(self):
        if not (isinstance(self.shoebox, int) and self.shoebox >= 1):
            raise UserError(f"-shoebox must be a whole number of pixels >= 1, got {self.shoebox}")
        if not 0 < self.threshold < 1:
            raise UserError(f"-spot_threshold must lie in (0, 1), got {self.threshold:g}")
        for name in ("maxiter", "cycles"):
            if getattr(self, name) < 1:
                raise UserError(f"-{name} must be at least 1, got {getattr(self, name)}")


LINE_END = 1e-3  # see _verdict


class Stopped(Exception):
    """The user asked the fit to stop (Ctrl-C): the best values so far stand."""


@dataclass
class Fit:
    names: list
    start: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    correlation: np.ndarray
    loss: float
    start_loss: float
    pixels: int
    windows: Windows
    iterations: int
    evaluations: int
    seconds: float
    converged: bool
    message: str
    interrupted: bool
    model_pixels: np.ndarray  # the model with its planes at the window pixels
    data_pixels: np.ndarray


class Objective:
    """The loss over one cycle's windows as a function of the rescaled parameters, remembering the
    best point it has seen."""

    def __init__(self, model, windows: Windows, data: np.ndarray, likelihood: Likelihood, planes: bool, stop):
        self.model, self.windows, self.likelihood, self.stop = model, windows, likelihood, stop
        self.d = data.ravel()[windows.flat]
        self.D = likelihood.target(self.d)
        self.planes = (Planes if planes else Flat)(windows)
        self.evaluations = 0
        self.best = (np.inf, None, None)  # (loss, values, model with planes)

    def evaluate(self, values: np.ndarray):
        """(loss, gradient in the parameters, Jacobian, model with planes, model without)."""
        if self.stop is not None and self.stop():
            raise Stopped
        s, J = self.model.evaluate(values, self.windows.flat, self.windows.shape)
        m = self.planes.fit(s, self.D, self.likelihood)
        loss, slope = self.likelihood.loss(self.D, m)
        self.evaluations += 1
        if loss < self.best[0]:
            self.best = (loss, values.copy(), m)
        return loss, J.T @ slope, J, m, s

    def information(self, values: np.ndarray):
        """(loss, the information J^T W J with the planes profiled out, the model with planes, and
        for least squares the meat of the sandwich, J^T diag(r^2) J, else None)."""
        loss, _, J, m, s = self.evaluate(values)
        w = self.likelihood.information_weights(m, s)
        profiled = self.planes.profiled(J, w)
        information = profiled.T @ (w[:, None] * profiled)
        spread = None
        if self.likelihood.kind == "lsq":
            r = m - self.D
            spread = profiled.T @ ((r * r)[:, None] * profiled)
        return loss, information, m, spread


def _scales(information: np.ndarray, names) -> np.ndarray:
    diagonal = np.diag(information)
    flat = [n for n, v in zip(names, diagonal) if not v > 0]
    if flat:
        raise UserError(f"{', '.join(flat)}: the model on the fit's pixels does not change with "
                        f"{'it' if len(flat) == 1 else 'them'} (no spot moves or grows)")
    return 1.0 / np.sqrt(diagonal)


def any_spot(windows: Windows, data: np.ndarray, settings: Settings) -> bool:
    """Whether a window's brightest pixel stands 5 sigma above the window's median."""
    d = data.ravel()[windows.flat]
    order = np.lexsort((d, windows.label))
    starts = np.searchsorted(windows.label[order], np.arange(windows.count))
    ends = np.append(starts[1:], d.size)
    median = d[order][(starts + ends - 1) // 2]
    top = np.full(windows.count, -np.inf)
    np.maximum.at(top, windows.label, d)
    noise = np.sqrt(np.maximum(median, 0.0) + settings.likelihood.readout ** 2 + 1.0)
    return bool((top - median > 5.0 * noise).any())


def choose_windows(image: np.ndarray, usable: np.ndarray, settings: Settings, found=None) -> Windows:
    if settings.allpixels:
        return tiles(usable, settings.shoebox)
    return spot_windows(np.where(usable, image, 0.0), usable, settings.shoebox, settings.threshold, found)


def fit(model, data: np.ndarray, usable: np.ndarray, bounds, settings: Settings, say=None, stop=None,
        begin=None, found=None) -> Fit:
    """Refine `model` (names, start, evaluate, image) against `data` (photons, (slow, fast)) on the
    `usable` pixels from `begin` (else the model's start), with windows also around `found`, the
    data's spots ((k, 2) positions).  `say(line)` gets the progress; `stop()` True ends the fit at
    its best point."""
    t0 = time.perf_counter()
    names = list(model.names)
    values = np.array(model.start if begin is None else begin, dtype=np.float64)
    windows = None
    iterations = evaluations = 0
    converged, message, interrupted = False, "", False
    start_loss = None
    for cycle in range(1, settings.cycles + 1):
        chosen = choose_windows(model.image(values), usable, settings, found)
        if chosen.count == 0 or chosen.flat.size <= len(names) or not any_spot(chosen, data, settings):
            raise UserError("no spot of the model falls on usable pixels in any window, or the data show none "
                            "there: check the starting model (geometry, orientation), the data, the mask and "
                            "-spot_threshold")
        if windows is not None and chosen.same_pixels(windows):
            break
        windows = chosen
        objective = Objective(model, windows, data, settings.likelihood, settings.planes, stop)
        try:
            loss0, information, _, _ = objective.information(values)
        except Stopped:
            interrupted = True
            break
        start_loss = loss0 if start_loss is None else start_loss
        scales = _scales(information, names)
        origin = values.copy()
        box = [((lo - o) / t if np.isfinite(lo) else None, (hi - o) / t if np.isfinite(hi) else None)
               for (lo, hi), o, t in zip(bounds, origin, scales)]

        last_gradient = [np.zeros(len(names))]

        def loss_and_gradient(x):
            loss, gradient, _, _, _ = objective.evaluate(origin + x * scales)
            last_gradient[0] = gradient * scales
            return loss, last_gradient[0]

        def report(intermediate_result):
            nonlocal iterations
            iterations += 1
            if say is not None:
                said = " ".join(f"{n}={v:.8g}" for n, v in zip(names, origin + intermediate_result.x * scales))
                say(f"refine: cycle {cycle} iteration {iterations}: loss {intermediate_result.fun:.9g} "
                    f"|gradient| {np.abs(last_gradient[0]).max():.3g} ({windows.flat.size} pixels) {said}")

        try:
            done = minimize(loss_and_gradient, np.zeros(len(names)), jac=True, method="L-BFGS-B", bounds=box,
                            callback=report, options=dict(maxiter=settings.maxiter, maxcor=30,
                                                          ftol=settings.ftol, gtol=settings.gtol))
            converged, message = _verdict(done, box, settings)
        except Stopped:
            interrupted = True
        evaluations += objective.evaluations
        values = objective.best[1].copy() if objective.best[1] is not None else values
        if interrupted:
            break
    before = objective.evaluations
    loss, information, m, spread = objective.information(values) if not interrupted else _last(objective, values)
    evaluations += objective.evaluations - before
    covariance = _covariance(information, spread, windows, len(names), settings.planes)
    errors = np.sqrt(np.maximum(np.diag(covariance), 0.0))
    outer = np.outer(errors, errors)
    correlation = np.divide(covariance, outer, out=np.full_like(covariance, np.nan), where=outer > 0)
    return Fit(names, model.start.copy(), values, errors, correlation, loss, start_loss if start_loss is not None
               else loss, int(windows.flat.size), windows, iterations, evaluations,
               time.perf_counter() - t0, converged, message, interrupted, m, objective.d)


def _verdict(done, box, settings: Settings) -> tuple[bool, str]:
    """(converged, why).  L-BFGS-B's line search also ends, ABNORMAL, where the loss is flat to
    its rounding; that is the minimum when the projected gradient there is at most LINE_END (in
    standard errors)."""
    if done.success:
        return True, str(done.message)
    gradient = np.array(done.jac, dtype=np.float64)
    for k, (low, high) in enumerate(box):
        x = done.x[k]
        if (low is not None and x <= low and gradient[k] > 0) or (high is not None and x >= high and gradient[k] < 0):
            gradient[k] = 0.0
    largest = float(np.abs(gradient).max(initial=0.0))
    if str(done.message).startswith("ABNORMAL") and largest <= LINE_END:
        return True, f"line search ended at the minimum (projected gradient {largest:.1e} <= {LINE_END:g})"
    return False, str(done.message)


def _last(objective: Objective, values: np.ndarray):
    """After an interruption: the information at the best point, computed without asking to stop."""
    objective.stop = None
    return objective.information(values)


def _covariance(information, spread, windows, k, planes) -> np.ndarray:
    """(J^T W J)^-1; for least squares the sandwich (J^T J)^-1 J^T diag(r^2) J (J^T J)^-1 with
    n / (n - k) for the degrees of freedom (White's HC1), which holds when the pixels' variances
    differ (photon noise does), where sigma^2 (J^T J)^-1 would not."""
    inverse = np.linalg.pinv(information, hermitian=True)
    if spread is None:
        return inverse
    n = windows.flat.size
    freedom = n - k - (3 * windows.count if planes else 0)
    return inverse @ spread @ inverse * (n / max(freedom, 1))

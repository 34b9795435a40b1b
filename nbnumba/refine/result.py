"""What a refinement found, as a table for stdout and a JSON document."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .engine import Fit

HOST_UNITS = {"scale": "1", "bg_scale": "1", "N": "cells"}


def unit_of(name: str) -> str:
    from ..derivatives import UNITS
    return HOST_UNITS.get(name) or UNITS.get(name, "")


@dataclass
class RefineResult:
    """names: the refined parameters (flag units, `units`); start, values, errors (standard
    errors from the inverse of J^T W J at the minimum); correlation; loss and start_loss (the
    likelihood's deviance, or half the sum of squares); pixels and windows used; iterations of
    L-BFGS-B, evaluations of model and derivatives; seconds; converged and SciPy's message;
    interrupted (Ctrl-C: the best values so far); likelihood ("poisson" or "lsq"); readout
    (photons); sim: the refined Simulation (scale folded into its fluence); fit: the engine's
    record (windows, the model and data at the window pixels)."""

    names: list
    units: list
    start: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    correlation: np.ndarray
    loss: float
    start_loss: float
    pixels: int
    windows: int
    iterations: int
    evaluations: int
    seconds: float
    converged: bool
    message: str
    interrupted: bool
    likelihood: str
    readout: float
    sim: object = field(repr=False, default=None)
    fit: Fit | None = field(repr=False, default=None)

    def value(self, name: str) -> float:
        return float(self.values[self.names.index(name)])

    def error(self, name: str) -> float:
        return float(self.errors[self.names.index(name)])

    def table(self) -> list[str]:
        lines = [f"{'parameter':<14} {'unit':<6} {'start':>16} {'refined':>16} {'std. error':>12}"]
        for name, unit, s, v, e in zip(self.names, self.units, self.start, self.values, self.errors):
            lines.append(f"{name:<14} {unit:<6} {s:>16.10g} {v:>16.10g} {e:>12.4g}")
        state = "interrupted: best so far" if self.interrupted else (
            "converged" if self.converged else f"not converged ({self.message})")
        lines.append(f"loss {self.loss:.10g} (start {self.start_loss:.10g}, {self.likelihood}); "
                     f"{self.pixels} pixels in {self.windows} windows; {self.iterations} iterations, "
                     f"{self.evaluations} evaluations; {self.seconds:.2f} s; {state}")
        return lines

    def to_json(self) -> dict:
        def number(x):
            x = float(x)
            return x if np.isfinite(x) else None

        return {
            "parameters": [{"name": n, "unit": u, "start": number(s), "refined": number(v), "error": number(e)}
                           for n, u, s, v, e in zip(self.names, self.units, self.start, self.values, self.errors)],
            "correlation": {"names": list(self.names),
                            "matrix": [[number(x) for x in row] for row in self.correlation]},
            "loss": number(self.loss), "start_loss": number(self.start_loss), "likelihood": self.likelihood,
            "readout_photons": self.readout, "pixels": self.pixels, "windows": self.windows,
            "iterations": self.iterations, "evaluations": self.evaluations, "seconds": round(self.seconds, 4),
            "converged": self.converged, "message": self.message, "interrupted": self.interrupted,
        }

"""The model a fit varies: a Simulation, its parameters set by nbnumba.derivatives.apply, its image
and derivatives on the fit's pixels from one Jacobian pass of the derivative kernels, times
`scale`, plus `bg_scale` times a fixed background image where there is one.

The rotations are refined as angles (x, y, z) of R = Rz Ry Rx applied after the starting
orientation, as `apply` sets them; the derivative passes give dI/de for small turns e about the lab
axes after the current orientation, and dR/dx = [Rz Ry e_x]x R, dR/dy = [Rz e_y]x R, dR/dz =
[e_z]x R turn those into derivatives in the angles."""

from __future__ import annotations

import math

import numpy as np

from ..errors import UserError
from .parameters import HOST, JOINT, check_shape

ROTATIONS = ("rotx", "roty", "rotz")
CELLS = ("Na", "Nb", "Nc")


def _turn(axis: int, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def rotation_axes(x: float, y: float, z: float) -> np.ndarray:
    """Rows: the lab vectors w_k with dR/dk = [w_k]x R for R = Rz(z) Ry(y) Rx(x) (degrees)."""
    Rz, Ry = _turn(2, z), _turn(1, y)
    return np.array([Rz @ Ry @ np.array([1.0, 0, 0]), Rz @ np.array([0, 1.0, 0]), np.array([0, 0, 1.0])])


class SimulationModel:
    """names: the refined parameters; start: their values at `sim` (flag units); background: None
    or a (slow, fast) image in photons whose factor is `bg_scale` (starting at 1)."""

    def __init__(self, sim, names: list[str], background=None, device: str = "cpu", precision: str = "double"):
        from ..derivatives import base
        from ..derivatives.parameters import check_names

        self.sim, self.names, self.device, self.precision = sim, list(names), device, precision
        if "bg_scale" in self.names and background is None:
            raise UserError("bg_scale: there is no background image to scale (-bgimage or the -bg_ flags)")
        self.background = background
        check_shape(self.names, sim.params.xtal_shape)
        if "distance" in self.names and not math.isnan(sim.params.close_distance):
            # the set-up then places the detector by -close_distance and ignores -distance, which
            # the derivative passes would still move
            raise UserError("distance with -close_distance (or the CLOSE_DISTANCE of an -img or -mask header): "
                            "the detector is placed by the close distance, which -distance does not move")
        kernel_names = [n for n in self.names if n not in HOST + JOINT]
        # the rotations are always evaluated together, to turn their derivatives into angles
        self.wrt = [n for n in kernel_names if n not in ROTATIONS]
        if any(n in ROTATIONS for n in kernel_names):
            self.wrt = list(ROTATIONS) + self.wrt
        if "N" in self.names:
            self.wrt += list(CELLS)
        if self.wrt:
            check_names(sim, self.wrt, allow_F=False)
        self.cells = np.array([base(sim, n) for n in CELLS])
        self.N0 = float(np.prod(self.cells) ** (1.0 / 3.0))
        self.start = np.array([1.0 if n in HOST else self.N0 if n == "N" else base(sim, n) for n in self.names])

    def simulation(self, values: np.ndarray, with_scale: bool = False):
        """The Simulation at `values` (with the scale folded into its fluence, or left out)."""
        from ..derivatives import apply
        chosen = {n: float(v) for n, v in zip(self.names, values)
                  if n not in HOST + JOINT or (with_scale and n == "scale")}
        if "N" in self.names:
            chosen.update(zip(CELLS, self.cells * (self._value(values, "N") / self.N0)))
        return apply(self.sim, chosen) if chosen else self.sim

    def _host(self, values: np.ndarray, name: str) -> float:
        return float(values[self.names.index(name)]) if name in self.names else 1.0

    def evaluate(self, values: np.ndarray, flat: np.ndarray, shape, background: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(model at the pixels `flat` (n,), its derivatives (n, K) in the order of `names`); without
        `background`, the spots alone."""
        from ..derivatives import jacobian

        sim = self.simulation(values)
        rows = np.column_stack(np.divmod(flat, shape[1])).astype(np.int64)
        done = jacobian(sim, self.wrt, rows, self.device, self.precision)
        image = done.image.ravel()[flat]
        derivative = {n: done.derivatives[n].ravel()[flat] for n in self.wrt}
        if "rotx" in derivative:
            turns = np.column_stack([derivative[n] for n in ROTATIONS])
            angles = [self._value(values, n) for n in ROTATIONS]
            for name, axis in zip(ROTATIONS, rotation_axes(*angles)):
                derivative[name + "'"] = turns @ axis
        scale = self._host(values, "scale")
        bg = self._host(values, "bg_scale")
        model = scale * image
        if self.background is not None and background:
            model = model + bg * self.background.ravel()[flat]
        if "N" in self.names:
            derivative["N"] = sum(derivative[n] * (c / self.N0) for n, c in zip(CELLS, self.cells))
        columns = []
        for name in self.names:
            if name == "scale":
                columns.append(image)
            elif name == "bg_scale":
                columns.append(self.background.ravel()[flat])
            else:
                columns.append(scale * derivative[name + "'" if name in ROTATIONS else name])
        return model, np.column_stack(columns) if columns else np.zeros((flat.size, 0))

    def _value(self, values: np.ndarray, name: str) -> float:
        return float(values[self.names.index(name)]) if name in self.names else 0.0

    def image(self, values: np.ndarray) -> np.ndarray:
        """The whole model image (float64 (slow, fast)) at `values`, by the forward render."""
        return self.render(self.simulation(values), self._host(values, "scale"), self._host(values, "bg_scale"))

    def render(self, sim, scale: float = 1.0, bg: float = 1.0) -> np.ndarray:
        from ..kernels.backends import backend
        from ..kernels.render import render

        model = scale * render(sim, backend(self.device), self.precision).image.astype(np.float64)
        if self.background is not None:
            model = model + bg * self.background
        return model

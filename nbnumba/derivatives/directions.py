"""Each named parameter as a direction in the kernels' inputs: the tangents of the real
parameters (geo), the source table, the base axes a0, b0, c0 (which every phi step and mosaic
domain turns by its own rotation, `frames`), the reciprocal axes and, for mosaic, the rotated
lattices, per unit of the parameter in its flag units.  The derivative pass pushes these through
the physics (physics.tangent_pixel).

The chain rule of the set-up is taken where it is linear or a rotation:
  rotx/y/z   d(axis)/d(angle) = e x axis for every base real and reciprocal axis (e the lab axis);
  mosaic     each domain U = exp(theta K) turns as d U/d spread = (theta / spread) K U, carried
             through `model.crystal.phi_lattices`, which is linear in U;
  lambda     each source's wavelength moves in proportion;
  Na Nb Nc   the cell counts of geo;  scale: the fluence and the water background it feeds.
The cell and the detector go through the reference's set-up (`crystal.build_crystal` via
`parameters.with_cell`, `detector.build_detector` into the detector's slots of geo): dozens of lines of trigonometry and pivot
rules, taken here by differentiating the set-up itself with a central difference rather than by
writing its derivative out a second time.  The set-up is smooth (affine in the distance and the
beam centre, trigonometric in angles and cell): at the steps below the difference's error is
about 1e-10 of the tangent (measured against a five-point stencil of step 1e-2), four orders under
the 1e-6 the derivatives are held to, and each parameter costs two set-ups, a pass's host time.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np

from ..model.crystal import phi_lattices
from ..model.detector import build_detector
from ..model.simulation import Simulation, pack_detector
from ..physics import layout as L
from ..physics.tangent_pixel import N_SHARE_COLUMNS
from . import parameters as P

# steps of the set-up's stencil, in flag units
SETUP_STEP = {"a": 1e-3, "b": 1e-3, "c": 1e-3, "alpha": 1e-3, "beta": 1e-3, "gamma": 1e-3,
              "distance": 1e-3, "Xbeam": 1e-3, "Ybeam": 1e-3,
              "detector_rotx": 1e-3, "detector_roty": 1e-3, "detector_rotz": 1e-3}
STENCIL = ((-1, -0.5), (1, 0.5))


class Direction(SimpleNamespace):
    """dgeo (N_GEO), dsources (sources x 10), dbase (9: the tangent of the base axes a, b, c, which
    every phi step and mosaic domain turns alike), drecip (9) and, for a direction that turns each
    lattice its own way, dlattice (2, pairs, 9; else None)."""


def direction(sim: Simulation, name: str, cell: list | None = None, held: np.ndarray | None = None) -> Direction:
    """`cell`: the crystal's -cell values (`parameters.flag_cell`) and `held` its rotation
    (`parameters.held_rotation`), when the caller has them."""
    d = Direction(dgeo=np.zeros(L.N_GEO), dsources=np.zeros_like(sim.source_table), dbase=np.zeros(9),
                  dlattice=None, drecip=np.zeros(9))
    if name in P.ROTATIONS:
        e = np.eye(3)[P.ROTATIONS.index(name)] / P.RTD
        c = sim.crystal
        turned = np.cross(e, np.array([c.a, c.b, c.c, c.a_star, c.b_star, c.c_star])).ravel()
        d.dbase[:] = turned[:9]
        d.drecip[:] = turned[9:]
    elif name in P.CELL:
        old = cell if cell is not None else P.flag_cell(sim)
        U = held if held is not None else P.held_rotation(sim.crystal, old)
        i = P.CELL.index(name)

        def axes_of(value):
            c = P.with_cell(sim.crystal, old, old[:i] + [value] + old[i + 1:], U)
            return c.a + c.b + c.c + c.a_star + c.b_star + c.c_star

        axes = _stencil(old[i], SETUP_STEP[name], axes_of)
        d.dbase[:] = axes[:9]
        d.drecip[:] = axes[9:]
    elif name in P.CELLS:
        d.dgeo[L.G_NA + P.CELLS.index(name)] = 1.0
    elif name == "scale":
        d.dgeo[L.G_RE2_FLUENCE] = sim.geo[L.G_RE2_FLUENCE]
        d.dgeo[L.G_I_BG] = sim.geo[L.G_I_BG]
    elif name in P.DETECTOR:
        def geo_of(value):
            p = copy.copy(sim.params)
            P.set_detector(p, {name: value})
            geo = sim.geo.copy()
            pack_detector(geo, build_detector(p))
            return geo

        d.dgeo[:] = _stencil(P.base(sim, name), SETUP_STEP[name], geo_of)
    elif name == "lambda":
        d.dsources[:, 3] = sim.source_table[:, 3] / (sim.lambda0 * 1e10)
    elif name == "mosaic":
        U, W, theta, ratio = P.domain_axes(sim.umats)
        dumats = (ratio[:, None, None] * W @ U).reshape(-1, 9) / sim.mosaic_spread / P.RTD
        d.dlattice = _pair_major(phi_lattices(sim.crystal, sim.detector.spindle, sim.phi0, sim.phistep,
                                              sim.phisteps, dumats, sim.mosaic_spread, sim.params.fix_phi0))
    else:
        raise ValueError(name)
    return d


def _stencil(x0, h, take):
    """d take / dx at x0, by the central difference of step h."""
    return sum(w * np.asarray(take(x0 + k * h), dtype=np.float64) for k, w in STENCIL) / h


def _pair_major(lattice):
    return lattice.reshape(lattice.shape[0], -1, 9)


def frames(sim: Simulation) -> np.ndarray:
    """(2, pairs, 9): per variant and (phi step, mosaic domain) the rotation M (row-major) that
    turns the base axes into that pair's: a = M a0, b = M b0, c = M c0."""
    base = np.array([sim.crystal.a, sim.crystal.b, sim.crystal.c]).T  # columns a0, b0, c0
    turned = _pair_major(sim.lattice).reshape(2, -1, 3, 3).transpose(0, 1, 3, 2)  # columns a, b, c
    return np.ascontiguousarray((turned @ np.linalg.inv(base)).reshape(2, -1, 9))


def contracted(d: Direction) -> bool:
    """Whether direction `d` moves only the shares' parameters (base axes, reciprocal axes, Na Nb
    Nc): no pixel, no source, no lattice of its own (physics.tangent_pixel)."""
    moved = d.dgeo.copy()
    moved[[L.G_NA, L.G_NB, L.G_NC]] = 0.0
    return d.dlattice is None and not moved.any() and not d.dsources.any()


def directions(sim: Simulation, names, real, contract: bool = False) -> dict:
    """The K directions stacked as the kernels take them, in precision `real`, with the pairs'
    rotations (`frames`), the indices of the directions with their own lattices (`generic`) and
    whether any direction moves the shares' parameters (`use_shares`) or the scattering vector
    (`use_q`).  With `contract`, the `contracted` directions are left out of the stacks: `shares`
    holds their rows (float64, their tangents of the share columns: base axes, reciprocal axes,
    N), `kept` and `folded` the indices in `names` of the stacked ones and of those folded into
    the shares."""
    cell = P.flag_cell(sim) if any(n in P.CELL for n in names) else None
    held = P.held_rotation(sim.crystal, cell) if cell is not None else None
    every = [direction(sim, n, cell, held) for n in names]
    folded = [j for j, d in enumerate(every) if contract and contracted(d)]
    kept = [j for j in range(len(every)) if j not in folded]
    ds = [every[j] for j in kept]
    pairs = sim.lattice.shape[1] * sim.lattice.shape[2]
    generic = [j for j, d in enumerate(ds) if d.dlattice is not None]
    stack = {key: np.zeros((len(ds),) + shape) for key, shape in
             (("dgeo", (L.N_GEO,)), ("dsources", sim.source_table.shape), ("dbase", (9,)), ("drecip", (9,)))}
    for j, d in enumerate(ds):
        for key in stack:
            stack[key][j] = getattr(d, key)
    stack["dlattice"] = np.array([ds[j].dlattice for j in generic]).reshape(len(generic), 2, pairs, 9)
    out = {key: np.ascontiguousarray(value, dtype=real) for key, value in stack.items()}
    out["frames"] = np.ascontiguousarray(frames(sim), dtype=real)
    out["generic"] = np.array(generic, dtype=np.int64)
    out["shares"] = np.array([np.concatenate([every[j].dbase, every[j].drecip,
                                              every[j].dgeo[[L.G_NA, L.G_NB, L.G_NC]]]) for j in folded]
                             ).reshape(len(folded), N_SHARE_COLUMNS)
    out["kept"], out["folded"] = kept, folded
    moved = stack["dgeo"].copy()
    moved[:, [L.G_NA, L.G_NB, L.G_NC, L.G_RE2_FLUENCE, L.G_I_BG]] = 0.0
    out["use_shares"] = bool(stack["dbase"].any() or stack["drecip"].any()
                             or stack["dgeo"][:, [L.G_NA, L.G_NB, L.G_NC]].any() or folded)
    out["use_q"] = bool(moved.any() or stack["dsources"].any())
    return out

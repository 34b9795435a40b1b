"""The model's named parameters, in the units of the flags users know, and `apply`, which sets
them on a Simulation.

    rotx roty rotz        deg    increments about the lab x, y, z axes, applied after the crystal's
                                 orientation (x, then y, then z, as api.reorient); base value 0
    a b c                 A      the cell's edges, with the crystal's orientation held
    alpha beta gamma      deg    the cell's angles, orientation held
    Na Nb Nc              cells  real-valued (smooth crystal shapes only, see `refusal`)
    scale                 1      a factor on the fluence (base value 1): the image is proportional
                                 to it, except a -water background, which the reference makes
                                 grow with the fluence squared
    distance              mm     the -distance flag (the pivot rules of the set-up apply)
    Xbeam Ybeam           mm     the beam centre, at fixed distance
    detector_rotx/y/z     deg    the detector rotations of the flags
    lambda                A      every source's wavelength scaled together; the crystal is held
                                 (even one read from -mat, whose set-up would rescale it)
    mosaic                deg    the mosaic spread: each domain keeps the axis the seed drew and
                                 turns by its drawn angle times spread / current spread
    F                            every entry of the HKL table (reduced gradient only)

Orientation held: the cell parameters change the crystal's shape in its own frame (the
reciprocal a* along x, b* in the xy plane, as the reference builds it) and the crystal's current
rotation U = A B(cell)^-1 is kept.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from ..errors import UserError
from ..model.crystal import Crystal, build_crystal, phi_lattices
from ..model.detector import build_detector, rotate_xyz
from ..model.params import Params
from ..model.simulation import Simulation, _pack

RTD = 180.0 / math.pi
ROTATIONS = ("rotx", "roty", "rotz")
CELL = ("a", "b", "c", "alpha", "beta", "gamma")
CELLS = ("Na", "Nb", "Nc")
DETECTOR = ("distance", "Xbeam", "Ybeam", "detector_rotx", "detector_roty", "detector_rotz")
NAMES = ROTATIONS + CELL + CELLS + ("scale",) + DETECTOR + ("lambda", "mosaic")
UNITS = {**{n: "deg" for n in ROTATIONS + ("alpha", "beta", "gamma", "mosaic") + DETECTOR[3:]},
         **{n: "A" for n in ("a", "b", "c", "lambda")}, **{n: "cells" for n in CELLS},
         "scale": "1", "distance": "mm", "Xbeam": "mm", "Ybeam": "mm"}


def check_names(sim: Simulation, wrt, allow_F: bool) -> list[str]:
    """The names of `wrt`, each known and supported by this simulation's features, or UserError."""
    names = [w.strip() for w in (wrt.split(",") if isinstance(wrt, str) else wrt)]
    if not names or any(not n for n in names):
        raise UserError("-wrt: give one or more parameters separated by commas "
                        f"({', '.join(NAMES)}, F)")
    for name in names:
        if name == "F":
            if not allow_F:
                raise UserError("F (one derivative per structure factor) is available as a reduced gradient "
                                "(api.gradient), not as derivative images")
        elif name not in NAMES:
            raise UserError(f"unknown parameter {name!r} (known: {', '.join(NAMES)}, F)")
        why = refusal(sim, name)
        if why:
            raise UserError(why)
    if len(set(names)) != len(names):
        raise UserError(f"-wrt names a parameter twice: {','.join(names)}")
    return names


def refusal(sim: Simulation, name: str) -> str | None:
    """Why this simulation's features give `name` no derivative (one line naming both), or None."""
    p = sim.params
    if name in CELLS and p.xtal_shape == "SQUARE":
        return (f"{name} with the square crystal shape: sin(N pi h)/sin(pi h) is singular at Bragg positions for "
                "a non-integer N, so it has no N derivative; use -round_xtal or -gauss_xtal (or -tophat_spots)")
    if name in DETECTOR[:3] and p.fix_pix0 and p.pix0_user is not None:
        return f"{name} with -pix0_vector: the detector origin is fixed, {name} does not move it"
    if name in ("Xbeam", "Ybeam") and sim.detector.convention in ("XDS", "DIALS"):
        return (f"{name} with the {sim.detector.convention} convention: the detector origin comes from -ORGX/-ORGY, "
                "the beam centre does not move it")
    if name == "lambda" and p.sourcefile is not None:
        return "lambda with -sourcefile: the source file fixes each wavelength"
    if name == "mosaic" and not (sim.mosaic_spread > 0.0 and sim.mosaic_domains > 1):
        return "mosaic without a mosaic spread (-mosaic_spread and -mosaic_domains > 1)"
    if name == "F":
        if sim.hkl is None or sim.hkl.count == 0:
            return "F without a structure-factor table (-hkl or Fdump.bin)"
        if p.oversample_thick or p.oversample_polar or p.oversample_omega:
            return ("F with -oversample_thick/-oversample_polar/-oversample_omega: the reference multiplies the "
                    "running sum by each factor, so a term's weight is known only at the pixel's end")
        if sim.thicksteps > 1:
            return "F with several sensor layers (-detector_thicksteps): the last layer's capture weighs every term"
    return None


def base(sim: Simulation, name: str) -> float:
    """The parameter's current value in its flag units."""
    if name in ROTATIONS:
        return 0.0
    if name in CELL:
        return float(flag_cell(sim)[CELL.index(name)])
    if name in CELLS:
        return float(getattr(sim, name))
    if name == "scale":
        return 1.0
    det = sim.detector
    if name == "distance":
        return sim.params.distance * 1e3
    if name in ("Xbeam", "Ybeam"):
        return getattr(det, name) * 1e3
    if name in DETECTOR:
        return getattr(sim.params, name) * RTD
    if name == "lambda":
        return sim.lambda0 * 1e10
    if name == "mosaic":
        return sim.mosaic_spread * RTD
    raise UserError(f"unknown parameter {name!r}")


def apply(sim: Simulation, values: dict) -> Simulation:
    """A new Simulation with the parameters `values` ({name: value in flag units}) set; `sim` is
    left as it was.  Used by the finite-difference tests and by a refinement between iterations."""
    names = check_names(sim, list(values), allow_F=False)
    new = Simulation(**{**sim.__dict__, "params": copy.deepcopy(sim.params), "notes": list(sim.notes)})
    p = new.params
    v = {n: float(values[n]) for n in names}
    if any(n in CELL for n in names):
        old = flag_cell(sim)
        cell = [v.get(n, old[i]) for i, n in enumerate(CELL)]
        new.crystal = with_cell(sim.crystal, old, cell)
        p.user_cell = True
        p.cell = [cell[0], cell[1], cell[2], cell[3] / RTD, cell[4] / RTD, cell[5] / RTD]
    if any(n in ROTATIONS for n in names):
        angles = [v.get(n, 0.0) / RTD for n in ROTATIONS]
        new.crystal = rotated(new.crystal, angles)
    for n in CELLS:
        if n in v:
            setattr(new, n, v[n])
    if "scale" in v:
        new.fluence = sim.fluence * v["scale"]
    if any(n in DETECTOR for n in names):
        set_detector(p, v)
        new.detector = build_detector(p)
    if "lambda" in v:
        ratio = v["lambda"] * 1e-10 / sim.lambda0
        new.sources = copy.copy(sim.sources)
        new.sources.wavelengths = sim.sources.wavelengths * ratio
        new.lambda0 = v["lambda"] * 1e-10
    if "mosaic" in v:
        new.umats = scaled_domains(sim.umats, v["mosaic"] / RTD / sim.mosaic_spread)
        new.mosaic_spread = v["mosaic"] / RTD
    new.lattice = phi_lattices(new.crystal, new.detector.spindle, new.phi0, new.phistep, new.phisteps, new.umats,
                               new.mosaic_spread, p.fix_phi0)
    _pack(new)
    return new


def standard_axes(cell) -> Crystal:
    """The crystal of `cell` (A, deg) in the reference's own frame (no misset)."""
    p = Params()
    p.user_cell = True
    p.cell = [cell[0], cell[1], cell[2], cell[3] / RTD, cell[4] / RTD, cell[5] / RTD]
    return build_crystal(p, 1e-10, 0)


def flag_cell(sim: Simulation) -> list[float]:
    """The -cell values (A, deg) of the crystal: the flags' own, or for a -mat run the cell that
    gives the matrix's crystal through the same set-up.  The set-up does not return the angles it
    was given (the crystal of -cell 70 80 90 85 95 100 has alpha 84.994), so the crystal's own
    cell is not it: the map is near the identity and a few fixed-point steps invert it."""
    p = sim.params
    if p.user_cell:
        return [p.cell[0], p.cell[1], p.cell[2], p.cell[3] * RTD, p.cell[4] * RTD, p.cell[5] * RTD]
    target = np.array(sim.crystal.cell)
    cell = target.copy()
    for _ in range(50):
        miss = target - np.array(standard_axes(cell).cell)
        cell += miss
        if np.abs(miss).max() <= 1e-13 * np.abs(target).max():
            break
    return [float(x) for x in cell]


def set_detector(p: Params, values: dict) -> None:
    """The detector parameters of `values` (flag units) set on `p`, in SI."""
    for n in DETECTOR:
        if n in values:
            setattr(p, n, values[n] / (1e3 if UNITS[n] == "mm" else RTD))


def held_rotation(crystal: Crystal, old) -> np.ndarray:
    """U = A B(old)^-1, the rotation of `crystal` (built from the -cell values `old`) that a
    change of cell holds."""
    return _matrix(crystal, "abc") @ np.linalg.inv(_matrix(standard_axes(old), "abc"))


def with_cell(crystal: Crystal, old, new, U: np.ndarray | None = None) -> Crystal:
    """`crystal`, built from the -cell values `old`, rebuilt from `new` with its rotation
    U (`held_rotation`, computed here when not given) held."""
    U = held_rotation(crystal, old) if U is None else U
    made = standard_axes(new)
    turn = [tuple(U @ np.array(v)) for v in (made.a, made.b, made.c, made.a_star, made.b_star, made.c_star)]
    return Crystal(*turn, made.cell, made.recip_cell, made.volume, crystal.misset_deg)


def rotated(crystal: Crystal, angles) -> Crystal:
    """`crystal` turned about the lab x, y, z axes by `angles` (rad), as api.reorient turns it."""
    turn = [rotate_xyz(v, *angles) for v in (crystal.a, crystal.b, crystal.c, crystal.a_star, crystal.b_star,
                                             crystal.c_star)]
    return Crystal(*turn, crystal.cell, crystal.recip_cell, crystal.volume, crystal.misset_deg)


def _matrix(crystal: Crystal, which: str) -> np.ndarray:
    """Columns a, b, c (m) or a*, b*, c* (1/A)."""
    vectors = (crystal.a, crystal.b, crystal.c) if which == "abc" else (crystal.a_star, crystal.b_star, crystal.c_star)
    return np.array(vectors, dtype=np.float64).T


def domain_axes(umats: np.ndarray):
    """Per domain: W = (U - U^T)/2 = sin(theta) [axis]x, and theta / sin(theta) (1 for no turn)."""
    U = umats.reshape(-1, 3, 3)
    W = (U - U.transpose(0, 2, 1)) / 2.0
    sin = np.sqrt(W[:, 2, 1] ** 2 + W[:, 0, 2] ** 2 + W[:, 1, 0] ** 2)
    cos = (np.trace(U, axis1=1, axis2=2) - 1.0) / 2.0
    theta = np.arctan2(sin, cos)
    ratio = np.where(sin > 0, theta / np.where(sin > 0, sin, 1.0), 1.0)
    return U, W, theta, ratio


def scaled_domains(umats: np.ndarray, factor: float) -> np.ndarray:
    """The domains with each turn angle times `factor`, about the same axes (Rodrigues)."""
    U, W, theta, ratio = domain_axes(umats)
    K = W * ratio[:, None, None] / np.where(theta > 0, theta, 1.0)[:, None, None]  # [axis]x
    angle = (theta * factor)[:, None, None]
    turned = np.eye(3) + np.sin(angle) * K + (1.0 - np.cos(angle)) * (K @ K)
    turned[theta == 0] = np.eye(3)
    return turned.reshape(-1, 9)


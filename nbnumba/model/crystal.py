"""Crystal set-up: cell or orientation matrix, misset, real and reciprocal axes, rotated lattices."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..io.matrix import read_mosflm_matrix
from ..response import rng
from .detector import cross, dot, plain, rotate_axis, rotate_xyz
from .params import Params

DBL_MIN = sys.float_info.min


def length(v) -> float:
    return math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


def _scale(v, s: float):
    return (s * v[0], s * v[1], s * v[2])


def _rescale(v, new_mag: float):
    old = length(v)
    if old <= 0.0:
        old = 1.0
    return (new_mag / old * v[0], new_mag / old * v[1], new_mag / old * v[2])


@dataclass
class Crystal:
    a: tuple  # real-space axes (m), phi = 0, no mosaic
    b: tuple
    c: tuple
    a_star: tuple  # reciprocal axes (1/A)
    b_star: tuple
    c_star: tuple
    cell: tuple  # a b c (A) alpha beta gamma (deg)
    recip_cell: tuple
    volume: float  # A^3
    misset_deg: tuple | None = None
    warnings: list = field(default_factory=list)

    def __setattr__(self, name, value):
        super().__setattr__(name, plain(value))


def _cell_reciprocal(p: Params) -> tuple:
    a, b, c, alpha, beta, gamma = p.cell
    if not (a > 0):
        raise UserError(f"-cell: a must be positive, got {a:g}")
    b = a if b <= 0.0 else b
    c = a if c <= 0.0 else c
    alpha = math.pi / 2 if alpha <= 0.0 else alpha
    beta = math.pi / 2 if beta <= 0.0 else beta
    gamma = math.pi / 2 if gamma <= 0.0 else gamma
    aavg = (alpha + beta + gamma) / 2
    skew = math.sin(aavg) * math.sin(aavg - alpha) * math.sin(aavg - beta) * math.sin(aavg - gamma)
    # a negative product means no cell has these angles (one exceeds the sum of the other two);
    # the reference takes its absolute value and invents a cell
    if not skew > 1e-12:
        raise UserError("-cell: impossible or degenerate cell angles (no unit cell has them)")
    v_cell = 2.0 * a * b * c * math.sqrt(skew)
    v_star = 1.0 / v_cell
    a_star = b * c * math.sin(alpha) * v_star
    b_star = c * a * math.sin(beta) * v_star
    c_star = a * b * math.sin(gamma) * v_star
    sin_gamma_star = min(1.0, max(-1.0, c * v_star / a_star / b_star))
    cos_alpha_star = (math.cos(beta) * math.cos(gamma) - math.cos(alpha)) / (math.sin(beta) * math.sin(gamma))
    cos_beta_star = (math.cos(gamma) * math.cos(alpha) - math.cos(beta)) / (math.sin(gamma) * math.sin(alpha))
    cos_gamma_star = (math.cos(alpha) * math.cos(beta) - math.cos(gamma)) / (math.sin(alpha) * math.sin(beta))
    if cos_alpha_star * cos_alpha_star > 1.0:
        cos_alpha_star = 1.0
    if cos_beta_star * cos_beta_star > 1.0:
        cos_beta_star = 1.0
    if cos_gamma_star * cos_gamma_star > 1.0:
        cos_gamma_star = 1.0
    va = (a_star, 0.0, 0.0)
    vb = (b_star * cos_gamma_star, b_star * sin_gamma_star, 0.0)
    vc = (c_star * cos_beta_star,
          c_star * (cos_alpha_star - cos_beta_star * cos_gamma_star) / sin_gamma_star,
          c_star * v_cell / (a * b * c * sin_gamma_star))
    return va, vb, vc, (a, b, c), v_cell


def _uniform_rotation_misset(seed: int) -> np.ndarray:
    """A uniformly random orientation (Shoemake's quaternion), as misset angles."""
    state = rng.new_rng(seed)[0]
    u1, u2, u3 = (float(rng.ran1(state)) for _ in range(3))
    q = (math.sqrt(1 - u1) * math.sin(2 * math.pi * u2), math.sqrt(1 - u1) * math.cos(2 * math.pi * u2),
         math.sqrt(u1) * math.sin(2 * math.pi * u3), math.sqrt(u1) * math.cos(2 * math.pi * u3))
    x, y, z, w = q
    umat = np.array([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                     2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                     2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)])
    return rng.umat2misset(umat)


def _angle(sin_v: float, cos_v: float) -> float:
    sin_v = min(1.0, max(-1.0, sin_v))
    if cos_v * cos_v > 1.0:
        cos_v = 1.0
    return math.atan2(sin_v, cos_v)


def build_crystal(p: Params, lambda0: float, misset_seed: int) -> Crystal:
    warnings: list[str] = []
    if p.matfile is not None:
        a_star, b_star, c_star = (tuple(v) for v in read_mosflm_matrix(p.matfile))
        s = 1e-10 / lambda0
        a_star, b_star, c_star = _scale(a_star, s), _scale(b_star, s), _scale(c_star, s)
        user_lengths = None
    elif p.user_cell:
        a_star, b_star, c_star, user_lengths, v_user = _cell_reciprocal(p)
    else:
        raise UserError("no crystal: give -mat FILE or -cell a b c alpha beta gamma")

    misset = p.misset
    misset_deg = None
    if misset == "random":
        if p.fix_misset_random:
            angles = _uniform_rotation_misset(misset_seed)
        else:
            angles = rng.random_misset(misset_seed)
        misset = tuple(float(x) for x in angles)
        misset_deg = tuple(x * 180.0 * (1.0 / math.pi) for x in misset)
    if misset is not None:
        a_star = rotate_xyz(a_star, *misset)
        b_star = rotate_xyz(b_star, *misset)
        c_star = rotate_xyz(c_star, *misset)

    a_x_b = cross(a_star, b_star)
    b_x_c = cross(b_star, c_star)
    c_x_a = cross(c_star, a_star)
    v_star = dot(a_star, b_x_c)
    if user_lengths is not None:
        b_x_c = _rescale(b_x_c, user_lengths[0] / v_user)
        c_x_a = _rescale(c_x_a, user_lengths[1] / v_user)
        a_x_b = _rescale(a_x_b, user_lengths[2] / v_user)
        v_star = 1.0 / v_user
    if not (v_star != 0.0 and math.isfinite(v_star)):
        source = p.matfile if p.matfile is not None else "-cell"
        raise UserError(f"{source}: degenerate crystal (zero or unrepresentable cell volume)")
    v_cell = 1.0 / v_star
    a = _scale(b_x_c, v_cell)
    b = _scale(c_x_a, v_cell)
    c = _scale(a_x_b, v_cell)
    a_star = _scale(cross(b, c), v_star)
    b_star = _scale(cross(c, a), v_star)
    c_star = _scale(cross(a, b), v_star)

    la, lb, lc = length(a), length(b), length(c)
    lsa, lsb, lsc = length(a_star), length(b_star), length(c_star)
    rtd = 180.0 * (1.0 / math.pi)
    cell = (la, lb, lc,
            _angle(lsa * v_cell / lb / lc, dot(b, c) / lb / lc) * rtd,
            _angle(lsb * v_cell / la / lc, dot(a, c) / la / lc) * rtd,
            _angle(lsc * v_cell / la / lb, dot(a, b) / la / lb) * rtd)
    recip_cell = (lsa, lsb, lsc,
                  _angle(la * v_star / lsb / lsc, dot(b_star, c_star) / lsb / lsc) * rtd,
                  _angle(lb * v_star / lsa / lsc, dot(a_star, c_star) / lsa / lsc) * rtd,
                  _angle(lc * v_star / lsa / lsb, dot(a_star, b_star) / lsa / lsb) * rtd)
    return Crystal(_scale(a, 1e-10), _scale(b, 1e-10), _scale(c, 1e-10), a_star, b_star, c_star,
                   cell, recip_cell, v_cell, misset_deg, warnings)


def phi_lattices(crystal: Crystal, spindle, phi0: float, phistep: float, phisteps: int,
                 umats: np.ndarray, mosaic_spread: float, fix_phi0: bool) -> np.ndarray:
    """Rotated axes a, b, c (m) per (variant, phi step, mosaic domain): shape (2, P, M, 9).

    The reference rotates the lattice only at non-zero phi; at phi = 0 it keeps whatever the
    previous rotation left.  Variant 0 is the first phi pass of the whole render (the lattice is
    still unrotated), variant 1 every later pass (the last non-zero step's lattice carries over).
    With `fix_phi0` every step is rotated by its own angle and both variants agree.
    """
    axes = (crystal.a, crystal.b, crystal.c)
    phis = [phi0 + phistep * t for t in range(phisteps)]
    rotated = [None if (phi == 0.0 and not fix_phi0) else
               [rotate_axis(v, spindle, phi) for v in axes] for phi in phis]
    last = next((r for r in reversed(rotated) if r is not None), None)
    table = np.empty((2, phisteps, len(umats), 9))
    for variant, carry in enumerate((list(axes), last if last is not None else list(axes))):
        for t in range(phisteps):
            if rotated[t] is not None:
                carry = rotated[t]
            for m, u in enumerate(umats):
                for n, v in enumerate(carry):
                    if mosaic_spread > 0.0:
                        v = (u[0] * v[0] + u[1] * v[1] + u[2] * v[2],
                             u[3] * v[0] + u[4] * v[1] + u[5] * v[2],
                             u[6] * v[0] + u[7] * v[1] + u[8] * v[2])
                    table[variant, t, m, 3 * n:3 * n + 3] = v
    return table

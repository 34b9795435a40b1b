"""The refined model as nanoBragg flags: the starting flags with those the refined parameters
govern replaced, so that `nbnumba run $(cat PREFIX.flags) -floatfile model.bin` renders it.

The crystal is written as -cell and -misset (the orientation's angles about x, then y, then z, as
the reference applies -misset), whether it started from -cell or -mat; N as -Na -Nb -Nc (real
numbers with the smooth shapes); the scale folded into -fluence; the oversampling the fit held
(an automatic one would follow the refined N).  Output files are left out."""

from __future__ import annotations

import math

import numpy as np

from ..model.options import FLAGS

RTD = 180.0 / math.pi
CRYSTAL = {"-mat", "-cell", "-misset", "-misset random"}
CELLS = {"-Na", "-Nb", "-Nc", "-N", "-samplesize", "-sample_thick", "-sample_width", "-sample_height", "-xtalsize",
         "-xtal_thick", "-xtal_width", "-xtal_height"}
GOVERNS = {"scale": {"-fluence", "-flux"}, "distance": {"-distance", "-close_distance"}, "Xbeam": {"-Xbeam"},
           "Ybeam": {"-Ybeam"}, "detector_rotx": {"-detector_rotx"}, "detector_roty": {"-detector_roty"},
           "detector_rotz": {"-detector_rotz"}, "lambda": {"-lambda", "-energy"}, "mosaic": {"-mosaic"}}
OUTPUTS = {"-floatfile", "-intfile", "-noisefile", "-pgmfile", "-out", "-nexus", "-oversample"}


def _flag_of(token: str):
    for flag in FLAGS:
        if flag.matches(token):
            return flag
    return None


def without(argv: list[str], names: set[str]) -> list[str]:
    """`argv` less the flags whose canonical names are in `names`, with their values."""
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        flag = _flag_of(token) if token.startswith("-") else None
        n = flag.nargs if flag is not None else 0
        if flag is not None and flag.name.startswith("-misset"):
            n = 1 if i + 1 < len(argv) and "rand" in argv[i + 1] else 3
        if flag is None or flag.name.split()[0] not in {x.split()[0] for x in names}:
            out.extend(argv[i:i + 1 + n])
        i += 1 + n
    return out


def _number(x: float) -> str:
    return repr(float(x))


def misset_angles(U: np.ndarray) -> tuple[float, float, float]:
    """(x, y, z) in degrees with U = Rz(z) Ry(y) Rx(x)."""
    y = math.asin(max(-1.0, min(1.0, -U[2, 0])))
    x = math.atan2(U[2, 1], U[2, 2])
    z = math.atan2(U[1, 0], U[0, 0])
    return x * RTD, y * RTD, z * RTD


def refined_flags(start_argv: list[str], sim, names: list[str]) -> list[str]:
    """The flags of `sim` (the refined Simulation, made from `start_argv`'s) for the parameters
    `names` that were refined."""
    from ..derivatives.parameters import flag_cell, standard_axes

    drop = set(OUTPUTS)
    added: list[str] = []
    crystal = {"rotx", "roty", "rotz", "a", "b", "c", "alpha", "beta", "gamma"} & set(names)
    if crystal:
        drop |= CRYSTAL
        cell = flag_cell(sim)
        made = standard_axes(cell)
        A = np.array([sim.crystal.a, sim.crystal.b, sim.crystal.c], dtype=np.float64).T
        B = np.array([made.a, made.b, made.c], dtype=np.float64).T
        added += ["-cell", *map(_number, cell), "-misset", *map(_number, misset_angles(A @ np.linalg.inv(B)))]
    if {"Na", "Nb", "Nc", "N"} & set(names):
        drop |= CELLS
        added += ["-Na", _number(sim.Na), "-Nb", _number(sim.Nb), "-Nc", _number(sim.Nc)]
    p, det = sim.params, sim.detector
    values = {"scale": ("-fluence", sim.fluence), "distance": ("-distance", p.distance * 1e3),
              "Xbeam": ("-Xbeam", det.Xbeam * 1e3), "Ybeam": ("-Ybeam", det.Ybeam * 1e3),
              "lambda": ("-lambda", sim.lambda0 * 1e10), "mosaic": ("-mosaic", sim.mosaic_spread * RTD),
              **{n: ("-" + n, getattr(p, n) * RTD) for n in ("detector_rotx", "detector_roty", "detector_rotz")}}
    for name in names:
        if name in GOVERNS:
            drop |= GOVERNS[name]
            added += [values[name][0], _number(values[name][1])]
    if {"distance", "Xbeam", "Ybeam"} & set(names):
        added += ["-pivot", det.pivot.lower()]
    return without(list(start_argv), drop) + added + ["-oversample", str(sim.oversample)]

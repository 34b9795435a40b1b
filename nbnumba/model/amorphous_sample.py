"""The amorphous sample of nonBragg and of run's -bg_ group, in SI units: its F(sin(theta)/lambda)
table (read and checked), the illuminated sample and its molecules, and the kernels' source rows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..io.textcolumns import read_columns
from ..physics import amorphous_layout as A
from .beam import Sources

R_E_SQR = 7.94079248018965e-30  # Thomson cross section (m^2)
AVOGADRO = 6.02214179e23
SENTINELS = (1e98, 1e99)  # the reference pads its table with far points (1/m) on both sides


@dataclass
class StolTable:
    points: np.ndarray  # (2, rows + 4): sin(theta)/lambda (1/m) and F, with the reference's sentinels
    path: str
    unit: float  # file units to 1/m (1e10 for -stol, 1e10/4 for -4stol, 1e10/(4 pi) for -Q)

    @property
    def first(self) -> float:
        return float(self.points[0, 2])

    @property
    def last(self) -> float:
        return float(self.points[0, -3])


def read_stol_table(path: str, unit: float) -> StolTable:
    """The reference's table: a missing F reads as 0; the far sentinels carry the F of the
    lowest and highest rows that have one."""
    rows = read_columns(path, 2, numbers_only=True)
    stol = rows[:, 0] * unit
    F = rows[:, 1].copy()
    given = ~np.isnan(F)
    if not given.any():
        raise UserError(f"{path}: no F values (each line needs sin(theta)/lambda and F)")
    if not np.all(np.isfinite(stol)) or not np.all(np.isfinite(F[given])):
        raise UserError(f"{path}: the table holds a value that is not a finite number")
    if len(stol) < 2:
        raise UserError(f"{path}: the table needs at least 2 rows to interpolate, it has {len(stol)}")
    falling = np.flatnonzero(np.diff(stol) <= 0)
    if falling.size:
        line = int(falling[0]) + 2
        raise UserError(f"{path}: sin(theta)/lambda must increase from row to row (row {line} does not)")
    F_low, F_high = F[given][0], F[given][-1]
    F[~given] = 0.0
    points = np.empty((2, len(stol) + 4))
    points[0, 2:-2] = stol
    points[1, 2:-2] = F
    points[0, :2] = (-SENTINELS[1], -SENTINELS[0])
    points[0, -2:] = SENTINELS
    points[1, :2] = F_low
    points[1, -2:] = F_high
    return StolTable(points, path, unit)


@dataclass
class Sample:
    thick: float  # m, along the beam
    high: float  # m
    wide: float  # m
    density: float  # g/m^3
    molecular_weight: float  # g/mol
    molecules: float


def sample_in_beam(thick: float, high: float, wide: float, density: float, molecular_weight: float,
                   molecules: float, beamsize: float) -> tuple[Sample, list[str]]:
    """The illuminated sample: clipped by the beam; `molecules` (when not 0) sets the density."""
    notes = []
    if beamsize >= 0:
        if beamsize < high:
            notes.append(f"WARNING: clipping sample ({high:g} m high) with beam ({beamsize:g} m)")
            high = beamsize
        if beamsize < wide:
            notes.append(f"WARNING: clipping sample ({wide:g} m wide) with beam ({beamsize:g} m)")
            wide = beamsize
    if not molecular_weight > 0:
        raise UserError(f"-MW must be positive, got {molecular_weight:g}")
    volume = thick * high * wide
    if molecules != 0:
        if not volume > 0:
            raise UserError("-molecules needs a sample of positive volume (check -thickness/-samplesize/-beamsize)")
        density = molecules / volume / AVOGADRO * molecular_weight
    molecules = volume * density * AVOGADRO / molecular_weight
    if not (math.isfinite(molecules) and molecules >= 0):
        raise UserError(f"the sample holds {molecules:g} molecules: check its size, -density and -MW")
    return Sample(thick, high, wide, density, molecular_weight, molecules), notes


def check_weights(path: str, weights: list[float]) -> None:
    """nonBragg divides by the sum of the weights: a negative weight, or a sum that is not
    positive, renders a negative or unbounded image."""
    for row, weight in enumerate(weights, start=1):
        if not (weight >= 0.0 and math.isfinite(weight)):
            raise UserError(f"{path}: source {row} has the weight {weight:g}: weights must be finite and "
                            "not negative")
    if not sum(weights) > 0.0:
        raise UserError(f"{path}: the source weights add up to {sum(weights):g}: at least one must be positive")


def source_rows(sources: Sources, polar_vector, weights) -> np.ndarray:
    """The kernels' source table: direction, wavelength, polarization basis, weight."""
    from .simulation import source_table

    table = np.empty((len(sources.wavelengths), A.N_SOURCE))
    table[:, :A.S_WEIGHT] = source_table(sources, polar_vector)
    table[:, A.S_WEIGHT] = weights
    return table


def run_source_rows(sim) -> np.ndarray:
    """The source rows of a `run` simulation's sources, weighted as nonBragg weighs them: each
    generated source 1, each -sourcefile row by its (checked) weight."""
    p = sim.params
    weights = 1.0
    if p.sourcefile is not None:
        weights = [row[3] for row in sim.sources.listing]
        check_weights(p.sourcefile, weights)
    return source_rows(sim.sources, sim.detector.polar_vector, weights)

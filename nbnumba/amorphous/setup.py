"""Host-side set-up of the amorphous background, in plain numpy: the F(sin(theta)/lambda) table,
the sample, the flat kernel arrays, and `render_background`, which any command can call with its
own detector and sources (nonbragg does; `run` can add the result to its Bragg image)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..io.textcolumns import read_columns
from ..model.beam import Sources
from ..model.detector import Detector
from ..physics import amorphous_layout as A

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
    from ..model.simulation import source_table

    table = np.empty((len(sources.wavelengths), A.N_SOURCE))
    table[:, :A.S_WEIGHT] = source_table(sources, polar_vector)
    table[:, A.S_WEIGHT] = weights
    return table


@dataclass
class Background:
    image: np.ndarray  # float32 (slow, fast): photons per pixel (F under -Fmap); 0 outside the ROI
    omega_sum: float  # sum of the solid angles of every rendered sub-pixel (sr)
    stol_range: tuple  # smallest and largest sin(theta)/lambda seen (1/m)
    # with `last=True`, (slow, fast, 3) float64: each ROI pixel's sin(theta)/lambda (1/m) and
    # polarization of its last source at its last sub-pixel, and that sub-pixel's solid angle (sr),
    # as nonBragg's loop leaves them for its -img fit; NaN outside the ROI
    last: np.ndarray | None = None


def kernel_arrays(det: Detector, sources: np.ndarray, oversample: int, *, molecules: float, fluence: float,
                  kahn: float, nopolar: bool, curved: bool, point_pixel: bool, fix_spline: bool = False,
                  fmap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    geo = np.zeros(A.N_GEO)
    geo[A.G_PIX0:A.G_PIX0 + 3] = det.pix0
    geo[A.G_FDET:A.G_FDET + 3] = det.fdet
    geo[A.G_SDET:A.G_SDET + 3] = det.sdet
    geo[A.G_BEAM:A.G_BEAM + 3] = det.beam
    geo[A.G_PIXEL] = det.pixel_size
    geo[A.G_SUBPIXEL] = det.pixel_size / oversample
    geo[A.G_DISTANCE] = det.distance
    geo[A.G_CLOSE] = det.close_distance
    geo[A.G_KAHN] = kahn
    geo[A.G_RE2] = R_E_SQR
    geo[A.G_FLUENCE] = fluence
    geo[A.G_MOLECULES] = molecules
    geo[A.G_STEPS] = len(sources) * oversample * oversample
    ints = np.zeros(A.N_INT, dtype=np.int64)
    ints[A.I_FPIXELS], ints[A.I_SPIXELS] = det.fpixels, det.spixels
    ints[A.I_OVERSAMPLE] = oversample
    ints[A.I_SOURCES] = len(sources)
    ints[A.I_CURVED] = curved
    ints[A.I_POINT_PIXEL] = point_pixel
    ints[A.I_NOPOLAR] = nopolar
    ints[A.I_FIX_SPLINE] = fix_spline
    ints[A.I_FMAP] = fmap
    ints[A.I_ROI_XMIN:A.I_ROI_YMAX + 1] = det.roi
    return geo, ints


def render_background(det: Detector, sources: np.ndarray, table: StolTable, oversample: int, *,
                      device: str = "cpu", progress: bool = False, last: bool = False,
                      **physics) -> Background:
    """The amorphous sample's image on `det` lit by `sources` (rows of `source_rows`); keywords as
    `kernel_arrays`; `last` keeps each pixel's last sin(theta)/lambda, polarization and solid
    angle (`Background.last`).  A table that does not reach every sin(theta)/lambda the detector
    sees is refused: the reference extrapolates its cubic far outside the table."""
    from ..kernels.backends import flag_backend
    from ..kernels.render import Progress

    if len(sources) == 0:
        raise UserError("no X-ray source to render with")
    geo, ints = kernel_arrays(det, sources, oversample, **physics)
    image = np.zeros((det.spixels, det.fpixels), dtype=np.float32)
    omega_rows = np.zeros(det.spixels)
    stol_rows = np.empty((det.spixels, 2))
    stol_rows[:, 0], stol_rows[:, 1] = np.inf, -np.inf
    per_pixel = np.full((det.spixels, det.fpixels, 3) if last else (0, 0, 3), np.nan)
    kernels = flag_backend(device, amorphous=True)
    first, last = max(int(ints[A.I_ROI_YMIN]), 0), min(int(ints[A.I_ROI_YMAX]), det.spixels - 1)
    # blocks of rows give the progress meter something to show (at least 64 keep both CPU threads busy)
    rows = last - first + 1 if getattr(kernels, "WHOLE_IMAGE", False) else max(64, det.spixels // 50)
    meter = Progress(progress, max(last - first + 1, 0))
    try:
        for lo in range(first, last + 1, rows):
            ints[A.I_ROI_YMIN], ints[A.I_ROI_YMAX] = lo, min(last, lo + rows - 1)
            kernels.render_rows(geo, ints, np.ascontiguousarray(sources), np.ascontiguousarray(table.points),
                                image, omega_rows, stol_rows, per_pixel)
            meter.update(min(last, lo + rows - 1) + 1 - first)
    finally:  # an interruption's message must start on a line of its own
        meter.close()
    low, high = float(stol_rows[:, 0].min()), float(stol_rows[:, 1].max())
    if low <= high and (low < table.first or high > table.last):
        raise UserError(
            f"{table.path}: the table covers sin(theta)/lambda {table.first / 1e10:g} to {table.last / 1e10:g} 1/A "
            f"but the detector sees {low / 1e10:g} to {high / 1e10:g} 1/A; extend the table "
            f"(or shrink the detector, -roi, or the wavelength)")
    return Background(image, float(omega_rows.sum()), (low, high), per_pixel if last else None)


def background_on(sim, table: StolTable, sample: Sample, oversample: int = 1, *, device: str = "cpu",
                  fix_spline: bool = False, progress: bool = False) -> Background:
    """The amorphous background on a `run` simulation's detector, lit by its sources, polarized
    and scaled by its fluence, as nonBragg would render it with the same geometry (nonBragg
    weighs each generated source 1 and each -sourcefile row by its weight)."""
    p = sim.params
    weights = 1.0
    if p.sourcefile is not None:
        weights = [row[3] for row in sim.sources.listing]
        check_weights(p.sourcefile, weights)
    rows = source_rows(sim.sources, sim.detector.polar_vector, weights)
    return render_background(sim.detector, rows, table, oversample, device=device, progress=progress,
                             molecules=sample.molecules, fluence=sim.fluence, kahn=p.polarization,
                             nopolar=p.nopolar, curved=p.curved_detector, point_pixel=p.point_pixel,
                             fix_spline=fix_spline)

"""The render of an amorphous background: the flat kernel arrays of a detector, sources and table
(model/amorphous_sample.py), and `render_background`, which any command can call with its own
detector and sources (nonbragg does; `run`'s -bg_ group adds the result to its Bragg image)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..model.amorphous_sample import R_E_SQR, Sample, StolTable
from ..model.detector import Detector
from ..physics import amorphous_layout as A


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


def background_on(sim, rows: np.ndarray, table: StolTable, sample: Sample, oversample: int = 1, *,
                  device: str = "cpu", fix_spline: bool = False, progress: bool = False) -> Background:
    """The amorphous background on a `run` simulation's detector, lit by its sources (`rows`:
    model.amorphous_sample.run_source_rows), polarized and scaled by its fluence, as nonBragg
    would render it with the same geometry."""
    p = sim.params
    return render_background(sim.detector, rows, table, oversample, device=device, progress=progress,
                             molecules=sample.molecules, fluence=sim.fluence, kahn=p.polarization,
                             nopolar=p.nopolar, curved=p.curved_detector, point_pixel=p.point_pixel,
                             fix_spline=fix_spline)


def background(nb, device: str | None = None, progress: bool = False, last: bool | None = None):
    """The rendered image; with -img (or `last`) also each pixel's last sin(theta)/lambda,
    polarization and solid angle (`Background.last`), which the fit needs."""
    p = nb.params
    return render_background(nb.detector, nb.source_table, nb.table, nb.oversample, device=device or p.device,
                             progress=progress, last=nb.img is not None if last is None else last,
                             molecules=nb.sample.molecules, fluence=nb.fluence, kahn=p.polarization,
                             nopolar=p.nopolar, curved=p.curved_detector, point_pixel=p.point_pixel,
                             fix_spline=p.fix_spline, fmap=p.fmap)

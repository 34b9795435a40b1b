"""Image statistics and the output files: float image, SMV int and noise images, PGM."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from . import rng
from .io.images import pgm_bytes, write_float_image, write_pgm
from .io.smv import write_smv
from .errors import RuntimeFailure
from .simulation import Simulation

RTD = 180.0 * (1.0 / math.pi)


@dataclass
class Stats:
    max_I: float
    max_x: float  # m, of the last sub-pixel of the brightest pixel, as the reference prints
    max_y: float
    mean: float
    rms: float
    rmsd: float
    rendered: int


def output_paths(p) -> list[str]:
    paths = [p.floatfile, p.intfile]
    if p.write_pgm:
        paths.append(p.pgmfile)
    if p.calculate_noise:
        paths.append(p.noisefile)
    return paths


def check_writable(paths: list[str]) -> None:
    """Fail before rendering, not after: every output's folder must exist and accept files."""
    for path in paths:
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise RuntimeFailure(f"cannot write {path}: it is a directory")
        if not os.path.isdir(folder):
            raise RuntimeFailure(f"cannot write {path}: no such directory {folder}")
        if not os.access(folder, os.W_OK):
            raise RuntimeFailure(f"cannot write {path}: permission denied")


def roi_mask(sim: Simulation) -> np.ndarray:
    xmin, xmax, ymin, ymax = sim.detector.roi
    inside = np.zeros(sim.shape, dtype=bool)
    inside[max(ymin, 0):ymax + 1, max(xmin, 0):xmax + 1] = True
    return inside


def statistics(sim: Simulation, image: np.ndarray) -> Stats:
    inside = roi_mask(sim)
    rendered = inside & (sim.mask != 0) if sim.mask is not None else inside
    values = image[rendered].astype(np.float64)
    n = values.size
    max_I, max_x, max_y = 0.0, 0.0, 0.0
    if n and values.max() > 0.0:
        flat = np.where(rendered, image, -np.inf).ravel()
        idx = int(np.argmax(flat))
        s, f = divmod(idx, sim.detector.fpixels)
        max_I = float(image[s, f])
        sub = sim.detector.pixel_size / sim.oversample
        last = sim.oversample - 1
        max_x = sub * (f * sim.oversample + last) + sub / 2.0
        max_y = sub * (s * sim.oversample + last) + sub / 2.0
    mean = float(values.sum()) / max(n, 1)
    rms = math.sqrt(float((values * values).sum()) / (max(n, 2) - 1))
    roi_values = image[inside].astype(np.float64) - mean
    rmsd = math.sqrt(float((roi_values * roi_values).sum()) / (max(roi_values.size, 2) - 1))
    return Stats(max_I, max_x, max_y, mean, rms, rmsd, n)


def header_fields(sim: Simulation) -> dict:
    det, p = sim.detector, sim.params
    return dict(size1=det.fpixels, size2=det.spixels, pixel_size_mm=det.pixel_size * 1000.0,
                distance_mm=det.distance * 1000.0, wavelength_A=sim.lambda0 * 1e10,
                beam_center_x_mm=det.Xbeam * 1000.0, beam_center_y_mm=det.Ybeam * 1000,
                adxv_center_x_mm=det.Fbeam * 1000.0, adxv_center_y_mm=(det.detsize_s - det.Sbeam) * 1000,
                mosflm_center_x_mm=(det.Sbeam - 0.5 * det.pixel_size) * 1000.0,
                mosflm_center_y_mm=(det.Fbeam - 0.5 * det.pixel_size) * 1000,
                denzo_x_beam_mm=(det.Sbeam - 0.0 * det.pixel_size) * 1000.0,
                denzo_y_beam_mm=(det.Fbeam - 0.0 * det.pixel_size) * 1000,
                dials_origin_mm=det.dials_origin, xds_orgx=det.ORGX, xds_orgy=det.ORGY,
                close_distance_mm=det.close_distance * 1000.0, phi_deg=sim.phi0 * RTD,
                osc_start_deg=sim.phi0 * RTD, osc_range_deg=sim.osc * RTD,
                twotheta_deg=p.detector_twotheta * RTD)


def int_image(sim: Simulation, image: np.ndarray, max_I: float) -> tuple[np.ndarray, float]:
    scale = sim.params.intfile_scale
    if scale <= 0.0:
        scale = 55000.0 / max_I if max_I > 0.0 else 1.0
    test = np.clip(image.astype(np.float64) * scale + sim.params.adc_offset, 0.0, 65535.0)
    # the reference rounds with floorf(), which first narrows test + 0.5 to float
    counts = np.floor((test + 0.5).astype(np.float32)).astype(np.uint16)
    counts[~roi_mask(sim)] = 0
    return counts, scale


def write_outputs(sim: Simulation, image: np.ndarray, stats: Stats, say) -> None:
    """Write every output the reference writes, in its order, reporting as it does."""
    p = sim.params
    det = sim.detector
    say(f"writing {p.floatfile} as {det.fpixels * det.spixels} 4-byte floats")
    write_float_image(p.floatfile, image)
    say(f"max_I = {stats.max_I:g}  at {stats.max_x:g} {stats.max_y:g}")
    say(f"mean= {stats.mean:g} rms= {stats.rms:g} rmsd= {stats.rmsd:g}")
    counts, scale = int_image(sim, image, stats.max_I)
    say(f"intfile_scale = {scale:g}")
    fields = header_fields(sim)
    say(f"writing {p.intfile} as 2-byte integers")
    write_smv(p.intfile, counts, fields)
    if p.write_pgm:
        pgm_scale = p.pgm_scale
        if pgm_scale <= 0.0:
            pgm_scale = scale
            if stats.rmsd > 0.0:
                pgm_scale = 250.0 / (5.0 * stats.rmsd)
        say(f"pgm_scale = {pgm_scale:g}")
        say(f"writing {p.pgmfile} as 1-byte integers")
        write_pgm(p.pgmfile, pgm_bytes(image, pgm_scale, det.roi), pgm_scale)
    if p.calculate_noise:
        noise, photons, overloads = rng.noise_image(image, np.array(det.roi, dtype=np.int64),
                                                    p.adc_offset, sim.seed)
        say(f"{photons:.0f} photons on noise image ({overloads} overloads)")
        say(f"writing {p.noisefile} as 2-byte integers")
        write_smv(p.noisefile, noise, fields)

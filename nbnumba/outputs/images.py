"""Image statistics and the output files: float image, SMV int and noise images, PGM."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

import numba
import numpy as np

from ..io import atomic, nexus
from ..io.images import pgm_bytes, write_float_image, write_pgm
from ..io.smv import write_smv
from ..model.simulation import Simulation
from ..response import rng
from ..runtime import jitcache  # before the functions below: it sets their cache folder

RTD = 180.0 * (1.0 / math.pi)


@dataclass
class Stats:
    """The statistics `run` prints, over the pixels it rendered (ROI and mask).

    max_I: the brightest pixel (photons); max_x, max_y: where it is (m, fast and slow, at the centre
    of its last sub-pixel, as the reference prints it); mean, rms, rmsd: mean, root mean square and
    root mean square deviation of the rendered pixels (photons); rendered: how many were rendered."""

    max_I: float
    max_x: float  # m, of the last sub-pixel of the brightest pixel, as the reference prints
    max_y: float
    mean: float
    rms: float
    rmsd: float
    rendered: int


@numba.njit(cache=True, nogil=True)
def _moments(image, roi, mask, has_mask, float_squares=False):
    """One pass in scan order over the rendered pixels: sum, sum of squares, count, first max.
    With `float_squares` each square is a float32 product, as nonBragg forms it (it overflows to
    inf above 1.8e19 photons)."""
    xmin, xmax, ymin, ymax = roi
    total = 0.0
    squares = 0.0
    n = 0
    best = 0.0
    best_index = -1
    for s in range(max(ymin, 0), min(ymax, image.shape[0] - 1) + 1):
        for f in range(max(xmin, 0), min(xmax, image.shape[1] - 1) + 1):
            if has_mask and mask[s, f] == 0:
                continue
            v = np.float64(image[s, f])
            total += v
            squares += np.float64(image[s, f] * image[s, f]) if float_squares else v * v
            n += 1
            if v > best:
                best = v
                best_index = s * image.shape[1] + f
    return total, squares, n, best, best_index


@numba.njit(cache=True, nogil=True)
def _deviation(image, roi, mean):
    """Sum of squared deviations from the mean over the whole ROI (masked pixels included)."""
    xmin, xmax, ymin, ymax = roi
    total = 0.0
    n = 0
    for s in range(max(ymin, 0), min(ymax, image.shape[0] - 1) + 1):
        for f in range(max(xmin, 0), min(xmax, image.shape[1] - 1) + 1):
            d = np.float64(image[s, f]) - mean
            total += d * d
            n += 1
    return total, n


def _counts(image, roi, scale, adc):
    """The int image: floorf(clip(value*scale + adc, 0, 65535) + 0.5) inside the ROI, 0 outside.
    Allocated here: an allocation in compiled code makes its cached copy import Numba's NumPy
    implementations when it loads (60 ms)."""
    out = np.zeros(image.shape, dtype=np.uint16)
    jitcache.call(_fill_counts, image, roi, float(scale), float(adc), out)
    return out


@numba.njit(cache=True, nogil=True)
def _fill_counts(image, roi, scale, adc, out):
    xmin, xmax, ymin, ymax = roi
    for s in range(max(ymin, 0), min(ymax, image.shape[0] - 1) + 1):
        for f in range(max(xmin, 0), min(xmax, image.shape[1] - 1) + 1):
            test = np.float64(image[s, f]) * scale + adc
            test = min(65535.0, max(0.0, test))
            # floorf() narrows test + 0.5 to float first, as the reference's call does
            out[s, f] = np.uint16(math.floor(np.float32(test + 0.5)))


def statistics(sim: Simulation, image: np.ndarray) -> Stats:
    roi = np.array(sim.detector.roi, dtype=np.int64)
    mask = sim.mask if sim.mask is not None else np.zeros((1, 1), dtype=np.uint16)
    total, squares, n, best, best_index = jitcache.call(_moments, image, roi, mask, sim.mask is not None, False)
    max_x = max_y = 0.0
    if best_index >= 0:
        s, f = divmod(best_index, sim.detector.fpixels)
        sub = sim.detector.pixel_size / sim.oversample
        last = sim.oversample - 1
        max_x = sub * (f * sim.oversample + last) + sub / 2.0
        max_y = sub * (s * sim.oversample + last) + sub / 2.0
    mean = total / max(n, 1)
    rms = math.sqrt(squares / (max(n, 2) - 1))
    deviation, m = jitcache.call(_deviation, image, roi, float(mean))
    rmsd = math.sqrt(deviation / (max(m, 2) - 1))
    return Stats(best, max_x, max_y, mean, rms, rmsd, n)


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


def smv_keys(p) -> tuple:
    """-fix_smv_keys: the ADC offset under the keys dxtbx's SMV readers take it from (ADC_OFFSET
    for nanoBragg's images, IMAGE_PEDESTAL for ADSC's) and the exposure (TIME, ADSC's)."""
    if not p.fix_smv_keys:
        return ()
    return (("ADC_OFFSET", p.adc_offset), ("IMAGE_PEDESTAL", p.adc_offset), ("TIME", p.exposure))


def int_image(sim: Simulation, image: np.ndarray, max_I: float) -> tuple[np.ndarray, float]:
    scale = sim.params.intfile_scale
    if scale <= 0.0:
        scale = 55000.0 / max_I if max_I > 0.0 else 1.0
    return _counts(image, np.array(sim.detector.roi, dtype=np.int64), scale, sim.params.adc_offset), scale


def pgm_scale_for(sim: Simulation, stats: Stats, int_scale: float) -> float:
    """-pgmscale, or the reference's choice: 250 grey levels over five rmsd of the image."""
    if sim.params.pgm_scale > 0.0:
        return sim.params.pgm_scale
    return 250.0 / (5.0 * stats.rmsd) if stats.rmsd > 0.0 else int_scale


def noise_image(sim: Simulation, image: np.ndarray) -> tuple[np.ndarray, float, int]:
    """(Poisson noise image with the ADC offset, photons drawn, overloads), from the run's seed."""
    return rng.noise_image(image, np.array(sim.detector.roi, dtype=np.int64), sim.params.adc_offset, sim.seed)


def command_line(sim: Simulation) -> str:
    return shlex.join(["nbnumba", "run", *sim.params.argv])


def _write_image(sim: Simulation, path: str, counts: np.ndarray, floats=None) -> None:
    """An SMV or float file, or an NXmx file when the name ends in .nxs, .h5 or .nx5."""
    if nexus.is_nexus_name(path):
        nexus.write_image(path, nexus.geometry(sim, command_line(sim)), counts, floats)
    elif counts.dtype == np.uint16:
        write_smv(path, counts, header_fields(sim), smv_keys(sim.params))
    else:
        write_float_image(path, counts)


def write_outputs(sim: Simulation, image: np.ndarray, stats: Stats, say) -> None:
    """Write every output the reference writes, in its order, reporting as it does; then the
    NXmx file of -nexus (the noise image, or the int image under -nonoise, with the float image).
    Returns the counts the detector reports (the noise image, or the int image under -nonoise).
    None replaces its earlier file unless all are written (atomic.together)."""
    with atomic.together():
        return _write_all(sim, image, stats, say)


def _write_all(sim: Simulation, image: np.ndarray, stats: Stats, say) -> np.ndarray:
    p = sim.params
    det = sim.detector
    say(f"writing {p.floatfile} as {det.fpixels * det.spixels} 4-byte floats")
    _write_image(sim, p.floatfile, image)
    say(f"max_I = {stats.max_I:g}  at {stats.max_x:g} {stats.max_y:g}")
    say(f"mean= {stats.mean:g} rms= {stats.rms:g} rmsd= {stats.rmsd:g}")
    if p.response:
        counts, scale = _write_response_images(sim, image, say), p.gain
    else:
        counts, scale = _write_counts(sim, image, stats, say)
    if p.nexusfile:
        say(f"writing {p.nexusfile} as NXmx (NeXus/HDF5)")
        g = nexus.geometry(sim, command_line(sim))
        g.extra.update(images_are="noise" if p.calculate_noise else "int", int_scale=scale)
        nexus.write_image(p.nexusfile, g, counts, image)
    return counts


def _write_counts(sim: Simulation, image: np.ndarray, stats: Stats, say) -> tuple[np.ndarray, float]:
    """nanoBragg's int, PGM and noise images; returns the detector's counts (the noise image, or
    the int image under -nonoise) and the int scale."""
    p, det = sim.params, sim.detector
    counts, scale = int_image(sim, image, stats.max_I)
    say(f"intfile_scale = {scale:g}")
    say(f"writing {p.intfile} as 2-byte integers")
    _write_image(sim, p.intfile, counts)
    if p.write_pgm:
        pgm_scale = pgm_scale_for(sim, stats, scale)
        say(f"pgm_scale = {pgm_scale:g}")
        say(f"writing {p.pgmfile} as 1-byte integers")
        write_pgm(p.pgmfile, pgm_bytes(image, pgm_scale, det.roi), pgm_scale)
    if p.calculate_noise:
        noise, photons, overloads = noise_image(sim, image)
        say(f"{photons:.0f} photons on noise image ({overloads} overloads)")
        say(f"writing {p.noisefile} as 2-byte integers")
        _write_image(sim, p.noisefile, noise)
        counts = noise
    return counts, scale


def response_params(sim: Simulation):
    """noisify's parameters for a run with detector effects (its input is already photons/pixel)."""
    from ..response.model import ResponseParams

    p = sim.params
    return ResponseParams(pixel_size=sim.detector.pixel_size, gain=p.gain, adc_offset=p.adc_offset,
                          readout_noise=p.readout_noise, flicker_noise=p.flicker_noise,
                          calibration_noise=p.calibration_noise, seed=sim.seed, calib_seed=p.calib_seed, psf=p.psf,
                          psf_fwhm=p.psf_fwhm, psf_radius=p.psf_radius, noise=p.calculate_noise)


def detector_response(sim: Simulation, image: np.ndarray):
    """(noisify's parameters, its images) of `image` (photons/pixel) under the run's detector
    effects: the one computation behind a frame's int and noise images, whether they are written
    as SMV files here or stored in a sweep's or batch's one HDF5 file (nbnumba.batch.jobs).  The
    noise stream starts from the run's seed (`-seed`; a sweep's frame i has S + i)."""
    from ..response.model import apply_detector_response

    rp = response_params(sim)
    return rp, apply_detector_response(image, rp)


def _write_response_images(sim: Simulation, image: np.ndarray, say) -> np.ndarray:
    """noisify's int and noise images of `image` (photons/pixel), with its lines; returns the
    counts the detector reports (the noise image, or the int image under -nonoise)."""
    from ..response.lines import noise_lines, noiseless_lines

    p = sim.params
    rp, r = detector_response(sim, image)
    for line in noiseless_lines(rp, r):
        say(line)
    fields = header_fields(sim)
    say(f"writing {p.intfile} as 2-byte integers")
    write_smv(p.intfile, r.int_image, fields, smv_keys(p))
    if p.write_pgm:
        say(f"writing {p.pgmfile} as 1-byte integers")
        write_pgm(p.pgmfile, r.pgm, 1.0)
    if r.noise_image is None:
        return r.int_image
    for line in noise_lines(rp, r):
        say(line)
    say(f"writing {p.noisefile} as 2-byte integers")
    write_smv(p.noisefile, r.noise_image, fields, smv_keys(p))
    return r.noise_image

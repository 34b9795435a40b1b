"""What `nonbragg` prints and writes: the reference's summary lines, statistics and output files
(float image, SMV int and noise images with nonBragg's header, PGM)."""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import __version__
from ..io.atomic import write_files
from ..io.images import float_image_bytes, pgm_bytes, pgm_file
from ..io.smv import cfmt_g
from ..model.nonbragg import NonBragg
from ..model.options import RTD
from ..outputs.images import Stats, _counts, _deviation, _moments
from ..response import rng
from ..runtime import jitcache  # noqa: F401  (the cache folder, before any njit)


def _g(*values) -> str:
    return " ".join(cfmt_g(v) for v in values)


def nonbragg_setup_lines(nb: NonBragg) -> list[str]:
    det, p, sample, src = nb.detector, nb.params, nb.sample, nb.sources
    out = [f"reading {p.imgfile}"] if p.imgfile is not None else []  # nonBragg reads it before its banner
    out.append(f"nbnumba {__version__}: nonBragg-compatible amorphous scattering simulator")
    out.extend(nb.notes)
    out.append("pivoting detector around sample" if det.pivot == "SAMPLE"
               else "pivoting detector around direct beam spot")
    out.append(f"reading {p.stol_file}")
    if p.sourcefile is None:
        out.extend(f"divergence deviation: {_g(h, v)}" for h, v in src.divergence_points)
        out.extend(f"lambda{t} = {lam:.15g}" for t, lam in enumerate(src.wavelength_steps))
    out.append(f"  created a total of {len(nb.source_table)} sources:")
    for row, (x, y, z, _, lam) in zip(nb.source_table, src.listing):
        weight = row[-1]
        out.append(f"{_g(x, y, z)}   {_g(weight, lam)}")
    hrange, hstep, vrange, vstep, ndiv = src.divergence
    disp, _, dsteps = src.dispersion
    out.append(f"  {nb.table.points.shape[1]} initialized F points (will cubic-spline interpolate between them)")
    out.append(f"  wave={cfmt_g(p.lambda0)} meters +/- {cfmt_g(disp * 100)}% in {dsteps} steps")
    out.append("  polarization effect disabled" if p.nopolar else f"  Kahn polarization factor: {p.polarization:f}")
    if p.curved_detector:
        out.append("  curved detector: all pixels same distance from origin")
    if p.point_pixel:
        out.append("  pixel obliquity effect disabled")
    if p.fmap:
        out.append("  Fmap mode: plotting structure factor at every pixel")
    out.append(f"  incident fluence: {cfmt_g(nb.fluence)} photons/m^2")
    out.append(f"  sample is {cfmt_g(sample.thick)} m thick x {cfmt_g(sample.high)} m high x {cfmt_g(sample.wide)} m "
               f"wide, {cfmt_g(sample.density / 1e6)} g/cm^3 and {cfmt_g(sample.molecular_weight)} g/mol "
               f"({cfmt_g(sample.molecules)} molecules)")
    out.append(f"  distance={cfmt_g(det.distance)} detsize={cfmt_g(det.detsize_f)}x{cfmt_g(det.detsize_s)}  "
               f"pixel={cfmt_g(det.pixel_size)} meters ({det.fpixels}x{det.spixels} pixels)")
    out.append(f"  Xbeam={cfmt_g(det.Xbeam)} Ybeam={cfmt_g(det.Ybeam)}")
    out.append(f"  detector origin: {_g(*det.pix0)}")
    out.append(f"  DIRECTION_OF_DETECTOR_X-AXIS= {_g(*det.fdet)}")
    out.append(f"  DIRECTION_OF_DETECTOR_Y-AXIS= {_g(*det.sdet)}")
    out.append(f"  INCIDENT_BEAM_DIRECTION= {_g(*det.beam)}")
    out.append(f"  POLARIZATION_PLANE_NORMAL= {_g(*det.polar_vector)}")
    out.append("  roi: {} < x < {} && {} < y < {}".format(*det.roi))
    out.append(f"  hdivrange={cfmt_g(hrange)} hdivstep={cfmt_g(hstep)}  radians")
    out.append(f"  vdivrange={cfmt_g(vrange)} vdivstep={cfmt_g(vstep)}  radians")
    # the reference counts divergence points only when it generates them
    out.append(f"  {ndiv if p.sourcefile is None else -1} divergence steps")
    out.append(f"  {len(nb.source_table)} sources")
    out.append(f"  {nb.oversample} pixel oversample steps")
    if p.calculate_noise:
        out.append("")
        out.append("  noise image paramters:")
        out.append(f"  seed: {nb.seed}")
    return out


def nonbragg_solid_angle_line(omega_sum: float) -> str:
    return (f"solid angle subtended by detector = {cfmt_g(omega_sum)} steradian "
            f"( {cfmt_g(100 * omega_sum / 4 / math.pi)}% sphere)")


@numba.njit(cache=True, nogil=True)
def _deviation_from_next(image, roi, mean):
    """The reference's rmsd loop: it steps its index before reading, so each ROI pixel stands for
    its right-hand neighbour in scan order (the pixel after the last is 0)."""
    xmin, xmax, ymin, ymax = roi
    spixels, fpixels = image.shape
    flat = image.ravel()
    total = 0.0
    n = 0
    for s in range(max(ymin, 0), min(ymax, spixels - 1) + 1):
        for f in range(max(xmin, 0), min(xmax, fpixels - 1) + 1):
            j = s * fpixels + f + 1
            v = np.float64(flat[j]) if j < flat.size else 0.0
            d = v - mean
            total += d * d
            n += 1
    return total, n


def nonbragg_statistics(nb: NonBragg, image: np.ndarray, count: int | None = None) -> Stats:
    """max, mean, rms and rmsd of the ROI as nonBragg prints them.  `count`: what its mean and rms
    divide by instead of the ROI's pixel count (with -img, the last stol bin's count, which has
    taken over its counter); -fix_stats uses the pixel count."""
    det = nb.detector
    roi = np.array(det.roi, dtype=np.int64)
    fixed = nb.params.fix_stats
    no_mask = np.zeros((1, 1), dtype=np.uint16)
    total, squares, n, best, best_index = _moments(image, roi, no_mask, False, not fixed)
    rendered = n
    if count is not None and not fixed:
        n = count
    max_x = max_y = 0.0
    if best_index >= 0:
        s, f = divmod(best_index, det.fpixels)
        sub = det.pixel_size / nb.oversample
        last = nb.oversample - 1
        max_x = sub * (f * nb.oversample + last) + sub / 2.0
        max_y = sub * (s * nb.oversample + last) + sub / 2.0
    mean = total / max(n, 1)
    rms = math.sqrt(squares / (max(n, 2) - 1))
    deviation, m = (_deviation if fixed else _deviation_from_next)(image, roi, mean)
    rmsd = math.sqrt(deviation / (max(m, 2) - 1))
    return Stats(best, max_x, max_y, mean, rms, rmsd, rendered)


def smv_header(nb: NonBragg) -> bytes:
    """nonBragg's 512-byte SMV header (fewer keys than nanoBragg's)."""
    det, p = nb.detector, nb.params
    g = cfmt_g
    text = ("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
            f"SIZE1={det.fpixels};\nSIZE2={det.spixels};\nPIXEL_SIZE={g(det.pixel_size * 1000.0)};\n"
            f"DISTANCE={g(det.distance * 1000.0)};\nWAVELENGTH={g(p.lambda0 * 1e10)};\n"
            f"BEAM_CENTER_X={g(det.Xbeam * 1000.0)};\nBEAM_CENTER_Y={g((det.detsize_s - det.Ybeam) * 1000)};\n"
            f"ORGX={g(det.Xclose / det.pixel_size)};\nORGY={g(det.Yclose / det.pixel_size)};\n"
            f"CLOSE_DISTANCE={g(det.close_distance * 1000.0)};\n"
            f"PHI={g(p.phi0 * RTD)};\nOSC_START={g(p.phi0 * RTD)};\nOSC_RANGE={g(nb.osc * RTD)};\n"
            f"TWOTHETA={g(p.detector_twotheta * RTD)};\nDETECTOR_SN=000;\nBEAMLINE=fake;\n}}\f")
    return text.encode("ascii").ljust(512, b" ")


def write_nonbragg_outputs(nb: NonBragg, image: np.ndarray, stats: Stats, say, difference: list[str] = (),
                           files: list = ()) -> None:
    """Every output in the reference's order, reporting as it does, written together with `files`
    ((path, *chunks) each: the -img fit's table); `difference`: the -img lines printed after the
    int image (amorphous.img.ImageFit.difference)."""
    p, det = nb.params, nb.detector
    roi = np.array(det.roi, dtype=np.int64)
    files = list(files)
    say(f"writing {p.floatfile} as {det.fpixels * det.spixels} 4-byte floats")
    files.append((p.floatfile, float_image_bytes(p.floatfile, image)))
    say(f"max_I = {cfmt_g(stats.max_I)}  at {_g(stats.max_x, stats.max_y)}")
    say(f"mean= {cfmt_g(stats.mean)} rms= {cfmt_g(stats.rms)} rmsd= {cfmt_g(stats.rmsd)}")
    scale = p.intfile_scale
    if scale <= 0.0:
        scale = 55000.0 / stats.max_I if stats.max_I > 0.0 else 1.0
    say(f"intfile_scale = {cfmt_g(scale)}")
    header = smv_header(nb)
    say(f"writing {p.intfile} as 2-byte integers")
    files.append((p.intfile, header, np.ascontiguousarray(_counts(image, roi, scale, p.adc_offset), dtype="<u2")))
    for line in difference:
        say(line)
    pgm_scale = p.pgm_scale
    if pgm_scale <= 0.0:
        pgm_scale = scale
        if stats.rmsd > 0.0:
            pgm_scale = 250.0 / (5.0 * stats.rmsd)
    say(f"pgm_scale = {cfmt_g(pgm_scale)}")
    if p.write_pgm:
        say(f"writing {p.pgmfile} as 1-byte integers")
        files.append((p.pgmfile, *pgm_file(pgm_bytes(image, pgm_scale, det.roi), pgm_scale)))
    if p.calculate_noise:
        noise, photons, overloads = rng.noise_image(image, roi, p.adc_offset, nb.seed)
        say(f"{photons:.0f} photons on noise image ({overloads} overloads)")
        say(f"writing {p.noisefile} as 2-byte integers")
        files.append((p.noisefile, header, np.ascontiguousarray(noise, dtype="<u2")))
    write_files(files)

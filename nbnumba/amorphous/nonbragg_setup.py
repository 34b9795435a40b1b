"""nonBragg's set-up from its command line: detector, sources, table and sample, in SI units.

nonBragg has no axis conventions: its detector starts from nanoBragg's MOSFLM axes with the beam
centre measured along the fast and slow axes directly, its normal is always fdet x sdet, and it
pivots about the sample or the beam spot as nanoBragg's CUSTOM convention does.  The vector
operations are the shared ones (detector.py: the compiled physics' own functions) and the result
is a `detector.Detector`, which the amorphous kernels take from any command.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..model.beam import Sources, build_sources
from ..model.detector import Detector, cross, dot, orient, rotate_xyz, unit
from ..model.estimate import Estimate, rendered_pixels
from ..model.options import RTD, parse_args
from ..model.sampling import phi_steps
from ..model.simulation import apply_smv_header, check_memory
from .img import check_setup, read_image
from .options import NONBRAGG_FLAGS, NonBraggParams, parse_nonbragg
from .setup import (
    Sample,
    StolTable,
    check_weights,
    read_stol_table,
    render_background,
    sample_in_beam,
    source_rows,
)

DBL_MIN = sys.float_info.min


@dataclass
class NonBragg:
    params: NonBraggParams
    detector: Detector
    sources: Sources
    source_table: np.ndarray
    table: StolTable
    sample: Sample
    fluence: float
    oversample: int
    seed: int
    osc: float
    notes: list
    img: np.ndarray | None = None  # -img: the image's pixels (uint16, slow x fast)

    @property
    def steps(self) -> int:
        return len(self.source_table) * self.oversample * self.oversample


def work(nb: NonBragg) -> Estimate:
    """The render's pixel-steps and expected time (nbnumba.model.estimate), for the progress display."""
    import numba

    p, det = nb.params, nb.detector
    threads = p.nthreads if p.nthreads > 0 else numba.config.NUMBA_NUM_THREADS
    return Estimate(rendered_pixels(det.roi, det.fpixels, det.spixels, None), nb.oversample, 1, len(nb.source_table),
                    1, 1, "cpu" if p.device == "cpu" else "gpu", "double", max(threads, 1), amorphous=True)


def build_detector(p: NonBraggParams) -> Detector:
    if not p.pixel_size > 0:
        raise UserError(f"-pixel must be positive, got {p.pixel_size * 1e3:g} mm")
    detsize_f = p.pixel_size * p.fpixels if p.fpixels else p.detsize_f
    detsize_s = p.pixel_size * p.spixels if p.spixels else p.detsize_s
    fpixels = math.ceil(detsize_f / p.pixel_size)
    spixels = math.ceil(detsize_s / p.pixel_size)
    if fpixels <= 0 or spixels <= 0:
        raise UserError(f"the detector has no pixels ({fpixels} x {spixels}): check -detpixels/-detsize/-pixel")
    pixel = p.pixel_size
    Xclose = p.ORGX * pixel if not math.isnan(p.ORGX) else p.Xclose
    Yclose = p.ORGY * pixel if not math.isnan(p.ORGY) else p.Yclose
    Xclose = (detsize_f - pixel) / 2.0 if math.isnan(Xclose) else Xclose
    Yclose = (detsize_s + pixel) / 2.0 if math.isnan(Yclose) else Yclose
    Xbeam = Xclose if math.isnan(p.Xbeam) else p.Xbeam
    Ybeam = Yclose if math.isnan(p.Ybeam) else p.Ybeam
    roi = list(p.roi) if p.roi is not None else [-1, -1, -1, -1]
    roi = [0 if roi[0] < 0 else roi[0], fpixels if roi[1] < 0 else roi[1],
           0 if roi[2] < 0 else roi[2], spixels if roi[3] < 0 else roi[3]]

    beam = unit(p.beam_vector)[1]
    fdet = unit(p.fdet_vector)[1]
    sdet = unit(p.sdet_vector)[1]
    odet = unit(cross(fdet, sdet))[1]
    polar = unit(p.polar_vector)[1]
    spindle = unit(p.spindle_vector)[1]
    if dot(beam, beam) == 0 or dot(odet, odet) == 0:
        raise UserError("the beam vector must not be zero, and -fdet_vector and -sdet_vector must not be parallel")
    axis = tuple(float(x) for x in p.twotheta_axis)

    ratio = dot(beam, rotate_xyz(odet, p.detector_rotx, p.detector_roty, p.detector_rotz))
    if ratio == 0.0:
        ratio = DBL_MIN
    close_distance = ratio * p.distance if math.isnan(p.close_distance) else p.close_distance
    fdet, sdet, odet, pix0, Xclose, Yclose, close_distance, Xbeam, Ybeam, distance = orient(
        fdet, sdet, odet, beam, axis, p.pivot, p, Xbeam, Ybeam, Xclose, Yclose, close_distance, ratio)
    if not np.all(np.isfinite(pix0)) or close_distance == 0.0:
        raise UserError("degenerate detector geometry: the detector plane contains the sample "
                        "(check -distance, the detector vectors and rotations)")
    return Detector("NONBRAGG", p.pivot, fpixels, spixels, pixel, detsize_f, detsize_s, fdet, sdet, odet, beam,
                    polar, spindle, axis, pix0=pix0, distance=distance, close_distance=close_distance, ratio=ratio,
                    Xbeam=Xbeam, Ybeam=Ybeam, Fbeam=Xbeam, Sbeam=Ybeam, Xclose=Xclose, Yclose=Yclose,
                    Fclose=Xclose, Sclose=Yclose, ORGX=Xclose / pixel, ORGY=Yclose / pixel, roi=tuple(roi))


def _sources(p: NonBraggParams, det: Detector) -> tuple[Sources, np.ndarray]:
    sources = build_sources(p, det.beam, det.polar_vector, p.lambda0)
    if len(sources.wavelengths) == 0:
        raise UserError("no X-ray source to render with")
    weights = 1.0
    if p.sourcefile is not None:
        weights = [row[3] for row in sources.listing]
        check_weights(p.sourcefile, weights)
    return sources, source_rows(sources, det.polar_vector, weights)


def parse_with_image(argv: list[str]) -> tuple[NonBraggParams, np.ndarray | None]:
    """The flags over nonBragg's defaults, or over an -img header's values when one is given
    (nonBragg reads the image first, so flags win over its header)."""
    p = parse_nonbragg(argv)
    if p.imgfile is None:
        if p.stolout_file is not None:
            raise UserError("-stolout needs -img: the table is fitted to an SMV image")
        return p, None
    smv = read_image(p.imgfile)
    base = NonBraggParams()
    apply_smv_header(base, smv, beam_y_from_top=True)  # TWOTHETA is not read, as in nonBragg
    return parse_args(argv, base, NONBRAGG_FLAGS), smv.data


def build(argv: list[str]) -> NonBragg:
    p, img = parse_with_image(argv)
    if p.stol_file is None:
        raise UserError("no amorphous scattering table: give -stol FILE (or -4stol, -Q); "
                        "`nbnumba nonbragg --flags` lists the flags")
    if not (p.lambda0 > 0):
        raise UserError(f"the wavelength must be positive, got {p.lambda0 * 1e10:g} A")
    if p.oversample > 100:
        raise UserError(f"-oversample {p.oversample} is too large (at most 100)")
    det = build_detector(p)
    check_memory(det)
    fluence = p.fluence
    if p.flux != 0.0 and p.exposure > 0.0 and p.beamsize >= 0:
        fluence = p.flux * p.exposure / p.beamsize / p.beamsize
    if not (math.isfinite(fluence) and fluence >= 0):
        raise UserError(f"the fluence must be a non-negative number, got {fluence:g} (check -flux/-beamsize)")
    sample, notes = sample_in_beam(p.sample_x, p.sample_y, p.sample_z, p.density, p.molecular_weight,
                                   p.molecules, p.beamsize)
    if img is not None:
        check_setup(p, det, img, fluence, sample.molecules)
    table = read_stol_table(p.stol_file, p.stol_file_mult)
    sources, rows = _sources(p, det)
    _, osc, _ = phi_steps(p.phisteps, p.osc, p.phistep, RTD)
    seed = p.seed if p.seed is not None else -int(time.time())
    oversample = 1 if p.oversample <= 0 else p.oversample
    return NonBragg(p, det, sources, rows, table, sample, fluence, oversample, seed, osc, notes, img)


def background(nb: NonBragg, device: str | None = None, progress: bool = False, last: bool | None = None):
    """The rendered image; with -img (or `last`) also each pixel's last sin(theta)/lambda,
    polarization and solid angle (`Background.last`), which the fit needs."""
    p = nb.params
    return render_background(nb.detector, nb.source_table, nb.table, nb.oversample, device=device or p.device,
                             progress=progress, last=nb.img is not None if last is None else last,
                             molecules=nb.sample.molecules, fluence=nb.fluence, kahn=p.polarization,
                             nopolar=p.nopolar, curved=p.curved_detector, point_pixel=p.point_pixel,
                             fix_spline=p.fix_spline, fmap=p.fmap)

"""Detector geometry: conventions, beam centres, pivots, rotations and the derived origins."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..physics.host import host64 as P
from .params import Params

DBL_MIN = sys.float_info.min

# (beam, fdet, sdet, odet, twotheta axis, polarization, spindle) of the named conventions
CONVENTION_VECTORS = {
    "ADXV": ((0, 0, 1), (1, 0, 0), (0, -1, 0), (0, 0, 1), (-1, 0, 0), (1, 0, 0), (1, 0, 0)),
    "MOSFLM": ((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 0, -1), (0, 0, 1), (0, 0, 1)),
    "DENZO": ((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 0, -1), (0, 0, 1), (0, 0, 1)),
    "XDS": ((0, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 0), (1, 0, 0), (1, 0, 0)),
    "DIALS": ((0, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 0), (0, 1, 0), (0, 1, 0)),
}


def unit(v) -> tuple[float, tuple[float, float, float]]:
    mag, x, y, z = P.unitize3(float(v[0]), float(v[1]), float(v[2]))
    return mag, (x, y, z)


def dot(a, b) -> float:
    return P.dot3(a[0], a[1], a[2], b[0], b[1], b[2])


def cross(a, b) -> tuple[float, float, float]:
    return P.cross3(a[0], a[1], a[2], b[0], b[1], b[2])


def rotate_xyz(v, rx: float, ry: float, rz: float):
    return P.rotate_xyz3(float(v[0]), float(v[1]), float(v[2]), rx, ry, rz)


def rotate_axis(v, axis, angle: float):
    return P.rotate_axis3(float(v[0]), float(v[1]), float(v[2]),
                          float(axis[0]), float(axis[1]), float(axis[2]), angle)


@dataclass
class Detector:
    convention: str
    pivot: str
    fpixels: int
    spixels: int
    pixel_size: float
    detsize_f: float
    detsize_s: float
    fdet: tuple
    sdet: tuple
    odet: tuple
    beam: tuple
    polar_vector: tuple
    spindle: tuple
    twotheta_axis: tuple
    pix0: tuple = (0.0, 0.0, 0.0)
    distance: float = 0.0
    close_distance: float = 0.0
    ratio: float = 1.0
    Xbeam: float = 0.0
    Ybeam: float = 0.0
    Fbeam: float = 0.0
    Sbeam: float = 0.0
    Xclose: float = 0.0
    Yclose: float = 0.0
    Fclose: float = 0.0
    Sclose: float = 0.0
    ORGX: float = 0.0
    ORGY: float = 0.0
    dials_origin: tuple = (0.0, 0.0, 0.0)
    roi: tuple = (0, 0, 0, 0)
    warnings: list = field(default_factory=list)

    def __setattr__(self, name, value):
        super().__setattr__(name, plain(value))


def plain(value):
    """A tuple of Python floats and ints instead of NumPy scalars (anything else as it is), so that
    a user who prints `sim.detector.pix0` reads `(0.1, ...)`, not `(np.float64(0.1), ...)`."""
    if isinstance(value, tuple):
        return tuple(v.item() if isinstance(v, np.generic) else v for v in value)
    return value


def _validate(p: Params) -> None:
    if not p.pixel_size > 0:
        raise UserError(f"-pixel must be positive, got {p.pixel_size * 1e3:g} mm")
    if p.fpixels < 0 or p.spixels < 0:
        raise UserError("-detpixels must be positive")
    if not (p.detsize_f > 0 and p.detsize_s > 0):
        raise UserError("-detsize must be positive")


def build_detector(p: Params) -> Detector:
    """The reference's detector set-up, step for step (see REFERENCE.md for its pivot rules)."""
    _validate(p)
    detsize_f, detsize_s = p.detsize_f, p.detsize_s
    if p.fpixels:
        detsize_f = p.pixel_size * p.fpixels
    if p.spixels:
        detsize_s = p.pixel_size * p.spixels
    fpixels = math.ceil(detsize_f / p.pixel_size - 0.5)
    spixels = math.ceil(detsize_s / p.pixel_size - 0.5)
    if fpixels <= 0 or spixels <= 0:
        raise UserError(f"the detector has no pixels ({fpixels} x {spixels}): check -detpixels/-detsize/-pixel")

    pixel = p.pixel_size
    Fclose = (p.ORGX - 0.5) * pixel if not math.isnan(p.ORGX) else math.nan
    Sclose = (p.ORGY - 0.5) * pixel if not math.isnan(p.ORGY) else math.nan
    if math.isnan(Fclose):
        Fclose = (detsize_f - 0 * pixel) / 2.0
    if math.isnan(Sclose):
        Sclose = (detsize_s + 0 * pixel) / 2.0
    Xclose = Fclose if math.isnan(p.Xclose) else p.Xclose
    Yclose = Sclose if math.isnan(p.Yclose) else p.Yclose
    Fbeam, Sbeam = Fclose, Sclose
    Xbeam, Ybeam = p.Xbeam, p.Ybeam
    pivot = p.pivot

    roi = list(p.roi) if p.roi is not None else [-1, -1, -1, -1]
    roi[0] = 0 if roi[0] < 0 else roi[0]
    roi[1] = fpixels if roi[1] < 0 else roi[1]
    roi[2] = 0 if roi[2] < 0 else roi[2]
    roi[3] = spixels if roi[3] < 0 else roi[3]

    beam, fdet, sdet, odet = p.beam_vector, p.fdet_vector, p.sdet_vector, p.odet_vector
    twotheta_axis, polar_vector, spindle = p.twotheta_axis, p.polar_vector, p.spindle_vector
    conv = p.convention
    if conv in CONVENTION_VECTORS:
        beam, fdet, sdet, odet, twotheta_axis, polar_vector, spindle = CONVENTION_VECTORS[conv]
    if conv == "ADXV":
        Xbeam = (detsize_f + pixel) / 2.0 if math.isnan(Xbeam) else Xbeam
        Ybeam = (detsize_s - pixel) / 2.0 if math.isnan(Ybeam) else Ybeam
        Fbeam, Sbeam, pivot = Xbeam, detsize_s - Ybeam, "BEAM"
    elif conv in ("MOSFLM", "DENZO"):
        Xbeam = (detsize_s + pixel) / 2.0 if math.isnan(Xbeam) else Xbeam
        Ybeam = (detsize_f + pixel) / 2.0 if math.isnan(Ybeam) else Ybeam
        shift = 0.5 if conv == "MOSFLM" else 0.0
        Fbeam, Sbeam, pivot = Ybeam + shift * pixel, Xbeam + shift * pixel, "BEAM"
    elif conv in ("XDS", "DIALS"):
        Xbeam = Xclose if math.isnan(Xbeam) else Xbeam
        Ybeam = Yclose if math.isnan(Ybeam) else Ybeam
        Fbeam, Sbeam, pivot = Xbeam, Ybeam, "SAMPLE"
    else:
        Xbeam = Xclose if math.isnan(Xbeam) else Xbeam
        Ybeam = Yclose if math.isnan(Ybeam) else Ybeam
        Fbeam, Sbeam, Fclose, Sclose = Xbeam, Ybeam, Xbeam, Ybeam

    warnings = []
    _, beam = unit(beam)
    _, fdet = unit(fdet)
    _, sdet = unit(sdet)
    mag, odet = unit(odet)
    if mag != 1.0:
        warnings.append("WARNING: auto-generating odet_vector")
        _, odet = unit(cross(fdet, sdet))
    _, polar_vector = unit(polar_vector)
    _, spindle = unit(spindle)
    if dot(fdet, fdet) == 0 or dot(sdet, sdet) == 0 or dot(beam, beam) == 0:
        raise UserError("detector and beam vectors must not be zero")

    det = Detector(conv, pivot, fpixels, spixels, pixel, detsize_f, detsize_s, fdet, sdet, odet, beam,
                   polar_vector, spindle, tuple(float(x) for x in twotheta_axis), roi=tuple(roi),
                   warnings=warnings, Xbeam=Xbeam, Ybeam=Ybeam, Xclose=Xclose, Yclose=Yclose)
    _place(det, p, Fbeam, Sbeam, Fclose, Sclose)
    return det


def _place(det: Detector, p: Params, Fbeam: float, Sbeam: float, Fclose: float, Sclose: float) -> None:
    """Rotate the detector and put its origin where the pivot says; derive the other origins."""
    ratio = dot(det.beam, rotate_xyz(det.odet, p.detector_rotx, p.detector_roty, p.detector_rotz))
    if ratio == 0.0:
        ratio = DBL_MIN
    close_distance = p.close_distance
    if math.isnan(close_distance):
        close_distance = abs(ratio * p.distance)
    (det.fdet, det.sdet, det.odet, det.pix0, det.Fclose, det.Sclose, det.close_distance, det.Fbeam, det.Sbeam,
     det.distance) = orient(det.fdet, det.sdet, det.odet, det.beam, det.twotheta_axis, det.pivot, p, Fbeam, Sbeam,
                            Fclose, Sclose, close_distance, ratio)
    det.ratio = ratio
    det.ORGX = det.Fclose / det.pixel_size + 0.5
    det.ORGY = det.Sclose / det.pixel_size + 0.5
    det.dials_origin = (1000.0 * dot(det.pix0, (0.0, 0.0, 1.0)), 1000.0 * dot(det.pix0, (0.0, 1.0, 0.0)),
                        1000.0 * dot(det.pix0, (-1.0, 0.0, 0.0)))
    if not np.all(np.isfinite(det.pix0)) or det.close_distance == 0.0:
        raise UserError("degenerate detector geometry: the detector plane contains the sample "
                        "(check -distance, the detector vectors and rotations)")


def orient(fdet, sdet, odet, beam, axis, pivot: str, p: Params, Fbeam: float, Sbeam: float, Fclose: float,
           Sclose: float, close_distance: float, ratio: float):
    """The detector rotated (-detector_rot*, then -twotheta about `axis`) with its origin pix0 put
    where the pivot says (or at -pix0_vector with -fix_pix0); then the origins and distances that
    follow from it: (fdet, sdet, odet, pix0, Fclose, Sclose, close_distance, Fbeam, Sbeam, distance).
    nanoBragg's and nonBragg's detectors both come from here."""
    rx, ry, rz, twotheta = p.detector_rotx, p.detector_roty, p.detector_rotz, p.detector_twotheta
    distance = close_distance / ratio
    pix0 = (0.0, 0.0, 0.0)
    if pivot == "SAMPLE":
        pix0 = tuple(-Fclose * fdet[i] - Sclose * sdet[i] + close_distance * odet[i] for i in range(3))
        pix0 = rotate_axis(rotate_xyz(pix0, rx, ry, rz), axis, twotheta)
    fdet = rotate_axis(rotate_xyz(fdet, rx, ry, rz), axis, twotheta)
    sdet = rotate_axis(rotate_xyz(sdet, rx, ry, rz), axis, twotheta)
    odet = rotate_axis(rotate_xyz(odet, rx, ry, rz), axis, twotheta)
    if pivot == "BEAM":
        pix0 = tuple(-Fbeam * fdet[i] - Sbeam * sdet[i] + distance * beam[i] for i in range(3))
    if p.fix_pix0 and p.pix0_user is not None:
        pix0 = tuple(p.pix0_user)
    Fclose, Sclose, close_distance = -dot(pix0, fdet), -dot(pix0, sdet), dot(pix0, odet)
    toward = tuple(close_distance / ratio * beam[i] - pix0[i] for i in range(3))
    return fdet, sdet, odet, pix0, Fclose, Sclose, close_distance, dot(fdet, toward), dot(sdet, toward), \
        close_distance / ratio

"""SMV (ADSC) images: the reference's 512-byte text header followed by unsigned 16-bit pixels."""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .atomic import atomic_write_bytes
from .reading import read_bytes
from .textcolumns import c_atof

HEADER_BYTES = 512


def cfmt_g(x: float) -> str:
    """``x`` formatted exactly as C ``printf("%g")`` (glibc) formats it."""
    # Python's %g already follows C for finite values and infinities; only the sign of a
    # NaN, which glibc prints, is lost.
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    return "%g" % x


@dataclass
class SMVImage:
    header: str  # header_size bytes as text, cut at the first NUL like the C string it was
    header_size: int
    width: int  # SIZE1, the fast axis
    height: int  # SIZE2, the slow axis
    data: np.ndarray  # uint16, shape (height, width)


@dataclass(frozen=True)
class SMVFields:
    """Values written into an SMV header, in the units of the header keys.

    Each attribute feeds the header key of the same name: lengths in mm, angles in degrees,
    ``wavelength_A`` in Angstrom, ``xds_orgx``/``xds_orgy`` in pixels and ``dials_origin_mm``
    the three components of ``DIALS_ORIGIN``.  The caller computes them exactly as the
    reference does (e.g. ``MOSFLM_CENTER_X = (Sbeam - 0.5*pixel)*1000``); this module only
    formats them.
    """

    pixel_size_mm: float
    distance_mm: float
    wavelength_A: float
    beam_center_x_mm: float
    beam_center_y_mm: float
    adxv_center_x_mm: float
    adxv_center_y_mm: float
    mosflm_center_x_mm: float
    mosflm_center_y_mm: float
    denzo_x_beam_mm: float
    denzo_y_beam_mm: float
    dials_origin_mm: tuple[float, float, float]
    xds_orgx: float
    xds_orgy: float
    close_distance_mm: float
    phi_deg: float
    osc_start_deg: float
    osc_range_deg: float
    twotheta_deg: float


def smv_value(header_text: str, key: str) -> float:
    """The number after the last occurrence of ``key`` (as a substring) and the next ``=``.

    Follows the reference's ValueOf: NaN when ``key`` does not occur, 0.0 when no ``=``
    or no number follows.  Substring matching is deliberate: ``DISTANCE`` finds the later
    ``CLOSE_DISTANCE`` and ``ORGX`` finds ``XDS_ORGX``, as in the reference.
    """
    header_text = header_text.split("\0", 1)[0]
    found = -1
    start = 0
    while (at := header_text.find(key, start)) != -1:
        found = at
        start = at + len(key)
    if found < 0:
        return math.nan
    equals = header_text.find("=", found + len(key))
    if equals < 0:
        return 0.0
    return c_atof(header_text[equals + 1 :])


def _positive_int(value: float) -> int | None:
    if not math.isfinite(value) or int(value) <= 0:
        return None
    return int(value)


def _header_text(raw: bytes, size: int) -> str:
    return raw[:size].split(b"\0", 1)[0].decode("latin-1")


def _image_size(path, header: str) -> tuple[int, int]:
    width = smv_value(header, "SIZE1")
    height = smv_value(header, "SIZE2")
    if math.isnan(width) or width == 0:
        # Other detector headers give one square size instead.
        width = height = smv_value(header, "DETECTOR_DIMENSIONS")
    size = (_positive_int(width), _positive_int(height))
    if None in size:
        raise UserError(f"{path}: SMV header lacks a positive SIZE1 and SIZE2")
    return size


def read_smv(path) -> SMVImage:
    raw = read_bytes(path)
    if len(raw) < HEADER_BYTES:
        raise UserError(f"{path}: not an SMV image: only {len(raw)} bytes, shorter than a 512-byte header")
    first = _header_text(raw, HEADER_BYTES)
    header_size = _positive_int(smv_value(first, "HEADER_BYTES"))
    if not first.startswith("{"):
        raise UserError(f"{path}: not an SMV image: it does not start with '{{'")
    if header_size is None:
        raise UserError(f"{path}: not an SMV image: no positive HEADER_BYTES in its header")
    header = _header_text(raw, header_size)
    width, height = _image_size(path, header)
    needed = header_size + 2 * width * height
    if len(raw) < needed:
        raise UserError(
            f"{path}: truncated SMV image: {width}x{height} pixels after a {header_size}-byte header "
            f"need {needed} bytes, the file has {len(raw)}"
        )
    # The reference swaps unless the last BYTE_ORDER matches this (little-endian) machine.
    order_at = header.rfind("BYTE_ORDER=")
    swap = order_at >= 0 and not header.startswith("little_end", order_at + len("BYTE_ORDER="))
    pixels = np.frombuffer(raw, dtype=">u2" if swap else "<u2", count=width * height, offset=header_size)
    data = pixels.astype(np.uint16).reshape(height, width)
    return SMVImage(header=header, header_size=header_size, width=width, height=height, data=data)


def smv_header(width: int, height: int, fields: SMVFields, path="SMV image", extra=()) -> bytes:
    """The reference's SMV header, key for key: 512 bytes, or the next multiple of 512 when the
    values do not fit (the reference then writes a header longer than the HEADER_BYTES it
    declares, which no reader can open).  `extra`: (KEY, value) pairs after the reference's keys."""
    g = cfmt_g
    f = fields
    ox, oy, oz = f.dials_origin_mm
    text = (
        "{\nHEADER_BYTES=%d;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
        f"SIZE1={width};\nSIZE2={height};\n"
        f"PIXEL_SIZE={g(f.pixel_size_mm)};\nDISTANCE={g(f.distance_mm)};\n"
        f"WAVELENGTH={g(f.wavelength_A)};\n"
        f"BEAM_CENTER_X={g(f.beam_center_x_mm)};\nBEAM_CENTER_Y={g(f.beam_center_y_mm)};\n"
        f"ADXV_CENTER_X={g(f.adxv_center_x_mm)};\nADXV_CENTER_Y={g(f.adxv_center_y_mm)};\n"
        f"MOSFLM_CENTER_X={g(f.mosflm_center_x_mm)};\nMOSFLM_CENTER_Y={g(f.mosflm_center_y_mm)};\n"
        f"DENZO_X_BEAM={g(f.denzo_x_beam_mm)};\nDENZO_Y_BEAM={g(f.denzo_y_beam_mm)};\n"
        f"DIALS_ORIGIN={g(ox)},{g(oy)},{g(oz)}\n"
        f"XDS_ORGX={g(f.xds_orgx)};\nXDS_ORGY={g(f.xds_orgy)};\n"
        f"CLOSE_DISTANCE={g(f.close_distance_mm)};\n"
        f"PHI={g(f.phi_deg)};\nOSC_START={g(f.osc_start_deg)};\nOSC_RANGE={g(f.osc_range_deg)};\n"
        f"TWOTHETA={g(f.twotheta_deg)};\n"
        + "".join(f"{key}={g(value)};\n" for key, value in extra)
        + "DETECTOR_SN=000;\nBEAMLINE=fake;\n}\f"
    )
    size = HEADER_BYTES
    while len((text % size).encode("ascii")) > size:
        size += HEADER_BYTES
    return (text % size).encode("ascii").ljust(size, b" ")


def write_smv(path, image: np.ndarray, fields: SMVFields | Mapping, extra=()) -> None:
    """Write ``image`` (uint16, shape (slow, fast)) as an SMV file with the reference's header.

    ``fields`` may also be a mapping of the :class:`SMVFields` names, optionally with
    ``size1``/``size2``, which must then agree with the image.
    """
    if image.ndim != 2 or image.dtype != np.uint16:
        raise TypeError(f"SMV image must be a 2-D uint16 array, got {image.ndim}-D {image.dtype}")
    height, width = image.shape
    if isinstance(fields, Mapping):
        values = dict(fields)
        sizes = (values.pop("size1", width), values.pop("size2", height))
        if sizes != (width, height):
            raise ValueError(f"SIZE1, SIZE2 = {sizes} but the image is {width}x{height}")
        fields = SMVFields(**values)
    atomic_write_bytes(path, smv_header(width, height, fields, path, extra), np.ascontiguousarray(image, dtype="<u2"))

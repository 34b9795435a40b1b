"""noisify's files: the float image it reads, the SMV header it may import, the SMV images it
writes (its own short header, or the imported one copied byte for byte)."""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io.atomic import atomic_write_bytes
from ..io.reading import read_bytes
from ..io.smv import HEADER_BYTES, cfmt_g, smv_value

# the reference recognises an SMV file by these first 12 characters
SMV_MAGIC = "{\nHEADER_BYT"


def read_float_bytes(path) -> bytes:
    """The raw contents of a float image (a ``.gz`` file is decompressed)."""
    if Path(path).suffix.lower() != ".gz":
        return read_bytes(path)
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def float_image(data: bytes, width: int, height: int) -> np.ndarray:
    """The first width x height little-endian float32 values as a read-only
    (slow, fast) image."""
    return np.frombuffer(data, dtype="<f4", count=width * height).reshape(height, width)


@dataclass(frozen=True)
class ImportedHeader:
    path: str
    raw: bytes  # the header's bytes, copied into every output
    text: str
    width: int
    height: int

    def value(self, key: str) -> float:
        return smv_value(self.text, key)


def _size(value: float) -> int | None:
    return int(value) if math.isfinite(value) and int(value) > 0 else None


def read_header(path) -> ImportedHeader:
    """An SMV file's header, checked as far as noisify needs it (the pixels may be absent)."""
    raw = read_bytes(path)
    if len(raw) < HEADER_BYTES or not raw.startswith(SMV_MAGIC.encode()):
        raise UserError(f"{path}: not an SMV image (it must start with a 512-byte '{{ HEADER_BYTES=' header)")
    first = raw[:HEADER_BYTES].split(b"\0", 1)[0].decode("latin-1")
    size = _size(smv_value(first, "HEADER_BYTES"))
    if size is None:
        raise UserError(f"{path}: SMV header has no positive HEADER_BYTES")
    if len(raw) < size:
        raise UserError(f"{path}: SMV header declares {size} bytes, the file has {len(raw)}")
    text = raw[:size].split(b"\0", 1)[0].decode("latin-1")
    width, height = _size(smv_value(text, "SIZE1")), _size(smv_value(text, "SIZE2"))
    if width is None:
        # other detectors give one square size instead
        width = height = _size(smv_value(text, "DETECTOR_DIMENSIONS"))
    if width is None or height is None:
        raise UserError(f"{path}: SMV header lacks a positive SIZE1 and SIZE2")
    return ImportedHeader(path=str(path), raw=raw[:size], text=text, width=width, height=height)


def _set_key(header: bytes, key: bytes, value: bytes) -> bytes:
    # the value of the last KEY= (the one a reader believes) up to its ';', or a new key line
    # before the closing brace
    at = header.rfind(key + b"=")
    if at < 0:
        close = header.rfind(b"}")
        return header[:close] + key + b"=" + value + b";\n" + header[close:]
    start = at + len(key) + 1
    end = header.find(b";", start)
    end = len(header) if end < 0 else end
    return header[:start] + value + header[end:]


def retyped_header(header: ImportedHeader, bits: int) -> bytes:
    """The imported header with TYPE and BYTE_ORDER describing the pixels written, at its size:
    padding (spaces, NULs) after the closing brace absorbs the change."""
    raw = _set_key(header.raw, b"TYPE", b"unsigned_short" if bits == 16 else b"long_integer")
    raw = _set_key(raw, b"BYTE_ORDER", b"little_endian")
    size = len(header.raw)
    if len(raw) > size:
        if raw[size:].strip(b" \0"):
            raise UserError(f"{header.path}: no room in its {size}-byte header for TYPE and BYTE_ORDER")
        return raw[:size]
    return raw.ljust(size, b" ")


def noisify_header(width: int, height: int, bits: int, pixel_mm: float, distance_mm: float,
                   wavelength_A: float, beam_x_mm: float, beam_y_mm: float, phi_deg: float,
                   osc_deg: float) -> bytes:
    """noisify's own SMV header: 512 bytes padded with spaces (1024 if the values need more)."""
    g = cfmt_g
    text = ("{\nHEADER_BYTES=%d;\nDIM=2;\nBYTE_ORDER=little_endian;\n"
            f"TYPE={'unsigned_short' if bits == 16 else 'long_integer'};\n"
            f"SIZE1={width};\nSIZE2={height};\nPIXEL_SIZE={g(pixel_mm)};\nDISTANCE={g(distance_mm)};\n"
            f"WAVELENGTH={g(wavelength_A)};\nBEAM_CENTER_X={g(beam_x_mm)};\nBEAM_CENTER_Y={g(beam_y_mm)};\n"
            f"PHI={g(phi_deg)};\nOSC_START={g(phi_deg)};\nOSC_RANGE={g(osc_deg)};\n"
            "DETECTOR_SN=000;\nBEAMLINE=fake;\n}\f")
    size = HEADER_BYTES
    while len((text % size).encode("ascii")) > size:
        size += HEADER_BYTES
    return (text % size).encode("ascii").ljust(size, b" ")


def write_counts(path, header: bytes, image: np.ndarray) -> None:
    """An SMV file: ``header`` then the uint16 or uint32 pixels, little-endian."""
    dtype = {np.dtype(np.uint16): "<u2", np.dtype(np.uint32): "<u4"}[image.dtype]
    atomic_write_bytes(path, header, np.ascontiguousarray(image, dtype=dtype))

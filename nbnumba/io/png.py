"""A small PNG writer (8-bit grey or RGB) and colour maps for previews of float images.

Written with zlib and struct only, so that previews need no imaging library.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from .atomic import atomic_write_bytes

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 3: 2}  # channels -> PNG colour type (0 grey, 2 RGB)


def _chunk(kind: bytes, data: bytes) -> bytes:
    # The CRC covers the chunk type as well as its data.
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG file contents for a uint8 array of shape (height, width) or (height, width, 3)."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise TypeError(f"PNG pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in _COLOR_TYPES:
        raise ValueError(f"PNG pixels must be (h, w) or (h, w, 3), got shape {pixels.shape}")
    height, width, channels = pixels.shape
    if height == 0 or width == 0:
        raise ValueError("PNG image must have at least one pixel")
    # Every scanline starts with filter type 0 (none): simple, and zlib still compresses well.
    rows = np.zeros((height, 1 + width * channels), dtype=np.uint8)
    rows[:, 1:] = np.ascontiguousarray(pixels).reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    return (SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + _chunk(b"IEND", b""))


def write_png(path, pixels: np.ndarray) -> None:
    atomic_write_bytes(path, png_bytes(pixels))


def grey(image: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """uint8 (h, w, 3): vmin and below black, vmax and above white, linear between."""
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip((np.nan_to_num(np.asarray(image, dtype=np.float64), nan=vmin) - vmin) / span, 0.0, 1.0)
    level = np.round(t * 255.0).astype(np.uint8)
    return np.repeat(level[:, :, None], 3, axis=2)


def diverging(image: np.ndarray, limit: float) -> np.ndarray:
    """uint8 (h, w, 3): -limit blue, 0 white, +limit red, so the sign of a difference shows."""
    limit = limit if limit > 0 else 1.0
    t = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64)) / limit, -1.0, 1.0)
    fade = np.round((1.0 - np.abs(t)) * 255.0).astype(np.uint8)
    full = np.full(t.shape, 255, dtype=np.uint8)
    neg = t < 0
    red = np.where(neg, fade, full)
    blue = np.where(neg, full, fade)
    return np.stack([red, fade, blue], axis=2)


def colorize(image: np.ndarray, kind: str = "grey", vmin: float | None = None,
             vmax: float | None = None) -> np.ndarray:
    """RGB uint8 pixels for a float image: ``grey`` between vmin and vmax (default: its own
    0.5th and 99.5th percentiles), or ``diverging`` symmetric about 0 with limit vmax
    (default: the largest |value|)."""
    data = np.asarray(image, dtype=np.float64)
    finite = data[np.isfinite(data)]
    if kind == "grey":
        if vmin is None:
            vmin = float(np.percentile(finite, 0.5)) if finite.size else 0.0
        if vmax is None:
            vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        return grey(data, vmin, vmax)
    if kind == "diverging":
        if vmax is None:
            vmax = float(np.abs(finite).max()) if finite.size else 1.0
        return diverging(data, vmax)
    raise ValueError(f"unknown colour map {kind!r}")

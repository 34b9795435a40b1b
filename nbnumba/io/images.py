"""Raw float images (``-floatfile``), float TIFFs and 8-bit PGM previews."""

import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserError
from .atomic import atomic_write_bytes
from .smv import cfmt_g

_TIFF_SUFFIXES = (".tif", ".tiff")


def _is_tiff(path) -> bool:
    return Path(path).suffix.lower() in _TIFF_SUFFIXES


def float_image_bytes(path, image: np.ndarray):
    """A (slow, fast) image as float32, as `path` holds it: a TIFF for ``.tif``/``.tiff``, else raw
    little-endian values with the fast index varying fastest, as the reference writes them."""
    if image.ndim != 2:
        raise TypeError(f"float image must be 2-D, got {image.ndim}-D")
    pixels = np.ascontiguousarray(image, dtype="<f4")
    if not _is_tiff(path):
        return pixels
    import tifffile  # here, not at the top: it takes 50 ms to import and most runs write no TIFF

    # tifffile cannot write to a file object opened from a descriptor, so encode in memory.
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels)
    return buffer.getvalue()


def write_float_image(path, image: np.ndarray) -> None:
    atomic_write_bytes(path, float_image_bytes(path, image))


def read_float_image(path, shape: tuple[int, int]) -> np.ndarray:
    """A float32 image of ``shape`` (slow, fast) from a raw ``.bin`` (optionally ``.gz``) or TIFF file."""
    try:
        if _is_tiff(path):
            import tifffile

            image = tifffile.imread(path)
            if image.ndim != 2:
                raise UserError(f"{path}: no 2-D image in it")
            if image.shape != tuple(shape):
                raise UserError(f"{path}: image is {image.shape[::-1]} pixels (fast, slow), expected {tuple(shape)[::-1]}")
            return image.astype(np.float32)
        opener = gzip.open if Path(path).suffix.lower() == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error, ValueError) as e:
        raise UserError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    expected = 4 * shape[0] * shape[1]
    if len(data) != expected:
        raise UserError(f"{path}: {len(data)} bytes, a {shape[1]}x{shape[0]} float image has {expected}")
    return np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(shape)


def pgm_bytes(float_image: np.ndarray, pgm_scale: float, roi: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The reference's 8-bit preview: ``(unsigned char) min(255, pixel*pgm_scale)``.

    ``roi`` is (xmin, xmax, ymin, ymax), inclusive, in (fast, slow) pixels; outside it the
    bytes stay 0.  The product is formed in double precision as in the reference, and the
    conversion truncates toward zero; negative products wrap modulo 256 and NaN gives 0,
    as the reference's x86 conversion does.
    """
    scaled = np.minimum(float_image.astype(np.float64) * pgm_scale, 255.0)
    scaled = np.nan_to_num(np.trunc(scaled), nan=0.0, neginf=0.0)
    converted = (scaled.astype(np.int64) & 0xFF).astype(np.uint8)
    if roi is None:
        return converted
    xmin, xmax, ymin, ymax = roi
    out = np.zeros_like(converted)
    rows = slice(max(ymin, 0), ymax + 1)
    cols = slice(max(xmin, 0), xmax + 1)
    out[rows, cols] = converted[rows, cols]
    return out


def pgm_file(image: np.ndarray, pgm_scale: float) -> tuple[bytes, np.ndarray]:
    """8-bit (slow, fast) ``image`` as a binary PGM: the reference's header, then the pixels."""
    if image.ndim != 2 or image.dtype != np.uint8:
        raise TypeError(f"PGM image must be a 2-D uint8 array, got {image.ndim}-D {image.dtype}")
    height, width = image.shape
    header = f"P5\n{width} {height}\n# pixels scaled by {cfmt_g(pgm_scale)}\n255\n".encode("ascii")
    return header, np.ascontiguousarray(image)


def write_pgm(path, image: np.ndarray, pgm_scale: float) -> None:
    atomic_write_bytes(path, *pgm_file(image, pgm_scale))

"""Any detector image as float64 (slow, fast): raw float32 (``.bin``, optionally ``.gz``; the shape
given or, failing that, a square), float TIFF, SMV (``.img``) or one frame of an HDF5/NeXus file."""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .images import read_float_image
from .smv import read_smv


@dataclass
class Loaded:
    image: np.ndarray  # float64, (slow, fast)
    kind: str


def _raw_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def _looks_like_smv(path: Path) -> bool:
    if path.suffix.lower() in (".img", ".smv"):
        return True
    if path.suffix.lower() in (".gz", ".tif", ".tiff"):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    return head.startswith(b"{") and b"HEADER_BYTES=" in head


def _is_hdf5(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def load_image(path, shape: tuple[int, int] | None = None, frame: int = 1) -> Loaded:
    """An image as float64 (slow, fast); ``shape`` is (slow, fast) and is needed only for raw
    files that are not square; ``frame`` (from 1) picks one image of an HDF5/NeXus file."""
    path = Path(path)
    if shape is not None and (len(shape) != 2 or min(shape) <= 0):
        raise UserError(f"--shape needs two positive sizes (slow fast), got {' '.join(map(str, shape))}")
    if _is_hdf5(path):
        from .nexus import read_frame
        if frame < 1:
            raise UserError(f"--frame counts from 1, got {frame}")
        return Loaded(read_frame(str(path), frame - 1).astype(np.float64), "hdf5")
    if _looks_like_smv(path):
        smv = read_smv(path)
        if shape is not None and tuple(shape) != smv.data.shape:
            raise UserError(f"{path}: SMV image is {smv.height}x{smv.width} (slow x fast), --shape says "
                            f"{shape[0]}x{shape[1]}")
        return Loaded(smv.data.astype(np.float64), "smv")
    if path.suffix.lower() in (".tif", ".tiff"):
        if shape is None:
            import tifffile

            try:
                image = tifffile.imread(path)
            except Exception as e:  # noqa: BLE001 - tifffile raises many types for a bad file
                raise UserError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
            if image.ndim != 2:
                raise UserError(f"{path}: no 2-D image in it")
            return Loaded(image.astype(np.float64), "tiff")
        return Loaded(read_float_image(path, tuple(shape)).astype(np.float64), "tiff")
    if shape is None:
        data = _raw_bytes(path)
        side = math.isqrt(len(data) // 4)
        if len(data) == 0 or len(data) % 4 or side * side * 4 != len(data):
            raise UserError(f"{path}: {len(data)} bytes is not a square float32 image; give --shape SLOW FAST")
        return Loaded(np.frombuffer(data, dtype="<f4").reshape(side, side).astype(np.float64), "raw")
    return Loaded(read_float_image(path, tuple(shape)).astype(np.float64), "raw")

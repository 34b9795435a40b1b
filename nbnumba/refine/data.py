"""The measured image as photons, with the pixels a fit may use.

Any image `nbnumba compare` reads (SMV, float .bin, TIFF, one frame of an HDF5/NeXus file).
Counts become photons as (counts - adc) / gain; the defaults are those of the image's header where
it has them (ADC_OFFSET, GAIN), else nanoBragg's for an SMV image (adc 40, gain 1: its noise image)
and none for float images.  Unusable: pixels the -mask file marks 0, SMV pixels at 65535
(saturated), pixels that are not finite or below -3 sigma of the read-out noise (below 0 without it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io.any_image import load_image
from ..io.smv import read_smv, smv_value

SATURATED = 65535
SMV_ADC = 40.0


@dataclass
class Data:
    photons: np.ndarray  # float64 (slow, fast)
    usable: np.ndarray  # bool (slow, fast)
    path: str
    adc: float
    gain: float


def _header(path: Path, key: str) -> float:
    try:
        return smv_value(read_smv(path).header, key)
    except UserError:
        return math.nan


def load_data(path, shape: tuple[int, int], frame: int = 1, adc: float | None = None, gain: float | None = None,
              mask=None, readout: float = 0.0) -> Data:
    """`shape` is the detector's (slow, fast); the data must have it."""
    path = Path(path)
    try:
        loaded = load_image(path, None, frame)
    except UserError:
        if path.suffix.lower() not in (".bin", ".gz"):
            raise
        loaded = load_image(path, shape, frame)  # a raw image that is not square: read by its size
    counts = loaded.image
    if counts.shape != tuple(shape):
        raise UserError(f"{path}: the image is {counts.shape[1]}x{counts.shape[0]} pixels (fast x slow) but the "
                        f"detector is {shape[1]}x{shape[0]}: give the flags of the detector that took it")
    smv = loaded.kind == "smv"
    if adc is None:
        found = _header(path, "ADC_OFFSET") if smv else math.nan
        adc = found if math.isfinite(found) else (SMV_ADC if smv else 0.0)
    if gain is None:
        found = _header(path, "GAIN") if smv else math.nan
        gain = found if math.isfinite(found) and found > 0 else 1.0
    if not (math.isfinite(gain) and gain > 0):
        raise UserError(f"-gain must be a number > 0 (counts per photon), got {gain:g}")
    if not math.isfinite(adc):
        raise UserError(f"-adc must be a finite number, got {adc:g}")
    photons = (counts - adc) / gain
    usable = np.isfinite(photons) & (photons >= -3.0 * readout)
    if smv:
        usable &= counts < SATURATED
    if mask is not None:
        usable &= np.asarray(mask) != 0
    return Data(np.where(usable, photons, 0.0), usable, str(path), float(adc), float(gain))

"""Detector response (noisify's physics): photon noise, flicker, calibration error, point-spread
function, gain, ADC offset and read-out noise, applied to any float image."""

from .model import DEFAULT_CALIB_SEED, DEFAULT_FLUENCE, ResponseParams, ResponseResult, apply_detector_response
from .psf import PsfReport

__all__ = ["DEFAULT_CALIB_SEED", "DEFAULT_FLUENCE", "PsfReport", "ResponseParams", "ResponseResult",
           "apply_detector_response"]

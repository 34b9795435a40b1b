"""Detector response: a photons/pixel float image to the SMV counts a detector would record.

The chain is noisify's: scale to photons, then per pixel beam flicker and a static calibration
error (both fractional Gaussians), Poisson photon counting, the point-spread function, gain, ADC
offset and Gaussian read-out noise (in ADU), clipped to 16 or 32 bits.  Without noise, the PSF
blurs the noiseless image instead.  ``apply_detector_response`` takes any float image, so the
same chain serves the `noisify` command and a render that ends in detector effects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from . import noise, rng
from .psf import KINDS, PsfReport, apply_psf

R_E_SQR = 7.94079248018965e-30  # Thomson cross-section (m²)
# the fluence at which the input is already in photons/pixel: r_e² × fluence ≈ 1
DEFAULT_FLUENCE = 125932015286227086360700780544.0
DEFAULT_CALIB_SEED = 123456789


@dataclass(frozen=True)
class ResponseParams:
    """noisify's detector effects: SI lengths, the reference's conventions for the rest."""

    pixel_size: float = 1e-4  # m; turns the PSF width into pixels
    photon_scale: float = 1.0  # multiplies the input before anything else
    fluence: float = DEFAULT_FLUENCE  # photons/m²; photons = r_e² × fluence × scale × input
    gain: float = 1.0  # ADU per photon
    adc_offset: float = 40.0  # ADU
    readout_noise: float = 0.0  # ADU rms
    flicker_noise: float = 0.0  # fractional rms of the beam
    calibration_noise: float = 0.03  # fractional rms of each pixel's static gain error
    seed: int = -1  # idum of the noise stream (the reference's -seed N gives -N)
    calib_seed: int = DEFAULT_CALIB_SEED  # idum of the calibration stream (-calib_seed N gives -N)
    psf: str | None = None  # "gauss", "fiber" or None
    psf_fwhm: float = 46e-6  # m; kept in float32 as the reference keeps it
    psf_radius: int = 0  # pixels; 0 chooses one per pixel
    bits: int = 16  # 16 or 32
    noise: bool = True  # False: only the noiseless image (with the PSF applied to it)
    fix_int32_clip: bool = False  # 32-bit noiseless pixels clip at 2**31 - 1, not at 65535
    fix_psf_edge: bool = False  # light past the right edge is lost, not wrapped to the next row
    fix_calib_stream: bool = False  # the calibration error has its own generator

    @property
    def psf_fwhm_f32(self) -> float:
        return float(np.float32(self.psf_fwhm))

    @property
    def psf_kind(self) -> int | None:
        """The PSF to apply, or None (no type, or a width of 0)."""
        if self.psf is None or not self.psf_fwhm_f32 > 0.0:
            return None
        return KINDS[self.psf]

    @property
    def psf_fwhm_pixels(self) -> float:
        return self.psf_fwhm_f32 / self.pixel_size

    @property
    def photons_per_unit(self) -> float:
        return (self.fluence * R_E_SQR) * self.photon_scale


@dataclass
class ResponseResult:
    """Every image and number noisify reports.  Images are (slow, fast)."""

    max_input: float  # brightest input value (0 when none is positive)
    int16: np.ndarray  # noiseless counts, uint16 (the PGM is made from these)
    int_image: np.ndarray  # noiseless counts at the requested width (uint16 or uint32)
    pgm: np.ndarray  # uint8 preview
    psf_noiseless: PsfReport | None = None  # the PSF applied to the noiseless image
    noise_image: np.ndarray | None = None  # counts with noise at the requested width
    photons_before_psf: float | None = None  # Poisson photons before the PSF
    psf: PsfReport | None = None  # the PSF applied to the counted photons
    photons: float | None = None  # photons on the noise image
    overloads: int = 0  # noise-image pixels clipped at the requested width


def _calibration_stream(p: ResponseParams, generator: np.ndarray) -> tuple[np.ndarray, int]:
    if not p.fix_calib_stream:
        return generator, p.calib_seed
    # its own table, from the seed as printed (the reference's default is positive)
    seed = p.calib_seed if p.calib_seed < 0 else -p.calib_seed
    return rng.new_rng(seed), seed


def check_input(image: np.ndarray, p: ResponseParams, what: str = "the input") -> None:
    """Refuse what would spoil the whole image: a NaN or infinite pixel under the PSF (its lost
    light is added back to every pixel; the reference crashes on NaN)."""
    if p.psf_kind is not None:
        bad = int(image.size - np.isfinite(image).sum())
        if bad:
            raise UserError(f"{bad} pixels of {what} are not finite numbers (NaN or infinity); the PSF would "
                            "spread them over the whole image")


def apply_detector_response(float_image: np.ndarray, p: ResponseParams) -> ResponseResult:
    """The int, noise and PGM images of a (slow, fast) photons/pixel float image (see the module)."""
    image = np.ascontiguousarray(float_image, dtype=np.float32)
    check_input(image, p)
    shape = image.shape
    # the reference's running maximum from 0, which passes over NaN
    max_input = float(np.fmax.reduce(image.reshape(-1), initial=0.0))
    photons = noise.photon_scale(image.reshape(-1), p.photons_per_unit)
    kind = p.psf_kind

    psf_noiseless = None
    if not p.noise and kind is not None:
        blurred, psf_noiseless = apply_psf(photons.reshape(shape), kind, p.psf_fwhm_pixels, p.psf_radius,
                                           p.fix_psf_edge)
        photons = blurred.reshape(-1)
    int16, int32 = noise.noiseless_counts(photons, p.gain, p.adc_offset, not p.fix_int32_clip)
    result = ResponseResult(max_input=max_input, int16=int16.reshape(shape),
                            int_image=(int16 if p.bits == 16 else int32).reshape(shape),
                            pgm=np.minimum(int16, 255).astype(np.uint8).reshape(shape),
                            psf_noiseless=psf_noiseless)
    if not p.noise:
        return result

    generator = rng.new_rng(p.seed)
    calib_generator, calib_idum = _calibration_stream(p, generator)
    counts, result.photons_before_psf = noise.photon_noise(photons, p.flicker_noise, p.calibration_noise,
                                                           generator, calib_generator, calib_idum)
    if kind is not None:
        blurred, result.psf = apply_psf(counts.reshape(shape), kind, p.psf_fwhm_pixels, p.psf_radius,
                                        p.fix_psf_edge)
        counts = blurred.reshape(-1)
    out16, out32, result.photons, over16, over32 = noise.noise_counts(counts, p.gain, p.adc_offset,
                                                                      p.readout_noise, generator)
    result.noise_image = (out16 if p.bits == 16 else out32).reshape(shape)
    result.overloads = over16 if p.bits == 16 else over32
    return result

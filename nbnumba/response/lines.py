"""What noisify prints of the detector response it applied (shared by `noisify` and `run`)."""

from __future__ import annotations

from ..io.smv import cfmt_g as g
from .model import ResponseParams, ResponseResult
from .psf import PsfReport


def psf_lines(report: PsfReport) -> list[str]:
    lines = []
    if report.max_input is not None:
        lines.append(f"  maximum input photon/pixel: {g(report.max_input)}")
        if report.skipped:
            return lines + ["WARNING: no photons, PSF skipped"]
        lines.append(f"  auto-selected psf_radius = {report.auto_radius} pixels")
    return lines + [f"adding back {g(report.lost)} lost photons"]


def noiseless_lines(p: ResponseParams, r: ResponseResult) -> list[str]:
    """What noisify prints of the PSF applied to the noiseless image."""
    if r.psf_noiseless is None:
        return []
    return [f"  applying PSF to noiseless image width = {g(p.psf_fwhm_pixels)} pixels", *psf_lines(r.psf_noiseless)]


def noise_lines(p: ResponseParams, r: ResponseResult) -> list[str]:
    """What noisify prints of the noise image: its photons, the PSF applied to them, overloads."""
    lines = []
    if r.psf is not None:
        lines += [f"{r.photons_before_psf:.0f} photons on noise image before PSF",
                  f"  applying PSF width = {g(p.psf_fwhm_f32 * 1e6)} um", *psf_lines(r.psf)]
    return lines + [f"{r.photons:.0f} photons on noise image ({r.overloads} overloads)"]

"""`nbnumba noisify`: noisify's command, its inputs, summary lines and outputs.

Everything the user gave is checked before anything is printed or written; the images are
then computed by :func:`nbnumba.response.apply_detector_response` and written in the
reference's order, each file complete or not at all.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import click
import numpy as np

from .. import __version__
from ..errors import UserError
from ..io.images import write_pgm
from ..io.smv import cfmt_g as g
from ..model.noisify_options import NoisifyOptions, parse_noisify_args
from ..response.files import float_image, noisify_header, read_float_bytes, read_header, retyped_header, write_counts
from ..response.lines import noise_lines, noiseless_lines
from ..response.model import R_E_SQR, ResponseParams, ResponseResult, apply_detector_response, check_input
from ..runtime.guard import PASSTHROUGH, guarded, without_scipy_blas
from .flags import echo_flag_table

BANNER = f"nbnumba {__version__}: noisify-compatible detector response"


@dataclass
class Geometry:
    """The image size and the header values, in metres, as the reference settles them."""

    xpixels: int
    ypixels: int
    pixel: float
    distance: float
    detsize_x: float
    detsize_y: float
    xbeam: float
    ybeam: float
    guessed: bool


def _guess_size(pixels: int) -> tuple[int, int]:
    # the reference's guess: the squarest factorisation, else one row
    x = int(math.sqrt(pixels))
    y = pixels // x
    while pixels != x * y and x > 0:
        x -= 1
        y = pixels // x
    return (x, y) if pixels == x * y else (pixels, 1)


def geometry(o: NoisifyOptions, floats: int, header) -> Geometry:
    xp, yp, pixel, distance = o.xpixels, o.ypixels, o.pixel, o.distance
    xbeam, ybeam = o.xbeam, o.ybeam
    pixels = floats
    if header is not None:
        # the header wins over the command line, wherever the flags stand
        xp, yp = header.width, header.height
        pixels = xp * yp
        if not math.isnan(value := header.value("PIXEL_SIZE")):
            pixel = value / 1000.0
            if not pixel > 0:
                raise UserError(f"{o.headerfile}: PIXEL_SIZE must be positive, got {g(value)}")
        if not math.isnan(value := header.value("DISTANCE")):
            distance = value / 1000.0
        if not math.isnan(value := header.value("BEAM_CENTER_X")):
            xbeam = value / 1000.0
        if not math.isnan(value := header.value("BEAM_CENTER_Y")):
            ybeam = pixel * yp - value / 1000.0
    guessed = not xp and not yp
    if guessed:
        if pixels == 0:
            raise UserError(f"{o.floatfile}: no float values in it")
        xp, yp = _guess_size(pixels)
    if xp and not yp:
        yp = pixels // xp
    if yp and not xp:
        xp = pixels // yp
    if not xp or not yp:
        raise UserError(f"{o.floatfile}: {floats} float values, too few for one row of "
                        f"{o.xpixels or o.ypixels} pixels")
    if floats < xp * yp:
        raise UserError(f"{o.floatfile}: {floats} float values, a {xp}x{yp} image needs {xp * yp}")
    detsize_x, detsize_y = pixel * xp, pixel * yp
    return Geometry(xp, yp, pixel, distance, detsize_x, detsize_y,
                    detsize_x / 2.0 if xbeam is None else xbeam,
                    detsize_y / 2.0 if ybeam is None else ybeam, guessed)


def response_params(o: NoisifyOptions, geo: Geometry, seed: int) -> ResponseParams:
    return ResponseParams(pixel_size=geo.pixel, photon_scale=o.photon_scale, fluence=o.fluence, gain=o.gain,
                          adc_offset=o.adc_offset, readout_noise=o.readout_noise, flicker_noise=o.flicker_noise,
                          calibration_noise=o.calibration_noise, seed=seed, calib_seed=o.calib_seed, psf=o.psf,
                          psf_fwhm=o.psf_fwhm, psf_radius=o.psf_radius, bits=o.bits, noise=o.calculate_noise,
                          fix_int32_clip=o.fix_int32_clip, fix_psf_edge=o.fix_psf_edge,
                          fix_calib_stream=o.fix_calib_stream)


def setup_lines(o: NoisifyOptions, geo: Geometry, p: ResponseParams) -> list[str]:
    lines = []
    if o.headerfile is not None:
        lines += [f"taking header from {o.headerfile}", f"reading {o.headerfile}"]
    if geo.guessed:
        lines.append("WARNING: guessing xy pixel dimensions.")
    lines.append(f"importing {geo.xpixels * geo.ypixels} pixel intensites: {o.floatfile}")
    lines.append(f"  distance={g(geo.distance)} detsize={g(geo.detsize_x)}x{g(geo.detsize_y)}  "
                 f"pixel={g(geo.pixel)} meters ({geo.xpixels}x{geo.ypixels} pixels)")
    lines.append(f"  Xbeam={g(geo.xbeam)} Ybeam={g(geo.ybeam)}")
    if p.psf is not None:
        # one line in the reference, printed in pieces
        text = f"  {'Gaussian' if p.psf == 'gauss' else 'fiber'} PSF fwhm = {g(p.psf_fwhm_f32 * 1e6)} um "
        if p.psf_radius == 0:
            lines.append(text + "  with automatic rendering radius")
            text = ""
        lines.append(text + f"  with rendering radius: {p.psf_radius}")
    off = not p.noise  # -nonoise turns the noise sources off before they are reported
    lines += [f"  seed: {p.seed}", f"  calibration noise seed: {p.calib_seed}",
              f"  calibration_noise = {g(0.0 if off else p.calibration_noise * 100)} %",
              f"  input file scale = {g(p.photon_scale)}",
              f"  readout_noise = {g(0.0 if off else p.readout_noise)} ADU",
              f"  flicker_noise = {g(0.0 if off else p.flicker_noise * 100)} %",
              f"  quantum_gain = {g(p.gain)} ADU/photon", f"  adc_offset = {g(p.adc_offset)} ADU", ""]
    return lines


def _header(o: NoisifyOptions, geo: Geometry, header) -> bytes:
    if header is not None:
        return retyped_header(header, o.bits) if o.fix_header_type else header.raw
    return noisify_header(geo.xpixels, geo.ypixels, o.bits, geo.pixel * 1000.0, geo.distance * 1000.0, o.lambda_A,
                          geo.xbeam * 1000.0, (geo.detsize_y - geo.ybeam) * 1000, o.phi_deg, o.osc_deg)


def write_results(o: NoisifyOptions, geo: Geometry, p: ResponseParams, image: np.ndarray, r: ResponseResult,
                  header, say: Callable[[str], None]) -> None:
    """The reference's lines from the photon scale on, each output written after its line."""
    for value in image[image < 0]:
        say(f"WARNING: negative intensity in {o.floatfile}: {g(float(value))}")
    scaled = r.max_input * p.photon_scale * p.fluence * R_E_SQR
    say(f"maximum value in input file: {g(r.max_input)} ( {g(scaled)} on photon scale)")
    for line in noiseless_lines(p, r):
        say(line)
    smv_header = _header(o, geo, header)
    width = 2 if o.bits == 16 else 4
    say(f"writing {o.intfile} as {geo.xpixels * geo.ypixels} {width}-byte integers")
    write_counts(o.intfile, smv_header, r.int_image)
    if o.write_pgm:
        say(f"writing {o.pgmfile} as 1-byte integers")
        write_pgm(o.pgmfile, r.pgm, 1.0)
    if r.noise_image is None:
        return
    for line in noise_lines(p, r):
        say(line)
    say(f"writing {o.noisefile} as {width}-byte integers")
    write_counts(o.noisefile, smv_header, r.noise_image)


def run_noisify(argv: list[str], say: Callable[[str], None], warn: Callable[[str], None]) -> None:
    from ..io.atomic import check_writable, together
    from ..runtime.threads import set_threads

    o = parse_noisify_args(argv)
    set_threads(o.nthreads)
    header = read_header(o.headerfile) if o.headerfile is not None else None
    data = read_float_bytes(o.floatfile)
    geo = geometry(o, len(data) // 4, header)
    outputs = [o.intfile] + ([o.pgmfile] if o.write_pgm else []) + ([o.noisefile] if o.calculate_noise else [])
    check_writable(outputs, [o.floatfile, o.headerfile])
    image = float_image(data, geo.xpixels, geo.ypixels)
    seed = o.seed if o.seed is not None else -int(time.time())
    p = response_params(o, geo, seed)
    check_input(image, p, o.floatfile)
    for line in [BANNER, *setup_lines(o, geo, p)]:
        say(line)
    bad = int(image.size - np.isfinite(image).sum())
    if bad:
        warn(f"nbnumba: warning: {bad} pixels of {o.floatfile} are not finite numbers (NaN or infinity)")
    result = apply_detector_response(image, p)
    with together():  # no earlier file is replaced unless every output is written
        write_results(o, geo, p, image, result, header, say)


@click.command(context_settings=PASSTHROUGH)
@click.option("--flags", "list_flags", is_flag=True, help="print the noisify flag reference (Markdown)")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def noisify(list_flags, args) -> None:
    """Add detector effects to a float image: every flag of the reference's noisify works
    (e.g. -floatfile img.bin -readout 3 -flicker 0.02 -psf gauss -psf_fwhm 100)."""
    if list_flags:
        from ..model.noisify_options import flag_table

        echo_flag_table(flag_table())
        return
    with without_scipy_blas():
        guarded(run_noisify, list(args), click.echo, lambda line: click.echo(line, err=True))

"""noisify's command line: its flag table and parser, with the reference's matching rules.

The reference tests every argument against every flag, by substring (`strstr`), a few also by
length, so abbreviations and synonyms work (`-readnoise`, `-psf_sigma`, `-floatimage`,
`-oscillation`).  The table keeps its patterns and order; as for `run`, values are strict: a
missing, non-numeric or impossible value, or an argument that matches no flag, is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UserError
from ..response.model import DEFAULT_CALIB_SEED, DEFAULT_FLUENCE
from .options import Flag, _integer, _number, _take, exact, looks_numeric, sub, suggest

# the reference takes any argument naming this file as the input, wherever it stands
DEFAULT_INPUT = "floatimage.bin"
SEED_LIMIT = 2**31  # seeds are C ints


@dataclass
class NoisifyOptions:
    """Everything noisify's command line sets, in SI units (lengths in m, PSF width in m)."""

    floatfile: str | None = None
    headerfile: str | None = None
    intfile: str = "intimage.img"
    pgmfile: str = "image.pgm"
    noisefile: str = "noiseimage.img"
    write_pgm: bool = True
    calculate_noise: bool = True
    distance: float = 100.0e-3
    detsize_x: float = 102.4e-3
    detsize_y: float = 102.4e-3
    pixel: float = 0.1e-3
    xbeam: float | None = None
    ybeam: float | None = None
    xpixels: int = 0
    ypixels: int = 0
    lambda_A: float = 1.0
    phi_deg: float = 0.0
    osc_deg: float = 1.0
    psf: str | None = None
    psf_fwhm: float = 46e-6
    psf_radius: int = 0
    fluence: float = DEFAULT_FLUENCE
    photon_scale: float = 1.0
    readout_noise: float = 0.0
    flicker_noise: float = 0.0
    calibration_noise: float = 0.03
    adc_offset: float = 40.0
    gain: float = 1.0
    seed: int | None = None  # idum; None: minus the time, as the reference
    calib_seed: int = DEFAULT_CALIB_SEED
    badpix_seed: int = 1234
    hotpix_seed: int = 5678
    bits: int = 16
    nthreads: int = 0
    fix_int32_clip: bool = False
    fix_psf_edge: bool = False
    fix_calib_stream: bool = False
    fix_header_type: bool = False
    argv: list[str] = field(default_factory=list)


def _set(attr: str, scale: float | None = None, div: float | None = None):
    def apply(o: NoisifyOptions, values: list) -> None:
        value = values[0]
        if div is not None:
            value = value / div
        elif scale is not None:
            value = value * scale
        setattr(o, attr, value)

    return apply


def _switch(attr: str, value):
    return lambda o, values: setattr(o, attr, value)


def _at_least(flag: str, attr: str, low: float, div: float | None = None, strict: bool = False):
    def apply(o: NoisifyOptions, values: list) -> None:
        value = values[0]
        if value < low or (strict and value == low):
            raise UserError(f"{flag} must be {'more than' if strict else 'at least'} {low:g}, got {value:g}")
        setattr(o, attr, value / div if div is not None else value)

    return apply


def _pixels(flag: str, *attrs: str):
    def apply(o: NoisifyOptions, values: list) -> None:
        if values[0] < 1:
            raise UserError(f"{flag} must be at least 1 pixel, got {values[0]}")
        for attr in attrs:
            setattr(o, attr, values[0])

    return apply


def _psf(o: NoisifyOptions, values: list) -> None:
    word = values[0]
    # substring tests, as the reference's: "gaussian" is a Gaussian
    kind = "fiber" if "fiber" in word else "gauss" if "gauss" in word else None
    if kind is None:
        raise UserError(f"-psf expects gauss or fiber, got {word!r}")
    o.psf = kind


def _bits(o: NoisifyOptions, values: list) -> None:
    if values[0] not in (16, 32):
        raise UserError(f"-bits must be 16 or 32, got {values[0]}")
    o.bits = values[0]


def _seed(flag: str, attr: str):
    def apply(o: NoisifyOptions, values: list) -> None:
        if not -SEED_LIMIT < values[0] < SEED_LIMIT:
            raise UserError(f"{flag} must be a 32-bit integer, got {values[0]}")
        setattr(o, attr, -values[0])

    return apply


def _pixel_size(o: NoisifyOptions, values: list) -> None:
    if values[0] <= 0:
        raise UserError(f"-pixel must be positive, got {values[0]:g}")
    o.pixel = values[0] / 1000.0


# In the reference's order.  Units on the command line: mm, um (PSF), degrees, A, ADU.
FLAGS: list[Flag] = [
    Flag("-lambda", sub("-lambda"), 1, _set("lambda_A"), "f", help="wavelength for the header (A)"),
    Flag("-Xbeam", sub("-Xbeam"), 1, _set("xbeam", div=1000.0), "f", help="beam centre, fast (mm), for the header"),
    Flag("-Ybeam", sub("-Ybeam"), 1, _set("ybeam", div=1000.0), "f", help="beam centre, slow (mm), for the header"),
    Flag("-distance", sub("-distance"), 1, _set("distance", div=1000.0), "f", help="detector distance (mm), for the header"),
    Flag("-detsize", sub("-detsize", length=8), 1, None, "f", help="accepted; the size follows from the pixels (mm)"),
    Flag("-detsize_x", sub("-detsize_x"), 1, None, "f", help="accepted; the size follows from the pixels (mm)"),
    Flag("-detsize_y", sub("-detsize_y"), 1, None, "f", help="accepted; the size follows from the pixels (mm)"),
    Flag("-detpixels", sub("-detpixels", length=10), 1, _pixels("-detpixels", "xpixels", "ypixels"), "i", help="image size (pixels)"),
    Flag("-detpixels_x", sub("-detpixels_x"), 1, _pixels("-detpixels_x", "xpixels"), "i", help="image width, fast (pixels)"),
    Flag("-detpixels_y", sub("-detpixels_y"), 1, _pixels("-detpixels_y", "ypixels"), "i", help="image height, slow (pixels)"),
    Flag("-pixel", sub("-pixel"), 1, _pixel_size, "f", help="pixel size (mm)"),
    Flag("-psf", sub("-psf", length=4), 1, _psf, "s", help="point-spread function: gauss or fiber"),
    Flag("-psf_radius", sub("-psf_rad"), 1, _at_least("-psf_radius", "psf_radius", 0), "i",
         help="PSF rendering radius (pixels; 0, the default, chooses it per pixel)"),
    Flag("-psf_fwhm", lambda a: "-psf_si" in a or "-psf_fw" in a or "-psf_wi" in a, 1,
         _at_least("-psf_fwhm", "psf_fwhm", 0, div=1e6), "f", help="PSF full width at half maximum (um; default 46)"),
    Flag("-fluence", sub("-fluence"), 1, _at_least("-fluence", "fluence", 0), "f", help="photons/m^2 (the default makes the input photons/pixel)"),
    Flag("-floatfile", sub("-floatfile", "-floatimage", "-bin"), 1, _set("floatfile"), "s",
         help="input: raw float32 image in photons/pixel"),
    Flag("-header", sub("-header"), 1, _set("headerfile"), "s", help="copy the header (and size, pixel, distance, beam) of this SMV file"),
    Flag("-pgmfile", sub("-pgmfile", "-pgmimage"), 1, _set("pgmfile"), "s", help="8-bit PGM output (default image.pgm)"),
    Flag("-intfile", sub("-intfile", "-intimage"), 1, _set("intfile"), "s", help="noiseless SMV output (default intimage.img)"),
    Flag("-bits", sub("-bits"), 1, _bits, "i", help="SMV pixel width: 16 (default) or 32"),
    Flag("-noisefile", sub("-noisefile", "-noiseimage"), 1, _set("noisefile"), "s", help="SMV output with noise (default noiseimage.img)"),
    Flag("-nonoise", sub("-nonoise"), 0, _switch("calculate_noise", False), help="no noise image; the PSF blurs the int image"),
    Flag("-nopgm", sub("-nopgm"), 0, _switch("write_pgm", False), help="no PGM image"),
    Flag("-readout", sub("-readout", "-readnoi"), 1, _at_least("-readout", "readout_noise", 0), "f", help="read-out noise (ADU rms)"),
    Flag("-flicker", sub("-flicker"), 1, _at_least("-flicker", "flicker_noise", 0), "f", help="beam flicker (fractional rms)"),
    Flag("-calibration", sub("-calibration"), 1, _at_least("-calibration", "calibration_noise", 0), "f",
         help="static per-pixel calibration error (fractional rms; default 0.03)"),
    Flag("-scale", sub("-scale"), 1, _at_least("-scale", "photon_scale", 0), "f", help="multiplies the input to give photons/pixel"),
    Flag("-seed", sub("-seed"), 1, _seed("-seed", "seed"), "i", help="noise seed (default: the time)"),
    Flag("-calib_seed", sub("-calib_seed"), 1, _seed("-calib_seed", "calib_seed"), "i", help="calibration seed"),
    Flag("-badpix_seed", sub("-badpix_seed"), 1, _seed("-badpix_seed", "badpix_seed"), "i", help="accepted (unused, as the reference)"),
    Flag("-hotpix_seed", sub("-hotpix_seed"), 1, _seed("-hotpix_seed", "hotpix_seed"), "i", help="accepted (unused, as the reference)"),
    Flag("-adc", sub("-adc"), 1, _set("adc_offset"), "f", help="ADC offset (ADU; default 40)"),
    Flag("-gain", sub("-gain"), 1, _at_least("-gain", "gain", 0, strict=True), "f", help="ADU per photon (default 1)"),
    Flag("-phi", sub("-phi"), 1, _set("phi_deg"), "f", help="start angle for the header (deg)"),
    Flag("-osc", sub("-osc"), 1, _set("osc_deg"), "f", help="oscillation range for the header (deg)"),
    # nbnumba's own flags: matched exactly so they can never shadow a reference abbreviation.
    Flag("-nthreads", exact("-nthreads"), 1, _at_least("-nthreads", "nthreads", 1), "i", help="CPU threads (PSF)"),
    Flag("-fix_int32_clip", exact("-fix_int32_clip"), 0, _switch("fix_int32_clip", True),
         help="32-bit int image clips at 2^31-1 (reference: at 65535)"),
    Flag("-fix_psf_edge", exact("-fix_psf_edge"), 0, _switch("fix_psf_edge", True),
         help="PSF light past the right edge is lost (reference: lands in the next row's first pixel)"),
    Flag("-fix_calib_stream", exact("-fix_calib_stream"), 0, _switch("fix_calib_stream", True),
         help="the calibration error has its own random stream (reference: shares the noise seed's)"),
    Flag("-fix_header_type", exact("-fix_header_type"), 0, _switch("fix_header_type", True),
         help="an imported header's TYPE and BYTE_ORDER describe the pixels written (reference: copied as they are)"),
]

CANONICAL = sorted(f.name for f in FLAGS)


def _convert(arg: str, kinds: str, tokens: list[str]) -> list:
    return [_number(arg, t) if k == "f" else _integer(arg, t) if k == "i" else t for k, t in zip(kinds, tokens)]


def parse_noisify_args(argv: list[str]) -> NoisifyOptions:
    o = NoisifyOptions(argv=list(argv))
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or looks_numeric(arg):
            if DEFAULT_INPUT in arg:
                o.floatfile = arg
                i += 1
                continue
            raise UserError(f"unexpected argument {arg!r} (flags start with '-')")
        taken = 0
        matched = False
        for flag in FLAGS:
            if not flag.matches(arg):
                continue
            matched = True
            values = _convert(arg, flag.kinds, _take(argv, i, flag.nargs, arg))
            if flag.apply is not None:
                flag.apply(o, values)
            taken = max(taken, flag.nargs)
        if not matched:
            raise UserError(f"unknown flag {arg}{suggest(arg, CANONICAL)}")
        i += 1 + taken
    if o.floatfile is None:
        raise UserError("noisify needs an input image: -floatfile FILE (raw float32, photons/pixel)")
    return o


def flag_table() -> list[tuple[str, int, str]]:
    """(flag, number of values, help) for every flag, for documentation."""
    return [(f.name, f.nargs, f.help) for f in FLAGS]

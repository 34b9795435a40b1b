"""The nanoBragg command line: its flag table and a parser with the reference's matching rules.

The reference matches each argument against every flag in a fixed order, mostly by substring
(`strstr`), sometimes also by length or exact equality, and an argument may match several flags
(`-twotheta_axis` also sets `-twotheta`; `-pix0_vector_mm` is read by `-pix0_vector`).  Users rely
on those abbreviations and synonyms (`-mosaic_domains`, `-detector_absorb`, `-wavelength`), so the
table keeps the reference's patterns and order; what it adds is strict values: a missing,
non-numeric or non-finite value, or an argument that matches no flag, is an error.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Callable

from .errors import UserError
from .params import Params

RTD = 180.0 * (1.0 / math.pi)


@dataclass(frozen=True)
class Flag:
    name: str  # canonical spelling, used in help and suggestions
    matches: Callable[[str], bool]
    nargs: int
    apply: Callable[[Params, list], None]
    kinds: str = ""  # one letter per value: f float, i integer, s string, a angle-or-word
    stop: bool = False  # the reference's `continue`: no later flag sees this argument
    help: str = ""


def sub(*patterns: str, length: int | None = None) -> Callable[[str], bool]:
    """strstr() match against any pattern, optionally with the reference's strlen() check."""

    def match(arg: str) -> bool:
        if length is not None and len(arg) != length:
            return False
        return any(p in arg for p in patterns)

    return match


def exact(*names: str) -> Callable[[str], bool]:
    return lambda arg: arg in names


def _set(**fixed):
    def apply(p: Params, values: list) -> None:
        for key, value in fixed.items():
            setattr(p, key, value)

    return apply


def _convert_unit(value, mul, div):
    """Unit conversion with the reference's own operation: x/1000.0 and x*1e-3 differ in the last bit."""
    if mul is not None:
        return value * mul
    if div is not None:
        return value / div
    return value


def _value(attr: str, mul: float | None = None, div: float | None = None, **also):
    def apply(p: Params, values: list) -> None:
        setattr(p, attr, _convert_unit(values[0], mul, div))
        for key, value in also.items():
            setattr(p, key, value)

    return apply


def _values(*attrs: str, mul: float | None = None, div: float | None = None):
    def apply(p: Params, values: list) -> None:
        for attr in attrs:
            setattr(p, attr, _convert_unit(values[0], mul, div))

    return apply


def _vector(attr: str, **also):
    def apply(p: Params, values: list) -> None:
        setattr(p, attr, [float(v) for v in values])
        p.convention = "CUSTOM"
        for key, value in also.items():
            setattr(p, key, value)

    return apply


def _pixels(flag: str, *attrs: str):
    def apply(p: Params, values: list) -> None:
        if values[0] <= 0:
            raise UserError(f"{flag} must be at least 1 pixel, got {values[0]}")
        for attr in attrs:
            setattr(p, attr, values[0])

    return apply


def _cell(p: Params, values: list) -> None:
    p.user_cell = True
    p.cell = [values[0], values[1], values[2], values[3] / RTD, values[4] / RTD, values[5] / RTD]


def _misset(p: Params, values: list) -> None:
    p.misset = (values[0] / RTD, values[1] / RTD, values[2] / RTD)


def _pivot(p: Params, values: list) -> None:
    word = values[0]
    if "sample" in word:
        p.pivot = "SAMPLE"
    elif "beam" in word:
        p.pivot = "BEAM"
    else:
        raise UserError(f"-pivot expects 'sample' or 'beam', got {word!r}")


def _convention(name: str, pivot: str):
    return _set(convention=name, pivot=pivot)


def _detector_abs(p: Params, values: list) -> None:
    word = values[0]
    if "inf" in word:
        p.detector_thick, p.detector_mu = 0.0, 0.0
        return
    depth = _number("-detector_abs", word)
    if depth != 0.0 and depth * 1e-6 == 0.0:
        raise UserError(f"-detector_abs {word} is too small (use 0 or inf for no absorption)")
    if depth == 0.0:
        p.detector_thick, p.detector_mu = 0.0, 0.0
    else:
        p.detector_mu = 1.0 / (depth * 1e-6)


def _energy(p: Params, values: list) -> None:
    if values[0] == 0.0:
        raise UserError("-energy must be positive, got 0")
    p.lambda0 = (12398.42 / values[0]) / 1.0e10


def _roi(p: Params, values: list) -> None:
    p.roi = list(values)


def _stol(mult: float):
    def apply(p: Params, values: list) -> None:
        p.stol_file, p.stol_file_mult = values[0], mult

    return apply


def _seed(attr: str):
    return lambda p, values: setattr(p, attr, -values[0])


def _pixel_pair(attr_s: str, attr_f: str, slow_first: bool):
    def apply(p: Params, values: list) -> None:
        s, f = (values[0], values[1]) if slow_first else (values[1], values[0])
        setattr(p, attr_s, s)
        setattr(p, attr_f, f)

    return apply


# Flags in the reference's order (the order decides which of several matching flags wins).
FLAGS: list[Flag] = [
    Flag("-Na", sub("-Na"), 1, _value("Na"), "i", stop=True, help="unit cells along a"),
    Flag("-Nb", sub("-Nb"), 1, _value("Nb"), "i", stop=True, help="unit cells along b"),
    Flag("-Nc", sub("-Nc"), 1, _value("Nc"), "i", stop=True, help="unit cells along c"),
    Flag("-N", exact("-N"), 1, _values("Na", "Nb", "Nc"), "i", stop=True,
         help="unit cells in all directions"),
    Flag("-cell", sub("-cell"), 6, _cell, "ffffff", help="unit cell a b c (A) alpha beta gamma (deg)"),
    Flag("-misset random", lambda a: a == "-misset", 1, None, "s", stop=True,
         help="random crystal orientation"),
    Flag("-misset", exact("-misset"), 3, _misset, "fff", help="crystal rotations about x, y, z (deg)"),
    Flag("-samplesize", sub("-samplesize", "-sample_size"), 1,
         _values("sample_x", "sample_y", "sample_z", div=1000), "f", help="crystal size (mm)"),
    Flag("-sample_thick", sub("-sample_thick", "-sample_x"), 1, _value("sample_x", div=1000.0), "f", help="crystal size along x (mm)"),
    Flag("-sample_width", sub("-sample_width", "-sample_y", "-width"), 1, _value("sample_y", div=1000.0), "f", help="crystal size along y (mm)"),
    Flag("-sample_height", sub("-sample_heigh", "-sample_z", "-heigh"), 1, _value("sample_z", div=1000.0), "f", help="crystal size along z (mm)"),
    Flag("-xtalsize", sub("-xtalsize", "-xtal_size"), 1,
         _values("sample_x", "sample_y", "sample_z", div=1000), "f", help="crystal size (mm)"),
    Flag("-xtal_thick", sub("-xtal_thick", "-xtal_x"), 1, _value("sample_x", div=1000.0), "f", help="crystal size along x (mm)"),
    Flag("-xtal_width", sub("-xtal_width", "-xtal_y", "-width"), 1, _value("sample_y", div=1000.0), "f", help="crystal size along y (mm)"),
    Flag("-xtal_height", sub("-xtal_heigh", "-xtal_z", "-heigh"), 1, _value("sample_z", div=1000.0), "f", help="crystal size along z (mm)"),
    Flag("-density", sub("-density", "-sample_den"), 1, _value("density", mul=1e6), "f", help="sample density (g/cm^3; reported only)"),
    Flag("-MW", lambda a: a == "-MW" or "-molec" in a, 1, _value("molecular_weight"), "f", help="molecular weight (reported only)"),
    Flag("-Xbeam", sub("-Xbeam"), 1, _value("Xbeam", div=1000.0, pivot="BEAM"), "f", help="beam centre, fast (mm)"),
    Flag("-Ybeam", sub("-Ybeam"), 1, _value("Ybeam", div=1000.0, pivot="BEAM"), "f", help="beam centre, slow (mm)"),
    Flag("-Xclose", sub("-Xclose"), 1, _value("Xclose", div=1000.0, pivot="SAMPLE"), "f", help="near point, fast (mm); pivots about the sample"),
    Flag("-Yclose", sub("-Yclose"), 1, _value("Yclose", div=1000.0, pivot="SAMPLE"), "f", help="near point, slow (mm); pivots about the sample"),
    Flag("-ORGX", sub("-ORGX"), 1, _value("ORGX", pivot="SAMPLE"), "f", help="XDS origin, fast (pixels)"),
    Flag("-ORGY", sub("-ORGY"), 1, _value("ORGY", pivot="SAMPLE"), "f", help="XDS origin, slow (pixels)"),
    Flag("-pivot", sub("-pivot"), 1, _pivot, "s", help="detector pivot: sample or beam"),
    Flag("-mosflm", sub("-mosflm"), 0, _convention("MOSFLM", "BEAM"), help="MOSFLM axes and beam centre convention (default)"),
    Flag("-xds", sub("-xds"), 0, _convention("XDS", "SAMPLE"), help="XDS convention"),
    Flag("-adxv", sub("-adxv"), 0, _convention("ADXV", "BEAM"), help="ADXV convention"),
    Flag("-denzo", sub("-denzo"), 0, _convention("DENZO", "BEAM"), help="DENZO convention"),
    Flag("-dials", sub("-dials"), 0, _convention("DIALS", "BEAM"), help="DIALS convention"),
    Flag("-fdet_vector", sub("-fdet_vector"), 3, _vector("fdet_vector"), "fff", help="fast detector axis (selects CUSTOM)"),
    Flag("-sdet_vector", sub("-sdet_vector"), 3, _vector("sdet_vector"), "fff", help="slow detector axis (selects CUSTOM)"),
    Flag("-odet_vector", sub("-odet_vector"), 3, _vector("odet_vector"), "fff", help="detector normal (selects CUSTOM)"),
    Flag("-beam_vector", sub("-beam_vector"), 3, _vector("beam_vector"), "fff", help="beam direction (selects CUSTOM)"),
    Flag("-polar_vector", sub("-polar_vector"), 3, _vector("polar_vector"), "fff", help="E-vector of the beam (selects CUSTOM)"),
    Flag("-spindle_axis", sub("-spindle_axis"), 3, _vector("spindle_vector"), "fff", help="phi rotation axis (selects CUSTOM)"),
    Flag("-twotheta_axis", sub("-twotheta_axis"), 3, _vector("twotheta_axis"), "fff", help="two-theta rotation axis (selects CUSTOM)"),
    Flag("-pix0_vector", sub("-pix0_vector"), 3, None, "fff",
         help="detector origin (m; -pix0_vector_mm in mm)"),
    Flag("-distance", sub("-distance"), 1, _value("distance", div=1000.0, pivot="BEAM"), "f",
         help="sample to detector distance along the beam (mm)"),
    Flag("-close_distance", sub("-close_distance"), 1, _value("close_distance", div=1000.0, pivot="SAMPLE"), "f", help="sample to detector plane distance (mm); pivots about the sample"),
    Flag("-detector_abs", sub("-detector_abs"), 1, _detector_abs, "s",
         help="sensor attenuation depth (um) or inf"),
    Flag("-detector_thick", sub("-detector_thick", length=15), 1, _value("detector_thick", mul=1e-6), "f", help="sensor thickness (um)"),
    Flag("-detector_thicksteps", sub("-detector_thicksteps"), 1, _value("detector_thicksteps"), "i", help="sensor layers"),
    Flag("-thicksteps", sub("-thicksteps"), 1, _value("detector_thicksteps"), "i", help="sensor layers"),
    Flag("-twotheta", sub("-twotheta"), 1, _value("detector_twotheta", div=RTD, pivot="SAMPLE"), "f", help="detector two-theta (deg); pivots about the sample"),
    Flag("-detector_rotx", sub("-detector_rotx"), 1, _value("detector_rotx", div=RTD), "f", help="detector rotation about x (deg)"),
    Flag("-detector_roty", sub("-detector_roty"), 1, _value("detector_roty", div=RTD), "f", help="detector rotation about y (deg)"),
    Flag("-detector_rotz", sub("-detector_rotz"), 1, _value("detector_rotz", div=RTD), "f", help="detector rotation about z (deg)"),
    Flag("-detsize", sub("-detsize", length=8), 1, _values("detsize_f", "detsize_s", div=1000), "f", help="detector size (mm)"),
    Flag("-detsize_f", sub("-detsize_f"), 1, _value("detsize_f", div=1000.0), "f", help="detector size, fast (mm)"),
    Flag("-detsize_s", sub("-detsize_s"), 1, _value("detsize_s", div=1000.0), "f", help="detector size, slow (mm)"),
    Flag("-detpixels", sub("-detpixels", length=10), 1, _pixels("-detpixels", "fpixels", "spixels"), "i", help="detector size (pixels)"),
    Flag("-detpixels_x", sub("-detpixels_f", "-detpixels_x"), 1, _pixels("-detpixels_x", "fpixels"), "i", help="detector size, fast (pixels)"),
    Flag("-detpixels_y", sub("-detpixels_s", "-detpixels_y"), 1, _pixels("-detpixels_y", "spixels"), "i", help="detector size, slow (pixels)"),
    Flag("-curved_det", sub("-curved_det"), 0, _set(curved_detector=True), help="all pixels at the same distance"),
    Flag("-pixel", sub("-pixel"), 1, _value("pixel_size", div=1000.0), "f", help="pixel size (mm)"),
    Flag("-point_pixel", sub("-point_pixel"), 0, _set(point_pixel=True), help="no pixel obliquity: solid angle 1/R^2"),
    Flag("-polar", sub("-polar", length=6), 1, _value("polarization", nopolar=False), "f",
         help="Kahn polarization factor"),
    Flag("-nopolar", sub("-nopolar"), 0, _set(nopolar=True), help="no polarization correction"),
    Flag("-oversample_thick", sub("-oversample_thick"), 0, _set(oversample_thick=True), stop=True, help="recompute the capture fraction per sub-pixel"),
    Flag("-oversample_polar", sub("-oversample_polar"), 0, _set(oversample_polar=True), stop=True, help="recompute polarization per sub-pixel"),
    Flag("-oversample_omega", sub("-oversample_omega"), 0, _set(oversample_omega=True), stop=True, help="recompute the solid angle per sub-pixel"),
    Flag("-oversample", sub("-oversample"), 1, _value("oversample"), "i", help="sub-pixels per pixel side (default: automatic)"),
    Flag("-roi", sub("-roi"), 4, _roi, "iiii", help="xmin xmax ymin ymax (pixels, inclusive)"),
    Flag("-lambda", sub("-lambda", "-wave"), 1, _value("lambda0", div=1.0e10), "f", help="wavelength (A)"),
    Flag("-energy", sub("-energy"), 1, _energy, "f", help="photon energy (eV)"),
    Flag("-fluence", sub("-fluence"), 1, _value("fluence"), "f", help="photons/m^2"),
    Flag("-flux", sub("-flux"), 1, _value("flux"), "f", help="photons/s"),
    Flag("-exposure", sub("-exposure"), 1, _value("exposure"), "f", help="s"),
    Flag("-beamsize", sub("-beamsize"), 1, _value("beamsize", div=1000.0), "f", help="mm"),
    Flag("-mosaic", lambda a: (("-mosaic" in a and len(a) == 7) or "-mosaici" in a or "-mosaic_spr" in a),
         1, _value("mosaic_spread", div=RTD), "f", help="mosaic spread (deg)"),
    Flag("-mosaic_domains", sub("-mosaic_dom"), 1, _value("mosaic_domains"), "i", help="number of mosaic domains"),
    Flag("-dispersion", sub("-dispersion"), 1, _value("dispersion", div=100.0), "f", help="percent"),
    Flag("-dispsteps", sub("-dispsteps"), 1, _value("dispsteps"), "i", help="wavelengths in the dispersion range"),
    Flag("-divergence", sub("-divergence"), 1, _values("hdivrange", "vdivrange", div=1000), "f",
         help="mrad"),
    Flag("-hdivrange", sub("-hdivrange"), 1, _value("hdivrange", div=1000.0), "f", help="horizontal divergence (mrad)"),
    Flag("-vdivrange", sub("-vdivrange"), 1, _value("vdivrange", div=1000.0), "f", help="vertical divergence (mrad)"),
    Flag("-hdivstep", sub("-hdivstep", length=9), 1, _value("hdivstep", div=1000.0), "f", help="horizontal divergence step (mrad)"),
    Flag("-hdivsteps", sub("-hdivsteps"), 1, _value("hdivsteps"), "i", help="horizontal divergence steps"),
    Flag("-vdivstep", sub("-vdivstep", length=9), 1, _value("vdivstep", div=1000.0), "f", help="vertical divergence step (mrad)"),
    Flag("-vdivsteps", sub("-vdivsteps"), 1, _value("vdivsteps"), "i", help="vertical divergence steps"),
    Flag("-divsteps", sub("-divsteps"), 1, _values("hdivsteps", "vdivsteps"), "i", help="divergence steps, both directions"),
    Flag("-round_div", sub("-round_div"), 0, _set(round_div=True), help="cut the divergence grid to an ellipse (default)"),
    Flag("-square_div", sub("-square_div"), 0, _set(round_div=False), help="keep the full divergence grid"),
    Flag("-adc", sub("-adc"), 1, _value("adc_offset"), "f", help="offset added to int and noise images (default 40)"),
    Flag("-phi", sub("-phi", length=4), 1, _value("phi0", div=RTD), "f", help="start angle (deg)"),
    Flag("-osc", sub("-osc"), 1, _value("osc", div=RTD), "f", help="oscillation range (deg)"),
    Flag("-phistep", sub("-phistep", length=8), 1, _value("phistep", div=RTD), "f", help="phi step (deg)"),
    Flag("-phisteps", sub("-phisteps"), 1, _value("phisteps"), "i", help="number of phi steps"),
    Flag("-dmin", sub("-dmin"), 1, _value("dmin", mul=1e-10), "f", help="resolution limit (A)"),
    Flag("-mat", sub("-mat"), 1, _value("matfile"), "s", help="MOSFLM orientation matrix file"),
    Flag("-hkl", sub("-hkl"), 1, _value("hklfile"), "s", help="structure factors: h k l F"),
    Flag("-default_F", sub("-default_F"), 1, _value("default_F"), "f", help="structure factor of every unlisted reflection"),
    Flag("-img", sub("-img"), 1, _value("imgfile"), "s", help="read the detector from an SMV header"),
    Flag("-mask", sub("-mask"), 1, _value("maskfile"), "s", help="SMV mask: 0 pixels are skipped"),
    Flag("-stolout", lambda a: "-stolout" in a and len(a) > 7, 1, _value("stolout_file"), "s", help="accepted (amorphous scattering output, unused by the reference)"),
    Flag("-stol", sub("-stol", length=5), 1, _stol(1e10), "s", help="accepted: amorphous F vs sin(theta)/lambda file (read, unused by the reference)"),
    Flag("-4stol", sub("-4stol", length=6), 1, _stol(1e10 / 4), "s", help="accepted: as -stol with 4 sin(theta)/lambda"),
    Flag("-Q", sub("-Q", length=2), 1, _stol(1e10 / math.pi / 4), "s", help="accepted: as -stol with Q"),
    Flag("-sourcefile", sub("-sourcefile"), 1, _value("sourcefile"), "s", help="sources: X Y Z weight lambda per line"),
    Flag("-floatfile", sub("-floatfile", "-floatimage"), 1, _value("floatfile"), "s", help="float image output (.bin raw float32, .tif TIFF)"),
    Flag("-intfile", sub("-intfile", "-intimage"), 1, _value("intfile"), "s", help="SMV image output (scaled, noiseless)"),
    Flag("-pgmfile", sub("-pgmfile", "-pgmimage"), 1, _value("pgmfile", write_pgm=True), "s", help="8-bit PGM preview output"),
    Flag("-noisefile", sub("-noisefile", "-noiseimage"), 1, _value("noisefile", calculate_noise=True), "s", help="SMV image output with Poisson noise"),
    Flag("-nonoise", sub("-nonoise"), 0, _set(calculate_noise=False), help="do not write the noise image"),
    Flag("-nopgm", sub("-nopgm"), 0, _set(write_pgm=False), help="do not write the PGM image"),
    Flag("-scale", sub("-scale"), 1, _value("intfile_scale"), "f", help="int image scale (default 55000/max)"),
    Flag("-pgmscale", sub("-pgmscale"), 1, _value("pgm_scale", write_pgm=True), "f", help="PGM scale (default from the image rms)"),
    Flag("-coherent", sub("-coherent"), 0, _set(coherent=True), help="accepted (no effect, as the reference)"),
    Flag("-printout", sub("-printout"), 0, _set(printout=True), help="accepted; also turns the progress meter off"),
    Flag("-noprogress", sub("-noprogress"), 0, _set(progress=False), help="no progress meter"),
    Flag("-progress", sub("-progress"), 0, _set(progress=True), help="progress meter on stderr (default)"),
    Flag("-interpolate", sub("-interpolate"), 0, _set(interpolate=1), help="tricubic interpolation of structure factors"),
    Flag("-nointerpolate", sub("-nointerpolate"), 0, _set(interpolate=0), help="nearest structure factor"),
    Flag("-round_xtal", sub("-round_xtal"), 0, _set(xtal_shape="ROUND"), help="ellipsoidal crystal (sinc3 spots)"),
    Flag("-square_xtal", sub("-square_xtal"), 0, _set(xtal_shape="SQUARE"), help="parallelepiped crystal (default)"),
    Flag("-gauss_xtal", sub("-gauss_xtal"), 0, _set(xtal_shape="GAUSS"), help="Gaussian spots"),
    Flag("-tophat_spots", sub("-binary_spots", "-tophat_spots"), 0, _set(xtal_shape="TOPHAT"), help="flat-top spots"),
    Flag("-fudge", sub("-fudge"), 1, _value("fudge"), "f", help="spot-size factor for round/gauss/tophat"),
    Flag("-printout_pixel", sub("-printout_pixel"), 2, _pixel_pair("printout_spixel", "printout_fpixel", False), "ii", help="accepted: fast slow"),
    Flag("-trace_pixel", sub("-trace_pixel", "-dump_pixel"), 2, _pixel_pair("trace_spixel", "trace_fpixel", True), "ii",
         help="trace one pixel: slow fast"),
    Flag("-seed", sub("-seed"), 1, _seed("seed"), "i", help="noise seed"),
    Flag("-mosaic_seed", sub("-mosaic_seed"), 1, _seed("mosaic_seed"), "i", help="seed of the mosaic domains"),
    Flag("-misset_seed", sub("-misset_seed"), 1, _seed("misset_seed"), "i", help="seed of -misset random"),
    Flag("-water", sub("-water"), 1, _value("water_size", div=1e6), "f", help="water droplet size (um)"),
    # nbnumba's own flags: matched exactly so they can never shadow a reference abbreviation.
    Flag("-out", exact("-out"), 1, _value("floatfile"), "s", help="same as -floatfile"),
    Flag("-precision", exact("-precision"), 1, _value("precision"), "s", help="double or single"),
    Flag("-device", exact("-device"), 1, _value("device"), "s", help="cpu, cuda or auto"),
    Flag("-nthreads", exact("-nthreads"), 1, _value("nthreads"), "i", help="CPU threads"),
    Flag("-fix_phi0", exact("-fix_phi0"), 0, _set(fix_phi0=True),
         help="rotate the lattice at phi = 0 too (reference: keeps the last step's lattice)"),
    Flag("-fix_pix0", exact("-fix_pix0"), 0, _set(fix_pix0=True),
         help="use -pix0_vector as the detector origin (reference: only selects CUSTOM)"),
    Flag("-fix_pix0_mm", exact("-fix_pix0_mm"), 0, _set(fix_pix0_mm=True),
         help="read -pix0_vector_mm in mm (reference: as metres)"),
    Flag("-fix_misset_random", exact("-fix_misset_random"), 0, _set(fix_misset_random=True),
         help="-misset random draws from the whole sphere (reference: a 90-radian cap)"),
    Flag("-fix_twotheta_axis", exact("-fix_twotheta_axis"), 0, _set(fix_twotheta_axis=True),
         help="-twotheta_axis no longer also sets -twotheta and the pivot"),
    Flag("-nexus", exact("-nexus"), 1, _value("nexusfile"), "s",
         help="NXmx (NeXus/HDF5) output: the noise image (int image with -nonoise) and the float image"),
]

CANONICAL = sorted({f.name.split()[0] for f in FLAGS})


def looks_numeric(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _number(flag: str, token: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise UserError(f"{flag} expects a number, got {token!r}") from None
    if not math.isfinite(value):
        raise UserError(f"{flag} expects a finite number, got {token!r}")
    return value


def _integer(flag: str, token: str) -> int:
    value = _number(flag, token)
    if value != int(value):
        raise UserError(f"{flag} expects an integer, got {token!r}")
    if not -2**63 < value < 2**63:
        raise UserError(f"{flag} expects a 64-bit integer, got {token!r}")
    return int(value)


def _convert(flag: Flag, arg: str, tokens: list[str]) -> list:
    values = []
    for kind, token in zip(flag.kinds, tokens):
        if kind == "f":
            values.append(_number(arg, token))
        elif kind == "i":
            values.append(_integer(arg, token))
        else:
            values.append(token)
    return values


def _take(argv: list[str], i: int, n: int, arg: str) -> list[str]:
    tokens = argv[i + 1:i + 1 + n]
    if len(tokens) < n or any(t.startswith("-") and not looks_numeric(t) for t in tokens):
        what = "a value" if n == 1 else f"{n} values"
        raise UserError(f"{arg} needs {what}")
    return tokens


def suggest(arg: str) -> str:
    close = difflib.get_close_matches(arg, CANONICAL, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_args(argv: list[str], base: Params | None = None) -> Params:
    """Build the run's parameters from a nanoBragg-style argument list (over `base`'s values)."""
    p = base if base is not None else Params()
    # Switches that change how other flags are read must hold wherever they stand on the line.
    p.fix_twotheta_axis = "-fix_twotheta_axis" in argv
    p.fix_pix0_mm = "-fix_pix0_mm" in argv
    consumed: set[int] = set()
    pix0_raw = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if i in consumed:
            i += 1
            continue
        if not arg.startswith("-") or looks_numeric(arg):
            raise UserError(f"unexpected argument {arg!r} (flags start with '-')")
        matched = False
        for flag in FLAGS:
            if not flag.matches(arg):
                continue
            if flag.name == "-misset random":
                if i + 1 < len(argv) and "rand" in argv[i + 1]:
                    p.misset = "random"
                    consumed.add(i + 1)
                    matched = True
                    break
                continue
            if flag.name == "-twotheta" and p.fix_twotheta_axis and "-twotheta_axis" in arg:
                continue
            tokens = _take(argv, i, flag.nargs, arg)
            values = _convert(flag, arg, tokens)
            consumed.update(range(i + 1, i + 1 + flag.nargs))
            matched = True
            if flag.name == "-pix0_vector":
                p.convention = "CUSTOM"
                pix0_raw = (values, arg.endswith("_mm"))
            else:
                flag.apply(p, values)
            if flag.stop:
                break
        if not matched:
            raise UserError(f"unknown flag {arg}{suggest(arg)}")
        i += 1
    if pix0_raw is not None:
        values, in_mm = pix0_raw
        divisor = 1000.0 if (in_mm and p.fix_pix0_mm) else 1.0
        p.pix0_user = [v / divisor for v in values]
    p.argv = list(argv)
    return p


def flag_table() -> list[tuple[str, int, str]]:
    """(flag, number of values, help) for every flag, for documentation."""
    return [(f.name, f.nargs, f.help) for f in FLAGS]

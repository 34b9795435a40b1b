"""The nanoBragg command line: its flag table and a parser with the reference's matching rules.

The reference matches each argument against every flag in a fixed order, mostly by substring
(`strstr`), sometimes also by length or exact equality, and an argument may match several flags
(`-twotheta_axis` also sets `-twotheta`; `-pix0_vector_mm` is read by `-pix0_vector`).  Users rely
on those abbreviations and synonyms (`-mosaic_domains`, `-detector_absorb`, `-wavelength`), so the
table keeps the reference's patterns and order; what it adds is strict values: a missing,
non-numeric or non-finite value, a value outside the flag's domain, or an argument that matches
no flag, is an error.  Each flag also carries its unit, default and domain (what `nbnumba flags`
prints) and the values that are legal but almost always a unit slip (warned about).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Callable

from ..errors import UserError
from .params import Params

RTD = 180.0 * (1.0 / math.pi)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


@dataclass(frozen=True)
class Range:
    """The numbers a flag accepts: between bounds (None: unbounded), each bound open or closed.
    `note` says what a value inside means where the reference gives it a meaning (0: automatic)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    note: str = ""

    def bounds(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.open_low else '['}{_num(self.low)}, {_num(self.high)}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {_num(self.low)}"
        return f"{'<' if self.open_high else '<='} {_num(self.high)}"

    def admits(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)

    def describe(self, kinds: str) -> str:
        text = ("integer " if "i" in kinds else "") + self.bounds()
        return f"{text} ({self.note})" if self.note else text

    def check(self, arg: str, kinds: str, values: list, tokens: list) -> None:
        for kind, value, token in zip(kinds, values, tokens):
            if not self.admits(value):
                what = "an integer" if kind == "i" else "a number"
                raise UserError(f"{arg} must be {what} {self.bounds()} (got {token})")


@dataclass(frozen=True)
class Rule:
    """A domain that bounds cannot say (several values together, words): `test` raises UserError."""

    text: str
    test: Callable[[str, list, list], None]

    def describe(self, kinds: str) -> str:
        return self.text

    def check(self, arg: str, kinds: str, values: list, tokens: list) -> None:
        self.test(arg, values, tokens)


@dataclass(frozen=True)
class Slip:
    """A legal value that is almost always a unit slip: above `limit` (or below it, zero excepted).
    `hint` turns the value into what the user probably meant."""

    limit: float
    above: bool
    hint: Callable[[float], str]

    def warning(self, arg: str, unit: str, value: float, token: str) -> str | None:
        if not (value > self.limit if self.above else 0 < value < self.limit):
            return None
        side = "more" if self.above else "less"
        return (f"{arg} {token} looks like a unit slip: {arg} takes {unit}, and {token} {unit} is {side} than "
                f"{_num(self.limit)} {unit} ({self.hint(value)})")


@dataclass(frozen=True)
class Flag:
    name: str  # canonical spelling, used in help and suggestions
    matches: Callable[[str], bool]
    nargs: int
    apply: Callable[[Params, list], None]
    kinds: str = ""  # one letter per value: f float, i integer, s string, a angle-or-word
    stop: bool = False  # the reference's `continue`: no later flag sees this argument
    help: str = ""
    unit: str = ""
    default: str = ""
    domain: Range | Rule | None = None
    slips: tuple = ()  # Slip: checked on the first value

    def describe_domain(self) -> str:
        if self.domain is not None:
            return self.domain.describe(self.kinds)
        return "any" if self.kinds and set(self.kinds) <= {"f", "i"} else ""


def _words(*choices: str) -> Rule:
    text = ", ".join(choices[:-1]) + " or " + choices[-1]

    def test(arg: str, values: list, tokens: list) -> None:
        if values[0] not in choices:
            raise UserError(f"{arg} must be {text} (got {values[0]!r})")

    return Rule(text, test)


def _pivot_word(arg: str, values: list, tokens: list) -> None:
    if "sample" not in values[0] and "beam" not in values[0]:
        raise UserError(f"{arg} must be sample or beam (got {values[0]!r})")


def _not_zero(arg: str, values: list, tokens: list) -> None:
    if not any(values):
        raise UserError(f"{arg} must not be 0 0 0 (it is a direction)")


def _absorption_depth(arg: str, values: list, tokens: list) -> None:
    if "inf" not in values[0] and _number(arg, values[0]) < 0:
        raise UserError(f"{arg} must be a number >= 0, or inf (got {values[0]})")


def _cell_exists(arg: str, values: list, tokens: list) -> None:
    """Edges > 0, angles in (0, 180) that close: each less than the sum of the other two, all three
    less than 360 (the volume factor 1 - cos^2 a - cos^2 b - cos^2 g + 2 cos a cos b cos g > 0)."""
    for value, token in zip(values[:3], tokens[:3]):
        if not value > 0:
            raise UserError(f"{arg}: the edges a b c must be numbers > 0 (got {token})")
    for value, token in zip(values[3:], tokens[3:]):
        if not 0 < value < 180:
            raise UserError(f"{arg}: the angles must be numbers in (0, 180) degrees (got {token})")
    ca, cb, cg = (math.cos(v / RTD) for v in values[3:])
    if not 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg > 0:
        raise UserError(f"{arg}: no unit cell has the angles {' '.join(tokens[3:])} (each must be less than the "
                        f"sum of the other two, and all three less than 360)")


def _roi_in_order(arg: str, values: list, tokens: list) -> None:
    for value, token in zip(values, tokens):
        if value < 0:
            raise UserError(f"{arg} must be 4 integers >= 0: xmin xmax ymin ymax (got {token})")
    xmin, xmax, ymin, ymax = values
    if xmin > xmax or ymin > ymax:
        raise UserError(f"{arg} bounds are out of order: xmin xmax ymin ymax needs xmin <= xmax and ymin <= ymax "
                        f"(got {' '.join(tokens)})")


POSITIVE = Range(0, open_low=True)
NON_NEGATIVE = Range(0)
COUNT = Range(1)
SEED = Range(-2147483647, 2147483647, note="a C int, as the reference")
TURN = Range(0, 360)
FRACTION_SIGNED = Range(-1, 1)
DIRECTION = Rule("not 0 0 0", _not_zero)
CELL = Rule("a b c > 0; angles in (0, 180) that close a cell", _cell_exists)
ROI = Rule("0 <= xmin <= xmax, 0 <= ymin <= ymax, overlapping the detector", _roi_in_order)
ABSORPTION = Rule(">= 0 (0 or inf: no absorption)", _absorption_depth)
MATRIX_FILE = Rule("3 lines of 3 finite numbers, right-handed (checked when read)", lambda arg, values, tokens: None)

UM_FOR_MM = Slip(5, True, lambda v: f"for {_num(v)} um give {_num(v / 1000)}")
M_FOR_MM = Slip(1, False, lambda v: f"for {_num(v)} m give {_num(v * 1000)}")
KEV_FOR_EV = Slip(100, False, lambda v: f"for {_num(v)} keV give {_num(v * 1000)}")
EV_FOR_A = Slip(20, True, lambda v: f"if {_num(v)} is in eV, give -energy {_num(v)} ({12398.42 / v:.4g} A)")
MM_FOR_UM = Slip(1, False, lambda v: f"for {_num(v)} mm give {_num(v * 1000)}")


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


def _cell(p: Params, values: list) -> None:
    p.user_cell = True
    p.cell = [values[0], values[1], values[2], values[3] / RTD, values[4] / RTD, values[5] / RTD]


def _misset(p: Params, values: list) -> None:
    p.misset = (values[0] / RTD, values[1] / RTD, values[2] / RTD)


def _pivot(p: Params, values: list) -> None:
    p.pivot = "SAMPLE" if "sample" in values[0] else "BEAM"


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
    p.lambda0 = (12398.42 / values[0]) / 1.0e10


def _roi(p: Params, values: list) -> None:
    p.roi = list(values)


def _stol(mult: float):
    def apply(p: Params, values: list) -> None:
        p.stol_file, p.stol_file_mult = values[0], mult

    return apply


def _seed_response(attr: str):
    """noisify's seeds: -N inside, as -seed; giving one turns the detector response on."""
    def apply(p: Params, values: list) -> None:
        setattr(p, attr, -values[0])
        p.response = True

    return apply


def _seed(attr: str):
    return lambda p, values: setattr(p, attr, -values[0])


def _pixel_pair(attr_s: str, attr_f: str, slow_first: bool):
    def apply(p: Params, values: list) -> None:
        s, f = (values[0], values[1]) if slow_first else (values[1], values[0])
        setattr(p, attr_s, s)
        setattr(p, attr_f, f)

    return apply


# The reference reads -N/-Na/-Nb/-Nc with atoi; nbnumba also takes a real number of cells where the
# crystal shape gives it a meaning (Gaussian, round and top-hat spots; model.simulation refuses
# one with the square shape), so that a refined N can be rendered.  A whole number means what it did.
CELLS = Range(0, note="0: one cell, as 1; a real number with -gauss_xtal, -round_xtal or -tophat_spots")

# Flags in the reference's order (the order decides which of several matching flags wins).
FLAGS: list[Flag] = [
    Flag("-Na", sub("-Na"), 1, _value("Na"), "f", stop=True, help="unit cells along a", unit="cells", default="1", domain=CELLS),
    Flag("-Nb", sub("-Nb"), 1, _value("Nb"), "f", stop=True, help="unit cells along b", unit="cells", default="1", domain=CELLS),
    Flag("-Nc", sub("-Nc"), 1, _value("Nc"), "f", stop=True, help="unit cells along c", unit="cells", default="1", domain=CELLS),
    Flag("-N", exact("-N"), 1, _values("Na", "Nb", "Nc"), "f", stop=True, help="unit cells in all directions", unit="cells", default="1", domain=CELLS),
    Flag("-cell", sub("-cell"), 6, _cell, "ffffff", help="unit cell a b c alpha beta gamma", unit="A, deg", default="from -mat", domain=CELL),
    Flag("-misset random", lambda a: a == "-misset", 1, None, "s", stop=True, help="random crystal orientation"),
    Flag("-misset", exact("-misset"), 3, _misset, "fff", help="crystal rotations about x, y, z", unit="deg", default="0 0 0"),
    Flag("-samplesize", sub("-samplesize", "-sample_size"), 1, _values("sample_x", "sample_y", "sample_z", div=1000), "f", help="crystal size", unit="mm", default="0", domain=Range(0, note="0: from -N"), slips=(UM_FOR_MM,)),
    Flag("-sample_thick", sub("-sample_thick", "-sample_x"), 1, _value("sample_x", div=1000.0), "f", help="crystal size along x", unit="mm", default="0", domain=Range(0, note="0: from -Na"), slips=(UM_FOR_MM,)),
    Flag("-sample_width", sub("-sample_width", "-sample_y", "-width"), 1, _value("sample_y", div=1000.0), "f", help="crystal size along y", unit="mm", default="0", domain=Range(0, note="0: from -Nb"), slips=(UM_FOR_MM,)),
    Flag("-sample_height", sub("-sample_heigh", "-sample_z", "-heigh"), 1, _value("sample_z", div=1000.0), "f", help="crystal size along z", unit="mm", default="0", domain=Range(0, note="0: from -Nc"), slips=(UM_FOR_MM,)),
    Flag("-xtalsize", sub("-xtalsize", "-xtal_size"), 1, _values("sample_x", "sample_y", "sample_z", div=1000), "f", help="crystal size", unit="mm", default="0", domain=Range(0, note="0: from -N"), slips=(UM_FOR_MM,)),
    Flag("-xtal_thick", sub("-xtal_thick", "-xtal_x"), 1, _value("sample_x", div=1000.0), "f", help="crystal size along x", unit="mm", default="0", domain=Range(0, note="0: from -Na"), slips=(UM_FOR_MM,)),
    Flag("-xtal_width", sub("-xtal_width", "-xtal_y", "-width"), 1, _value("sample_y", div=1000.0), "f", help="crystal size along y", unit="mm", default="0", domain=Range(0, note="0: from -Nb"), slips=(UM_FOR_MM,)),
    Flag("-xtal_height", sub("-xtal_heigh", "-xtal_z", "-heigh"), 1, _value("sample_z", div=1000.0), "f", help="crystal size along z", unit="mm", default="0", domain=Range(0, note="0: from -Nc"), slips=(UM_FOR_MM,)),
    Flag("-density", sub("-density", "-sample_den"), 1, _value("density", mul=1e6), "f", help="sample density (reported only)", unit="g/cm^3", default="1", domain=POSITIVE),
    Flag("-MW", lambda a: a == "-MW" or "-molec" in a, 1, _value("molecular_weight"), "f", help="molecular weight (reported only)", unit="Da", default="18", domain=POSITIVE),
    Flag("-Xbeam", sub("-Xbeam"), 1, _value("Xbeam", div=1000.0, pivot="BEAM"), "f", help="beam centre, fast", unit="mm", default="centre"),
    Flag("-Ybeam", sub("-Ybeam"), 1, _value("Ybeam", div=1000.0, pivot="BEAM"), "f", help="beam centre, slow", unit="mm", default="centre"),
    Flag("-Xclose", sub("-Xclose"), 1, _value("Xclose", div=1000.0, pivot="SAMPLE"), "f", help="near point, fast; pivots about the sample", unit="mm", default="centre"),
    Flag("-Yclose", sub("-Yclose"), 1, _value("Yclose", div=1000.0, pivot="SAMPLE"), "f", help="near point, slow; pivots about the sample", unit="mm", default="centre"),
    Flag("-ORGX", sub("-ORGX"), 1, _value("ORGX", pivot="SAMPLE"), "f", help="XDS origin, fast", unit="pixels", default="centre"),
    Flag("-ORGY", sub("-ORGY"), 1, _value("ORGY", pivot="SAMPLE"), "f", help="XDS origin, slow", unit="pixels", default="centre"),
    Flag("-pivot", sub("-pivot"), 1, _pivot, "s", help="detector pivot", default="beam (xds, dials: sample)", domain=Rule("sample or beam", _pivot_word)),
    Flag("-mosflm", sub("-mosflm"), 0, _convention("MOSFLM", "BEAM"), help="MOSFLM axes and beam centre convention", default="on"),
    Flag("-xds", sub("-xds"), 0, _convention("XDS", "SAMPLE"), help="XDS convention"),
    Flag("-adxv", sub("-adxv"), 0, _convention("ADXV", "BEAM"), help="ADXV convention"),
    Flag("-denzo", sub("-denzo"), 0, _convention("DENZO", "BEAM"), help="DENZO convention"),
    Flag("-dials", sub("-dials"), 0, _convention("DIALS", "BEAM"), help="DIALS convention"),
    Flag("-fdet_vector", sub("-fdet_vector"), 3, _vector("fdet_vector"), "fff", help="fast detector axis (selects CUSTOM)", default="convention", domain=DIRECTION),
    Flag("-sdet_vector", sub("-sdet_vector"), 3, _vector("sdet_vector"), "fff", help="slow detector axis (selects CUSTOM)", default="convention", domain=DIRECTION),
    Flag("-odet_vector", sub("-odet_vector"), 3, _vector("odet_vector"), "fff", help="detector normal (selects CUSTOM; not of length 1: fdet x sdet, as the reference)", default="convention"),
    Flag("-beam_vector", sub("-beam_vector"), 3, _vector("beam_vector"), "fff", help="beam direction (selects CUSTOM)", default="convention", domain=DIRECTION),
    Flag("-polar_vector", sub("-polar_vector"), 3, _vector("polar_vector"), "fff", help="E-vector of the beam (selects CUSTOM)", default="convention", domain=DIRECTION),
    Flag("-spindle_axis", sub("-spindle_axis"), 3, _vector("spindle_vector"), "fff", help="phi rotation axis (selects CUSTOM)", default="convention", domain=DIRECTION),
    Flag("-twotheta_axis", sub("-twotheta_axis"), 3, _vector("twotheta_axis"), "fff", help="two-theta rotation axis (selects CUSTOM)", default="convention", domain=DIRECTION),
    Flag("-pix0_vector", sub("-pix0_vector"), 3, None, "fff", help="detector origin (-pix0_vector_mm: in mm)", unit="m", default="from the beam centre"),
    Flag("-distance", sub("-distance"), 1, _value("distance", div=1000.0, pivot="BEAM"), "f", help="sample to detector distance along the beam", unit="mm", default="100", domain=POSITIVE, slips=(M_FOR_MM,)),
    Flag("-close_distance", sub("-close_distance"), 1, _value("close_distance", div=1000.0, pivot="SAMPLE"), "f", help="sample to detector plane distance; pivots about the sample", unit="mm", default="from -distance", domain=POSITIVE, slips=(M_FOR_MM,)),
    Flag("-detector_abs", sub("-detector_abs"), 1, _detector_abs, "s", help="sensor attenuation depth", unit="um", default="inf", domain=ABSORPTION),
    Flag("-detector_thick", sub("-detector_thick", length=15), 1, _value("detector_thick", mul=1e-6), "f", help="sensor thickness", unit="um", default="0", domain=Range(0, note="0: a thin sensor"), slips=(MM_FOR_UM,)),
    Flag("-detector_thicksteps", sub("-detector_thicksteps"), 1, _value("detector_thicksteps"), "i", help="sensor layers", unit="layers", default="auto", domain=COUNT),
    Flag("-thicksteps", sub("-thicksteps"), 1, _value("detector_thicksteps"), "i", help="sensor layers", unit="layers", default="auto", domain=COUNT),
    Flag("-twotheta", sub("-twotheta"), 1, _value("detector_twotheta", div=RTD, pivot="SAMPLE"), "f", help="detector two-theta; pivots about the sample", unit="deg", default="0"),
    Flag("-detector_rotx", sub("-detector_rotx"), 1, _value("detector_rotx", div=RTD), "f", help="detector rotation about x", unit="deg", default="0"),
    Flag("-detector_roty", sub("-detector_roty"), 1, _value("detector_roty", div=RTD), "f", help="detector rotation about y", unit="deg", default="0"),
    Flag("-detector_rotz", sub("-detector_rotz"), 1, _value("detector_rotz", div=RTD), "f", help="detector rotation about z", unit="deg", default="0"),
    Flag("-detsize", sub("-detsize", length=8), 1, _values("detsize_f", "detsize_s", div=1000), "f", help="detector size", unit="mm", default="102.4", domain=POSITIVE, slips=(Slip(2000, True, lambda v: f"for {_num(v)} um give {_num(v / 1000)}"),)),
    Flag("-detsize_f", sub("-detsize_f"), 1, _value("detsize_f", div=1000.0), "f", help="detector size, fast", unit="mm", default="102.4", domain=POSITIVE, slips=(Slip(2000, True, lambda v: f"for {_num(v)} um give {_num(v / 1000)}"),)),
    Flag("-detsize_s", sub("-detsize_s"), 1, _value("detsize_s", div=1000.0), "f", help="detector size, slow", unit="mm", default="102.4", domain=POSITIVE, slips=(Slip(2000, True, lambda v: f"for {_num(v)} um give {_num(v / 1000)}"),)),
    Flag("-detpixels", sub("-detpixels", length=10), 1, _values("fpixels", "spixels"), "i", help="detector size", unit="pixels", default="from -detsize", domain=COUNT),
    Flag("-detpixels_x", sub("-detpixels_f", "-detpixels_x"), 1, _value("fpixels"), "i", help="detector size, fast", unit="pixels", default="from -detsize", domain=COUNT),
    Flag("-detpixels_y", sub("-detpixels_s", "-detpixels_y"), 1, _value("spixels"), "i", help="detector size, slow", unit="pixels", default="from -detsize", domain=COUNT),
    Flag("-curved_det", sub("-curved_det"), 0, _set(curved_detector=True), help="all pixels at the same distance"),
    Flag("-pixel", sub("-pixel"), 1, _value("pixel_size", div=1000.0), "f", help="pixel size", unit="mm", default="0.1", domain=POSITIVE, slips=(UM_FOR_MM, Slip(0.001, False, lambda v: f"for {_num(v)} m give {_num(v * 1000)}"))),
    Flag("-point_pixel", sub("-point_pixel"), 0, _set(point_pixel=True), help="no pixel obliquity: solid angle 1/R^2"),
    Flag("-polar", sub("-polar", length=6), 1, _value("polarization", nopolar=False), "f", help="Kahn polarization factor", default="0", domain=FRACTION_SIGNED),
    Flag("-nopolar", sub("-nopolar"), 0, _set(nopolar=True), help="no polarization correction"),
    Flag("-oversample_thick", sub("-oversample_thick"), 0, _set(oversample_thick=True), stop=True, help="recompute the capture fraction per sub-pixel"),
    Flag("-oversample_polar", sub("-oversample_polar"), 0, _set(oversample_polar=True), stop=True, help="recompute polarization per sub-pixel"),
    Flag("-oversample_omega", sub("-oversample_omega"), 0, _set(oversample_omega=True), stop=True, help="recompute the solid angle per sub-pixel"),
    Flag("-oversample", sub("-oversample"), 1, _value("oversample"), "i", help="sub-pixels per pixel side (leave it out for automatic)", unit="sub-pixels", default="auto", domain=COUNT),
    Flag("-roi", sub("-roi"), 4, _roi, "iiii", help="xmin xmax ymin ymax, inclusive", unit="pixels", default="whole detector", domain=ROI),
    Flag("-lambda", sub("-lambda", "-wave"), 1, _value("lambda0", div=1.0e10), "f", help="wavelength", unit="A", default="1", domain=POSITIVE, slips=(EV_FOR_A,)),
    Flag("-energy", sub("-energy"), 1, _energy, "f", help="photon energy", unit="eV", default="from -lambda", domain=POSITIVE, slips=(KEV_FOR_EV,)),
    Flag("-fluence", sub("-fluence"), 1, _value("fluence"), "f", help="integrated beam intensity", unit="photons/m^2", default="1.26e29", domain=POSITIVE),
    Flag("-flux", sub("-flux"), 1, _value("flux"), "f", help="beam flux (with -exposure and -beamsize)", unit="photons/s", default="0", domain=Range(0, note="0: from -fluence")),
    Flag("-exposure", sub("-exposure"), 1, _value("exposure"), "f", help="exposure time", unit="s", default="1", domain=POSITIVE),
    Flag("-beamsize", sub("-beamsize"), 1, _value("beamsize", div=1000.0), "f", help="beam size (clips the sample)", unit="mm", default="0.1", domain=POSITIVE, slips=(Slip(10, True, lambda v: f"for {_num(v)} um give {_num(v / 1000)}"),)),
    Flag("-mosaic", lambda a: (("-mosaic" in a and len(a) == 7) or "-mosaici" in a or "-mosaic_spr" in a), 1, _value("mosaic_spread", div=RTD), "f", help="mosaic spread (90: powder)", unit="deg", default="0", domain=Range(0, 90)),
    Flag("-mosaic_domains", sub("-mosaic_dom"), 1, _value("mosaic_domains"), "i", help="number of mosaic domains", unit="domains", default="1 (10 with -mosaic)", domain=COUNT),
    Flag("-dispersion", sub("-dispersion"), 1, _value("dispersion", div=100.0), "f", help="spectral width", unit="%", default="0", domain=Range(0, 100)),
    Flag("-dispsteps", sub("-dispsteps"), 1, _value("dispsteps"), "i", help="wavelengths in the dispersion range", unit="wavelengths", default="auto", domain=COUNT),
    Flag("-divergence", sub("-divergence"), 1, _values("hdivrange", "vdivrange", div=1000), "f", help="beam divergence, both directions", unit="mrad", default="0", domain=NON_NEGATIVE),
    Flag("-hdivrange", sub("-hdivrange"), 1, _value("hdivrange", div=1000.0), "f", help="horizontal divergence", unit="mrad", default="0", domain=NON_NEGATIVE),
    Flag("-vdivrange", sub("-vdivrange"), 1, _value("vdivrange", div=1000.0), "f", help="vertical divergence", unit="mrad", default="0", domain=NON_NEGATIVE),
    Flag("-hdivstep", sub("-hdivstep", length=9), 1, _value("hdivstep", div=1000.0), "f", help="horizontal divergence step", unit="mrad", default="auto", domain=POSITIVE),
    Flag("-hdivsteps", sub("-hdivsteps"), 1, _value("hdivsteps"), "i", help="horizontal divergence steps", unit="steps", default="auto", domain=COUNT),
    Flag("-vdivstep", sub("-vdivstep", length=9), 1, _value("vdivstep", div=1000.0), "f", help="vertical divergence step", unit="mrad", default="auto", domain=POSITIVE),
    Flag("-vdivsteps", sub("-vdivsteps"), 1, _value("vdivsteps"), "i", help="vertical divergence steps", unit="steps", default="auto", domain=COUNT),
    Flag("-divsteps", sub("-divsteps"), 1, _values("hdivsteps", "vdivsteps"), "i", help="divergence steps, both directions", unit="steps", default="auto", domain=COUNT),
    Flag("-round_div", sub("-round_div"), 0, _set(round_div=True), help="cut the divergence grid to an ellipse", default="on"),
    Flag("-square_div", sub("-square_div"), 0, _set(round_div=False), help="keep the full divergence grid"),
    Flag("-adc", sub("-adc"), 1, _value("adc_offset"), "f", help="offset added to int and noise images", unit="ADU", default="40", domain=Range(0, 65535)),
    Flag("-phi", sub("-phi", length=4), 1, _value("phi0", div=RTD), "f", help="start angle", unit="deg", default="0"),
    Flag("-osc", sub("-osc"), 1, _value("osc", div=RTD), "f", help="oscillation range", unit="deg", default="auto", domain=TURN),
    Flag("-phistep", sub("-phistep", length=8), 1, _value("phistep", div=RTD), "f", help="phi step", unit="deg", default="auto", domain=Range(0, 360, open_low=True)),
    Flag("-phisteps", sub("-phisteps"), 1, _value("phisteps"), "i", help="number of phi steps", unit="steps", default="auto", domain=COUNT),
    Flag("-dmin", sub("-dmin"), 1, _value("dmin", mul=1e-10), "f", help="resolution limit", unit="A", default="0", domain=Range(0, note="0: no limit")),
    Flag("-mat", sub("-mat"), 1, _value("matfile"), "s", help="MOSFLM orientation matrix file", unit="file", domain=MATRIX_FILE),
    Flag("-hkl", sub("-hkl"), 1, _value("hklfile"), "s", help="structure factors: h k l F", unit="file"),
    Flag("-default_F", sub("-default_F"), 1, _value("default_F"), "f", help="structure factor of every unlisted reflection", default="0", domain=Range(0, note="0: none")),
    Flag("-img", sub("-img"), 1, _value("imgfile"), "s", help="read the detector from an SMV header", unit="file"),
    Flag("-mask", sub("-mask"), 1, _value("maskfile"), "s", help="SMV mask: 0 pixels are skipped", unit="file"),
    Flag("-stolout", lambda a: "-stolout" in a and len(a) > 7, 1, _value("stolout_file"), "s", help="accepted (amorphous scattering output, unused by the reference)", unit="file"),
    Flag("-stol", sub("-stol", length=5), 1, _stol(1e10), "s", help="accepted: amorphous F vs sin(theta)/lambda file (read, unused by the reference)", unit="file"),
    Flag("-4stol", sub("-4stol", length=6), 1, _stol(1e10 / 4), "s", help="accepted: as -stol with 4 sin(theta)/lambda", unit="file"),
    Flag("-Q", sub("-Q", length=2), 1, _stol(1e10 / math.pi / 4), "s", help="accepted: as -stol with Q", unit="file"),
    Flag("-sourcefile", sub("-sourcefile"), 1, _value("sourcefile"), "s", help="sources: X Y Z weight lambda per line", unit="file"),
    Flag("-floatfile", sub("-floatfile", "-floatimage"), 1, _value("floatfile"), "s", help="float image output (.bin raw float32, .tif TIFF)", unit="file", default="floatimage.bin"),
    Flag("-intfile", sub("-intfile", "-intimage"), 1, _value("intfile"), "s", help="SMV image output (scaled, noiseless)", unit="file", default="intimage.img"),
    Flag("-pgmfile", sub("-pgmfile", "-pgmimage"), 1, _value("pgmfile", write_pgm=True), "s", help="8-bit PGM preview output", unit="file", default="image.pgm"),
    Flag("-noisefile", sub("-noisefile", "-noiseimage"), 1, _value("noisefile", calculate_noise=True), "s", help="SMV image output with Poisson noise", unit="file", default="noiseimage.img"),
    Flag("-nonoise", sub("-nonoise"), 0, _set(calculate_noise=False), help="do not write the noise image"),
    Flag("-nopgm", sub("-nopgm"), 0, _set(write_pgm=False), help="do not write the PGM image"),
    Flag("-scale", sub("-scale"), 1, _value("intfile_scale"), "f", help="int image scale", default="0", domain=Range(0, note="0: automatic, 55000/max")),
    Flag("-pgmscale", sub("-pgmscale"), 1, _value("pgm_scale", write_pgm=True), "f", help="PGM scale", default="0", domain=Range(0, note="0: automatic, from the rms")),
    Flag("-coherent", sub("-coherent"), 0, _set(coherent=True), help="accepted (no effect, as the reference)"),
    Flag("-printout", sub("-printout"), 0, _set(printout=True), help="accepted; also turns the progress meter off"),
    Flag("-noprogress", sub("-noprogress"), 0, _set(progress=False), help="no progress meter"),
    Flag("-progress", sub("-progress"), 0, _set(progress=True), help="progress meter on stderr", default="on"),
    Flag("-interpolate", sub("-interpolate"), 0, _set(interpolate=1), help="tricubic interpolation of structure factors", default="auto: on if N <= 2"),
    Flag("-nointerpolate", sub("-nointerpolate"), 0, _set(interpolate=0), help="nearest structure factor"),
    Flag("-round_xtal", sub("-round_xtal"), 0, _set(xtal_shape="ROUND"), help="ellipsoidal crystal (sinc3 spots)"),
    Flag("-square_xtal", sub("-square_xtal"), 0, _set(xtal_shape="SQUARE"), help="parallelepiped crystal", default="on"),
    Flag("-gauss_xtal", sub("-gauss_xtal"), 0, _set(xtal_shape="GAUSS"), help="Gaussian spots"),
    Flag("-tophat_spots", sub("-binary_spots", "-tophat_spots"), 0, _set(xtal_shape="TOPHAT"), help="flat-top spots"),
    Flag("-fudge", sub("-fudge"), 1, _value("fudge"), "f", help="spot-size factor for round/gauss/tophat", default="1", domain=POSITIVE),
    Flag("-printout_pixel", sub("-printout_pixel"), 2, _pixel_pair("printout_spixel", "printout_fpixel", False), "ii", help="accepted: fast slow", unit="pixels", default="none", domain=NON_NEGATIVE),
    Flag("-trace_pixel", sub("-trace_pixel", "-dump_pixel"), 2, _pixel_pair("trace_spixel", "trace_fpixel", True), "ii", help="trace one pixel: slow fast", unit="pixels", default="none", domain=NON_NEGATIVE),
    Flag("-seed", sub("-seed"), 1, _seed("seed"), "i", help="noise seed", default="the clock", domain=SEED),
    Flag("-mosaic_seed", sub("-mosaic_seed"), 1, _seed("mosaic_seed"), "i", help="seed of the mosaic domains", default="12345678", domain=SEED),
    Flag("-misset_seed", sub("-misset_seed"), 1, _seed("misset_seed"), "i", help="seed of -misset random", default="-seed", domain=SEED),
    Flag("-water", sub("-water"), 1, _value("water_size", div=1e6), "f", help="water droplet size", unit="um", default="0", domain=NON_NEGATIVE),
    # nbnumba's own flags: matched exactly so they can never shadow a reference abbreviation.
    Flag("-out", exact("-out"), 1, _value("floatfile"), "s", help="same as -floatfile", unit="file"),
    Flag("-precision", exact("-precision"), 1, _value("precision"), "s", help="floating-point precision", default="double", domain=_words("double", "single")),
    Flag("-device", exact("-device"), 1, _value("device"), "s", help="where to render (auto: the GPU when there is one)", default="cpu", domain=_words("cpu", "cuda", "auto")),
    Flag("-nthreads", exact("-nthreads"), 1, _value("nthreads"), "i", help="CPU threads", unit="threads", default="0", domain=Range(0, note="0: every CPU")),
    Flag("-force", exact("-force"), 0, _set(force=True), help="render even a job past the work limits (automatic oversampling above 64, more than a day)"),
    Flag("-fix_phi0", exact("-fix_phi0"), 0, _set(fix_phi0=True), help="rotate the lattice at phi = 0 too (reference: keeps the last step's lattice)"),
    Flag("-fix_pix0", exact("-fix_pix0"), 0, _set(fix_pix0=True), help="use -pix0_vector as the detector origin (reference: only selects CUSTOM)"),
    Flag("-fix_pix0_mm", exact("-fix_pix0_mm"), 0, _set(fix_pix0_mm=True), help="read -pix0_vector_mm in mm (reference: as metres)"),
    Flag("-fix_misset_random", exact("-fix_misset_random"), 0, _set(fix_misset_random=True), help="-misset random draws from the whole sphere (reference: a 90-radian cap)"),
    Flag("-fix_twotheta_axis", exact("-fix_twotheta_axis"), 0, _set(fix_twotheta_axis=True), help="-twotheta_axis no longer also sets -twotheta and the pivot"),
    Flag("-fix_smv_keys", exact("-fix_smv_keys"), 0, _set(fix_smv_keys=True), help="SMV headers also carry ADC_OFFSET, IMAGE_PEDESTAL (-adc) and TIME (-exposure), the keys dxtbx's SMV readers take (reference: none; dxtbx then assumes a pedestal of 1)"),
    Flag("-nexus", exact("-nexus"), 1, _value("nexusfile"), "s", help="NXmx (NeXus/HDF5) output: the noise image (int image with -nonoise) and the float image", unit="file"),
    # The amorphous background (nonBragg) and the detector response (noisify) in the same run: named
    # apart from nanoBragg's crystal-size flags, matched exactly.
    Flag("-bg_stol", exact("-bg_stol"), 1, _value("bg_stol_file", bg_stol_unit=1e10), "s", help="add an amorphous background on the run's detector and beam: its F vs sin(theta)/lambda table (nonBragg's -stol)", unit="file"),
    Flag("-bg_4stol", exact("-bg_4stol"), 1, _value("bg_stol_file", bg_stol_unit=1e10 / 4), "s", help="as -bg_stol with 4 sin(theta)/lambda", unit="file"),
    Flag("-bg_Q", exact("-bg_Q"), 1, _value("bg_stol_file", bg_stol_unit=1e10 / 3.141592653589793 / 4), "s", help="as -bg_stol with Q = 4 pi sin(theta)/lambda", unit="file"),
    Flag("-bg_thick", exact("-bg_thick"), 1, _value("bg_thick", div=1000.0), "f", help="thickness of the background's sample along the beam", unit="mm", default="0.1", domain=POSITIVE),
    Flag("-bg_density", exact("-bg_density"), 1, _value("bg_density", mul=1e6), "f", help="density of the background's sample", unit="g/cm^3", default="1", domain=POSITIVE),
    Flag("-bg_MW", exact("-bg_MW"), 1, _value("bg_MW"), "f", help="molecular weight of the background's sample", unit="g/mol", default="18", domain=POSITIVE),
    Flag("-bg_fix_spline", exact("-bg_fix_spline"), 0, _set(bg_fix_spline=True), help="the background's F stays between its two table neighbours (nonBragg's -fix_spline; reference: the cubic overshoots into negative photons)"),
    Flag("-readout", exact("-readout"), 1, _value("readout_noise", response=True), "f", help="detector response (noisify): read-out noise", unit="ADU rms", default="0", domain=NON_NEGATIVE),
    Flag("-flicker", exact("-flicker"), 1, _value("flicker_noise", response=True), "f", help="detector response: beam flicker (fraction)", default="0", domain=NON_NEGATIVE),
    Flag("-calibration", exact("-calibration"), 1, _value("calibration_noise", response=True), "f", help="detector response: static per-pixel gain error (fraction)", default="0.03", domain=NON_NEGATIVE),
    Flag("-calib_seed", exact("-calib_seed"), 1, _seed_response("calib_seed"), "i", help="detector response: seed of the calibration error", default="123456789", domain=SEED),
    Flag("-psf", exact("-psf"), 1, _value("psf", response=True), "s", help="detector response: point-spread function", domain=_words("gauss", "fiber")),
    Flag("-psf_fwhm", exact("-psf_fwhm"), 1, _value("psf_fwhm", mul=1e-6, response=True), "f", help="detector response: PSF full width at half maximum", unit="um", default="46", domain=POSITIVE),
    Flag("-psf_radius", exact("-psf_radius"), 1, _value("psf_radius", response=True), "i", help="detector response: PSF rendering radius", unit="pixels", default="0", domain=Range(0, note="0: chosen per pixel")),
    Flag("-gain", exact("-gain"), 1, _value("gain", response=True), "f", help="detector response: ADU per photon", unit="ADU", default="1", domain=POSITIVE),
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


def _check(flag: Flag, arg: str, values: list, tokens: list, p: Params) -> None:
    """Refuse a value outside the flag's domain; note one that looks like a unit slip."""
    if flag.domain is not None:
        flag.domain.check(arg, flag.kinds, values, tokens)
    for slip in flag.slips:
        message = slip.warning(arg, flag.unit, values[0], tokens[0])
        slip = (f"{arg} {tokens[0]} (in {flag.unit})", message)
        if message is not None and slip not in p.slips:
            p.slips.append(slip)


def _take(argv: list[str], i: int, n: int, arg: str) -> list[str]:
    tokens = argv[i + 1:i + 1 + n]
    if len(tokens) < n or any(t.startswith("-") and not looks_numeric(t) for t in tokens):
        what = "a value" if n == 1 else f"{n} values"
        raise UserError(f"{arg} needs {what}")
    return tokens


def suggest(arg: str, names=CANONICAL) -> str:
    close = difflib.get_close_matches(arg, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_args(argv: list[str], base: Params | None = None, table: list[Flag] = FLAGS) -> Params:
    """Build the run's parameters from a nanoBragg-style argument list (over `base`'s values),
    matching each argument against `table` (nanoBragg's flags, or a companion program's)."""
    p = base if base is not None else Params()
    names = CANONICAL if table is FLAGS else sorted({f.name.split()[0] for f in table})
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
        for flag in table:
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
            _check(flag, arg, values, tokens, p)
            consumed.update(range(i + 1, i + 1 + flag.nargs))
            matched = True
            if flag.apply is None:  # nanoBragg's -pix0_vector: read once every flag is known
                p.convention = "CUSTOM"
                pix0_raw = (values, arg.endswith("_mm"))
            else:
                flag.apply(p, values)
            if flag.stop:
                break
        if not matched:
            raise UserError(f"unknown flag {arg}{suggest(arg, names)}")
        i += 1
    if pix0_raw is not None:
        values, in_mm = pix0_raw
        divisor = 1000.0 if (in_mm and p.fix_pix0_mm) else 1.0
        p.pix0_user = [v / divisor for v in values]
    p.argv = list(argv)
    return p


def flag_table() -> list[tuple[str, int, str, str, str, str]]:
    """(flag, number of values, default, unit, domain, help) for every flag, for documentation."""
    return [(f.name, f.nargs, f.default, f.unit, f.describe_domain(), f.help) for f in FLAGS]


@dataclass(frozen=True)
class Option:
    """An option of `sweep` and `batch` themselves (nbnumba/batch/commands.py reads them)."""

    name: str
    nargs: int
    default: str
    domain: str
    commands: str
    help: str


SWEEP_OPTIONS: list[Option] = [
    Option("-nframes", 1, "required", "integer >= 1", "sweep", "number of frames"),
    Option("-first", 1, "1", "integer >= 1", "sweep", "number of the first frame (renders a part of the same sweep)"),
    Option("-outdir", 1, ".", "folder (created)", "sweep, batch", "where the frames and the manifest go"),
    Option("-prefix", 1, "image (batch: the job file's name)", "", "sweep, batch", "frame names: NAME_00001.img"),
    Option("-floats", 0, "", "", "sweep, batch", "also the float images NAME_00001.bin"),
    Option("-noise", 0, "", "", "sweep, batch", "also the Poisson-noise images NAME_noise_00001.img"),
    Option("-pgm", 0, "", "", "sweep, batch", "also the PGM previews NAME_00001.pgm"),
    Option("-workers", 1, "one per GPU, else min(CPUs, 8)", "integer >= 1", "sweep, batch", "worker processes on this machine"),
    Option("-scheduler", 1, "none", "tcp://HOST:PORT", "sweep, batch", "render on an existing Dask cluster"),
    Option("-max_frames", 1, "all", "integer >= 0", "sweep, batch", "render at most M frames, then stop (0: only report what is left)"),
    Option("-noprogress", 0, "", "", "sweep, batch", "no progress meter"),
    Option("-format", 1, "smv", "smv or nexus (sweep), smv or hdf5 (batch)", "sweep, batch",
           "nexus: the whole sweep in one NXmx file DIR/NAME.nxs; hdf5: the batch as one training-set file"),
    Option("-compression", 1, "gzip", "gzip, none or bslz4 (needs hdf5plugin)", "sweep, batch",
           "compression of the HDF5/NeXus frames"),
    Option("-images", 1, "float (noise with -noise)", "float, int or noise", "batch", "which images the HDF5 training set holds"),
    Option("-out", 1, "DIR/NAME.h5", "file", "batch", "the HDF5 training-set file"),
]


def sweep_table() -> list[tuple[str, int, str, str, str, str]]:
    """(option, number of values, default, domain, commands, help) for the sweep and batch options."""
    return [(o.name, o.nargs, o.default, o.domain, o.commands, o.help) for o in SWEEP_OPTIONS]

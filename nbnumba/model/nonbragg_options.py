"""The nonBragg command line: its flag table, in nonBragg's order, and a parser with its rules.

nonBragg matches arguments as nanoBragg does (substrings, some lengths, every matching flag
applies), so the flags the two programs share come from `options.FLAGS` itself and only
nonBragg's own spellings and meanings are defined here.  Values are checked strictly, as in `run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .options import FLAGS, Flag, _set, _stol, _value, exact, parse_args, sub
from .params import Params

SHARED = {flag.name: flag for flag in FLAGS}


@dataclass
class NonBraggParams(Params):
    """nanoBragg's parameters with nonBragg's defaults (a 0.1 mm cube of sample) and additions."""

    sample_x: float = 1e-4
    sample_y: float = 1e-4
    sample_z: float = 1e-4
    molecules: float = 0.0
    quantum_gain: float = 1.0
    fmap: bool = False
    ignore_values: list = field(default_factory=list)  # -img pixel values that mark invalid pixels
    noreject: bool = False
    fix_spline: bool = False
    fix_stats: bool = False
    fix_reject: bool = False
    fix_roi: bool = False
    fix_steps: bool = False


def _ignore(p: NonBraggParams, values: list) -> None:
    p.ignore_values = [*p.ignore_values, values[0]]


def _pix0(p: Params, values: list) -> None:
    p.pix0_user = [float(v) for v in values]


def _shared(*names: str) -> list[Flag]:
    return [SHARED[name] for name in names]


def _reworded(name: str, help: str) -> Flag:
    """A shared flag whose meaning in nonBragg needs other words (the sample, not a crystal)."""
    return replace(SHARED[name], help=help)


# nonBragg's flags in its order (the order decides which of several matching flags wins)
NONBRAGG_FLAGS: list[Flag] = [
    _reworded("-samplesize", "sample size: a cube (mm)"),
    Flag("-sample_thick", sub("-sample_thick", "-sample_x", "-thick"), 1, _value("sample_x", div=1000), "f",
         help="sample thickness along the beam (mm); also -thickness"),
    _reworded("-sample_width", "sample width, across the beam (mm)"),
    _reworded("-sample_height", "sample height, across the beam (mm)"),
    _reworded("-density", "sample density (g/cm^3)"),
    Flag("-molecules", sub("-molecules", "-sample_molecules"), 1, _value("molecules"), "f",
         help="molecules in the sample (overrides -density)"),
    Flag("-MW", lambda a: a == "-MW" or "-molecular" in a, 1, _value("molecular_weight"), "f",
         help="molecular weight of the sample (g/mol)"),
    *_shared("-Xbeam", "-Ybeam", "-Xclose", "-Yclose", "-ORGX", "-ORGY", "-pivot"),
    _reworded("-fdet_vector", "fast detector axis"),
    _reworded("-sdet_vector", "slow detector axis"),
    _reworded("-odet_vector", "accepted; nonBragg's detector normal is always fdet x sdet"),
    _reworded("-beam_vector", "beam direction"),
    _reworded("-polar_vector", "E-vector of the beam"),
    _reworded("-spindle_axis", "accepted (no crystal here)"),
    _reworded("-twotheta_axis", "two-theta rotation axis (default 0 1 0)"),
    Flag("-pix0_vector", sub("-pix0_vector"), 3, _pix0, "fff",
         help="detector origin (m); used only with -fix_pix0, as the reference ignores it"),
    *_shared("-distance", "-close_distance"),
    Flag("-source_distance", sub("-source_distance"), 1, _value("source_distance", div=1000.0), "f",
         help="distance of the generated sources (mm)"),
    *_shared("-twotheta", "-detector_rotx", "-detector_roty", "-detector_rotz", "-detsize"),
    Flag("-detsize_x", sub("-detsize_x"), 1, _value("detsize_f", div=1000.0), "f", help="detector size, fast (mm)"),
    Flag("-detsize_y", sub("-detsize_y"), 1, _value("detsize_s", div=1000.0), "f", help="detector size, slow (mm)"),
    *_shared("-detpixels", "-detpixels_x", "-detpixels_y", "-curved_det", "-pixel", "-point_pixel"),
    Flag("-Fmap", sub("-Fmap"), 0, _set(fmap=True), help="the image holds the interpolated F, not photons"),
    *_shared("-polar", "-nopolar"),
    _reworded("-oversample", "sub-pixels per pixel side (default 1)"),
    *_shared("-roi", "-lambda", "-energy", "-fluence", "-flux", "-exposure",
             "-beamsize", "-dispersion", "-dispsteps", "-divergence", "-hdivrange", "-vdivrange", "-hdivstep",
             "-hdivsteps", "-vdivstep", "-vdivsteps", "-divsteps", "-round_div", "-square_div"),
    _reworded("-adc", "offset added to int and noise images, and taken off -img's pixels (default 40)"),
    Flag("-gain", sub("-gain"), 1, _value("quantum_gain"), "f",
         help="-img: ADU per photon of the image (default 1)"),
    _reworded("-phi", "start angle (deg; SMV header only)"),
    _reworded("-osc", "oscillation range (deg; SMV header only)"),
    _reworded("-phistep", "phi step (deg; sets the header's range only)"),
    _reworded("-phisteps", "phi steps (set the header's range only)"),
    Flag("-img", sub("-img"), 1, _value("imgfile"), "s",
         help="fit the -stol table's rows to this SMV image: its header sets the detector (flags "
              "override it), its pixels (less -adc, over -gain) become F, binned by sin(theta)/lambda "
              "into -stolout"),
    Flag("-ignore", sub("-ignore"), 1, _ignore, "f",
         help="-img: pixels of this value are invalid (repeat for more values)"),
    Flag("-stolout", lambda a: "-stolout" in a and len(a) > 7, 1, _value("stolout_file"), "s",
         help="-img: the fitted table (default output.stol): sin(theta)/lambda, mean F, rmsd, median, "
              "MAD, pixels per line"),
    Flag("-stol", sub("-stol", length=5), 1, _stol(1e10), "s",
         help="the sample's table: sin(theta)/lambda (1/A) and F per line"),
    Flag("-4stol", sub("-4stol", length=6), 1, _stol(1e10 / 4), "s", help="as -stol with 4 sin(theta)/lambda"),
    Flag("-Q", sub("-Q", length=2), 1, _stol(1e10 / 3.141592653589793 / 4), "s",
         help="as -stol with Q = 4 pi sin(theta)/lambda"),
    *_shared("-sourcefile", "-floatfile", "-intfile"),
    Flag("-pgmfile", sub("-pgmfile", "-pgmimage"), 1, _value("pgmfile"), "s", help="8-bit PGM preview output"),
    *_shared("-noisefile", "-nonoise", "-nopgm"),
    Flag("-noreject", sub("-noreject"), 0, _set(noreject=True),
         help="-img: no outlier rejection (the reference never rejects; matters only with -fix_reject)"),
    *_shared("-scale"),
    Flag("-pgmscale", sub("-pgmscale"), 1, _value("pgm_scale"), "f", help="PGM scale (default from the image rms)"),
    *_shared("-coherent", "-printout", "-noprogress", "-progress", "-printout_pixel", "-seed"),
    # nbnumba's own flags: matched exactly so they can never shadow a reference abbreviation
    *_shared("-device", "-nthreads"),
    Flag("-fix_spline", exact("-fix_spline"), 0, _set(fix_spline=True),
         help="keep the interpolated F between its two table values (reference: the cubic overshoots)"),
    Flag("-fix_stats", exact("-fix_stats"), 0, _set(fix_stats=True),
         help="mean, rms and rmsd (and so the PGM scale) from the ROI's own pixels in float64 (reference: "
              "rmsd from each pixel's right neighbour, squares as float products; with -img the mean "
              "and rms divide by the last stol bin's pixel count)"),
    Flag("-fix_reject", exact("-fix_reject"), 0, _set(fix_reject=True),
         help="-img: 6-sigma outlier rejection unless -noreject, with true median and MAD columns "
              "(reference: never rejects, prints 0 for both)"),
    Flag("-fix_roi", exact("-fix_roi"), 0, _set(fix_roi=True),
         help="-img: pixels outside -roi stay out of the bins (reference: past the ignored pixels + 4 they "
              "overwrite binned values, so nbnumba refuses such a -roi without this switch)"),
    Flag("-fix_steps", exact("-fix_steps"), 0, _set(fix_steps=True),
         help="-img: F from each pixel's photons as rendered (reference: F times sqrt(sources x "
              "oversample^2) when there is more than one)"),
    Flag("-fix_pix0", exact("-fix_pix0"), 0, _set(fix_pix0=True),
         help="use -pix0_vector as the detector origin (reference: ignores it)"),
    *_shared("-fix_twotheta_axis"),
]

def parse_nonbragg(argv: list[str]) -> NonBraggParams:
    """nonBragg's parameters from its argument list, by nanoBragg's matching rules over its table."""
    return parse_args(argv, NonBraggParams(), NONBRAGG_FLAGS)


def flag_table() -> list[tuple[str, int, str]]:
    """(flag, number of values, help) for every nonbragg flag, for documentation."""
    return [(f.name, f.nargs, f.help) for f in NONBRAGG_FLAGS]

"""Build a complete simulation (geometry, crystal, sources, tables) from a nanoBragg command line."""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import UserError
from ..io.hkl import HKLTable, read_fdump
from ..io.matrix import check_orientation, read_mosflm_matrix
from ..io.smv import read_smv, smv_value
from ..io.textcolumns import read_columns
from ..physics import layout as L
from ..physics.host import host64
from ..response import rng
from .beam import Sources, build_sources
from .crystal import Crystal, build_crystal, length, phi_lattices
from .detector import Detector, build_detector
from .estimate import (
    Estimate,
    check_automatic_oversample,
    check_time,
    duration,
    rendered_pixels,
    source_bound,
    work_estimate,
)
from .options import RTD, parse_args
from .params import Params
from .sampling import mosaic_domains, phi_steps, sane, steps_range_step
from .table_cache import read_hkl

R_E_SQR = 7.94079248018965e-30
AVOGADRO = 6.02214179e23
WATER_F = 2.57
WATER_MW = 18.0
FDUMP = "Fdump.bin"


@dataclass
class Simulation:
    """Everything one render needs, derived from the command line once, in SI units (m, rad, s).

    params: the parsed flags (`Params`). detector: the derived geometry (`Detector`: pix0, fdet,
    sdet, odet, beam, distance, Xbeam/Ybeam, Fbeam/Sbeam, ORGX/ORGY, dials_origin, roi...).
    crystal: cell and orientation (`Crystal`: real axes a, b, c in m, reciprocal a_star... in 1/A).
    sources: the beam's sources (directions, wavelengths in m). hkl: the structure-factor table, or
    None; hkl_source: "file", "fdump" or "default". mask: uint16 (slow, fast), 0 = skipped, or None.
    Na, Nb, Nc: unit cells per axis. oversample: sub-pixels per pixel side (recommended_oversample:
    the reference's advice). xtal_size: crystal size (m). interpolate: 1 when structure factors are
    interpolated. phi0, phistep, osc: rad; phisteps.
    mosaic_domains, mosaic_spread (rad), umats: the domains' rotations. thicksteps, thickstep,
    thick (m), mu (1/m): the sensor. fluence (photons/m^2), flux (photons/s), lambda0 (m).
    steps: sources x mosaic domains x phi steps x oversample^2, the divisor of every pixel.
    seed: the noise seed. estimate: the work estimate (`estimate.Estimate`: pixel-steps, expected
    seconds). The remaining fields are the kernels' flat tables, built from these."""

    params: Params
    detector: Detector
    crystal: Crystal
    sources: Sources
    hkl: HKLTable | None
    hkl_source: str  # "file", "fdump" or "default"
    mask: np.ndarray | None
    Na: float
    Nb: float
    Nc: float
    oversample: int
    recommended_oversample: int
    xtal_size: tuple
    interpolate: int
    phisteps: int
    phistep: float
    osc: float
    phi0: float
    mosaic_domains: int
    mosaic_spread: float
    umats: np.ndarray
    thicksteps: int
    thickstep: float
    thick: float
    mu: float
    fluence: float
    flux: float
    lambda0: float
    steps: int
    seed: int
    notes: list = field(default_factory=list)  # reference messages to print before rendering
    lattice: np.ndarray | None = None
    geo: np.ndarray | None = None
    ints: np.ndarray | None = None
    recip: np.ndarray | None = None
    Fgrid: np.ndarray | None = None
    source_table: np.ndarray | None = None
    estimate: Estimate | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.detector.spixels, self.detector.fpixels


def _apply_header(p: Params, path: str, is_mask: bool) -> np.ndarray:
    """The reference initialises the camera from an SMV header before reading the flags."""
    smv = read_smv(path)
    apply_smv_header(p, smv, beam_y_from_top=is_mask)
    return smv.data


def apply_smv_header(p: Params, smv, beam_y_from_top: bool) -> None:
    """An SMV header's detector, wavelength and spindle values into `p` (SI units), as nanoBragg
    reads a -mask (`beam_y_from_top`: BEAM_CENTER_Y measured from the far edge, as nonBragg reads
    its -img too) or an -img header; TWOTHETA is not read."""
    p.fpixels, p.spixels = smv.width, smv.height

    def value(key):
        return smv_value(smv.header, key)

    v = value("PIXEL_SIZE")
    if not math.isnan(v):
        p.pixel_size = v / 1000.0
    p.detsize_f = p.pixel_size * p.fpixels
    p.detsize_s = p.pixel_size * p.spixels
    for key, attr, divisor in (("DISTANCE", "distance", 1000.0), ("CLOSE_DISTANCE", "close_distance", 1000.0),
                               ("WAVELENGTH", "lambda0", 1e10), ("BEAM_CENTER_X", "Xbeam", 1000.0),
                               ("ORGX", "ORGX", 1.0), ("ORGY", "ORGY", 1.0), ("PHI", "phi0", RTD),
                               ("OSC_RANGE", "osc", RTD)):
        v = value(key)
        if not math.isnan(v):
            setattr(p, attr, v / divisor)
    v = value("BEAM_CENTER_Y")
    if not math.isnan(v):
        p.Ybeam = p.detsize_s - v / 1000.0 if beam_y_from_top else v / 1000.0


def parse_command(argv: list[str]) -> tuple[Params, np.ndarray | None]:
    """Flags over the defaults, with -mask and -img headers read first (flags win over them)."""
    first = parse_args(argv)
    base = Params()
    mask = None
    if first.maskfile is not None:
        mask = _apply_header(base, first.maskfile, is_mask=True)
    if first.imgfile is not None:
        _apply_header(base, first.imgfile, is_mask=False)
    return parse_args(argv, base=base), mask


def _structure_factors(p: Params, fdump_path: str) -> tuple[HKLTable | None, str]:
    if p.hklfile is not None:
        return read_hkl(p.hklfile, p.default_F), "file"
    if os.path.exists(fdump_path):
        return read_fdump(fdump_path), "fdump"
    if p.default_F == 0.0:
        raise UserError("no structure factors: give -hkl FILE or -default_F F "
                        "(and no Fdump.bin cache is in this directory)")
    return None, "default"


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build(argv: list[str], fdump_path: str = FDUMP, say: Callable[[str], None] | None = _to_stderr,
          hkl: HKLTable | None = None) -> Simulation:
    """Everything a kernel needs.  Without -hkl the structure factors come from `fdump_path`
    when it exists (the reference reads Fdump.bin from the current directory); a parsed `hkl`
    table is used instead of either, as if read from -hkl.

    A command outside a flag's domain, or past the work limits (nbnumba.estimate) without
    -force, raises UserError before anything is allocated.  Once everything is checked, the
    unit-slip warnings and, for a long render with the progress meter on, the work estimate go
    to `say` (None: silent)."""
    p, mask = parse_command(argv)
    check_cells(p)
    if not (p.lambda0 > 0):
        raise UserError(f"the wavelength must be positive, got {p.lambda0 * 1e10:g} A")
    if p.matfile is not None:
        check_orientation(p.matfile, *read_mosflm_matrix(p.matfile))
    notes: list[str] = []
    det = build_detector(p)
    _check_inside(p, det)
    if mask is not None and mask.shape != (det.spixels, det.fpixels):
        raise UserError(f"{p.maskfile}: mask is {mask.shape[1]}x{mask.shape[0]} pixels but the detector is "
                        f"{det.fpixels}x{det.spixels}")

    fluence, flux = p.fluence, p.flux
    if flux != 0.0 and p.exposure > 0.0 and p.beamsize >= 0:
        fluence = flux * p.exposure / p.beamsize / p.beamsize
    if p.beamsize >= 0:
        if p.beamsize < p.sample_y:
            notes.append(f"WARNING: clipping sample ({p.sample_y:g} m high) with beam ({p.beamsize:g} m)")
            p.sample_y = p.beamsize
        if p.beamsize < p.sample_z:
            notes.append(f"WARNING: clipping sample ({p.sample_z:g} m wide) with beam ({p.beamsize:g} m)")
            p.sample_z = p.beamsize
    if p.exposure > 0.0:
        flux = fluence / p.exposure * p.beamsize * p.beamsize
    if not (math.isfinite(fluence) and fluence >= 0):
        raise UserError(f"the fluence must be a non-negative number, got {fluence:g} (check -flux/-beamsize)")

    phisteps, osc, phistep = phi_steps(p.phisteps, p.osc, p.phistep, RTD)
    thicksteps, thick, thickstep = sane(*steps_range_step(
        p.detector_thicksteps, p.detector_thick, p.detector_thickstep,
        count_only_span=0.5e-6, span_only_halves=True))
    mu = p.detector_mu
    if thick > 0.0 and mu < 0.0:
        mu = 1.0 / thick
        notes.append(f"WARNING: setting detector attenuation depth to {mu:g} m")
    domains, spread, warn = mosaic_domains(p.mosaic_domains, p.mosaic_spread)
    notes.extend(warn)

    interpolate = p.interpolate
    if interpolate > 1:
        interpolate = 1 if (p.Na <= 2 or p.Nb <= 2 or p.Nc <= 2) else 0
        notes.append("auto-selected tricubic interpolation of structure factors" if interpolate
                     else "auto-selected no interpolation")

    seed = p.seed if p.seed is not None else -int(time.time())
    misset_seed = p.misset_seed if p.misset_seed is not None else seed
    try:
        with np.errstate(all="ignore"):
            crystal = build_crystal(p, p.lambda0, misset_seed)
    except (ZeroDivisionError, OverflowError):  # edges or matrix elements too extreme for float64
        crystal = None
    if crystal is None or not (np.isfinite(crystal.cell + crystal.recip_cell).all() and min(crystal.cell[:3]) > 0):
        raise UserError(f"{p.matfile or '-cell'}: the unit cell is degenerate or too extreme to compute with")

    Na, Nb, Nc = float(p.Na), float(p.Nb), float(p.Nc)
    if p.sample_x > 0:
        Na = _cells(p.sample_x / length(crystal.a), "a")
    if p.sample_y > 0:
        Nb = _cells(p.sample_y / length(crystal.b), "b")
    if p.sample_z > 0:
        Nc = _cells(p.sample_z / length(crystal.c), "c")
    Na, Nb, Nc = max(Na, 1.0), max(Nb, 1.0), max(Nc, 1.0)
    xtal = (length(crystal.a) * Na, length(crystal.b) * Nb, length(crystal.c) * Nc)
    reciprocal_pixel = p.lambda0 * det.distance / det.pixel_size
    wanted = 3.0 * max(xtal) / reciprocal_pixel if reciprocal_pixel > 0 else math.inf

    # The work limits come before anything that grows with the work is built or read.
    sources = build_sources(p, det.beam, det.polar_vector, p.lambda0) if p.sourcefile is not None else None
    pixels = rendered_pixels(det.roi, det.fpixels, det.spixels, mask)

    # Interpolation needs a table: from -hkl, or from the Fdump.bin a run without -hkl reads.
    tricubic = bool(interpolate) and (hkl is not None or p.hklfile is not None or os.path.exists(fdump_path))

    def work(sub_pixels: int, n_sources: int, tricubic: bool = tricubic) -> Estimate:
        return work_estimate(p, pixels, sub_pixels, thicksteps, n_sources, phisteps, domains, tricubic)

    n_sources = len(sources.wavelengths) if sources is not None else source_bound(p)
    figures = ""
    if math.isfinite(wanted) and wanted > 0:
        auto = work(math.ceil(wanted), n_sources)
        about = "at least" if auto.device != "cpu" else "about"
        figures = f": {auto.steps:.3g} pixel-steps, {about} {duration(auto.seconds)}"
    check_automatic_oversample(p, wanted, figures)
    if not wanted < 2**31:  # the reference's int overflows (to INT_MIN, then 1)
        if p.oversample <= 0:
            raise UserError(f"the automatic oversample would be {wanted:g} sub-pixels a side; give -oversample")
        wanted = 0.0
    recommended = math.ceil(wanted)
    recommended = 1 if recommended <= 0 else recommended
    oversample = recommended if p.oversample <= 0 else p.oversample
    check_time(p, work(oversample, n_sources))
    check_memory(det, phisteps * domains)

    hkl, hkl_source = (hkl, "file") if hkl is not None else _structure_factors(p, fdump_path)
    if hkl is None or hkl.count == 0:
        interpolate = 0
    if p.stol_file is not None:
        read_columns(p.stol_file, 2)

    if sources is None:
        sources = build_sources(p, det.beam, det.polar_vector, p.lambda0)
    umats = rng.domain_rotations(spread, domains, p.mosaic_seed)
    steps = len(sources.wavelengths) * domains * phisteps * oversample * oversample

    sim = Simulation(p, det, crystal, sources, hkl, hkl_source, mask, Na, Nb, Nc, oversample, recommended,
                     xtal, interpolate, phisteps, phistep, osc, p.phi0, domains, spread, umats, thicksteps,
                     thickstep, thick, mu, fluence, flux, p.lambda0, steps, seed, notes)
    sim.estimate = work(oversample, len(sources.wavelengths), bool(interpolate))
    if say is not None:
        announce(sim, say)
    sim.lattice = phi_lattices(crystal, det.spindle, p.phi0, phistep, phisteps, umats, spread, p.fix_phi0)
    _pack(sim)
    return sim


def check_cells(p: Params) -> None:
    """A number of cells that is not whole has a meaning only for the smooth crystal shapes: the
    square shape's sin(N x)/sin(x) is the sum over N whole cells."""
    if p.xtal_shape == "SQUARE" and not all(float(n).is_integer() for n in (p.Na, p.Nb, p.Nc)):
        given = "x".join(f"{n:g}" for n in (p.Na, p.Nb, p.Nc))
        raise UserError(f"-N: {given} cells is not a whole number, which the square crystal shape needs; a real "
                        "number of cells works with -gauss_xtal, -round_xtal or -tophat_spots")


def announce(sim: Simulation, say: Callable[[str], None], estimate: bool = True) -> None:
    """The unit-slip warnings and, for a long render with the progress meter on, the work estimate:
    said once every check has passed, so that a refused command prints only its error."""
    p = sim.params
    for _, line in p.slips:
        say("nbnumba: warning: " + line)
    if estimate and sim.estimate.worth_saying() and p.progress and not p.printout:
        say(sim.estimate.summary())  # the first line of the progress display, as unprefixed as the meter


def _check_inside(p: Params, det: Detector) -> None:
    """Pixel ranges must meet the detector (the reference clips a -roi and renders nothing
    when none of it is on the detector)."""
    if p.roi is not None and (p.roi[0] >= det.fpixels or p.roi[2] >= det.spixels):
        raise UserError(f"-roi {' '.join(map(str, p.roi))} is outside the {det.fpixels}x{det.spixels} detector "
                        f"(x from 0 to {det.fpixels - 1}, y from 0 to {det.spixels - 1})")
    for flag, slow, fast in (("-trace_pixel", p.trace_spixel, p.trace_fpixel),
                             ("-printout_pixel", p.printout_spixel, p.printout_fpixel)):
        if (slow >= 0 or fast >= 0) and not (0 <= slow < det.spixels and 0 <= fast < det.fpixels):
            raise UserError(f"{flag}: pixel (slow {slow}, fast {fast}) is outside the "
                            f"{det.fpixels}x{det.spixels} detector")


def _cells(cells: float, axis: str) -> int:
    if not math.isfinite(cells):
        raise UserError(f"the crystal size along {axis} (-samplesize/-xtalsize) holds too many unit cells")
    return math.ceil(cells)


def check_memory(det: Detector, lattices: int = 0) -> None:
    """Refuse an image whose buffers, or a set of rotated lattices (9 numbers per phi step and
    mosaic domain), that cannot fit, before allocating anything."""
    needed = det.fpixels * det.spixels * 16 + lattices * 72
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if needed > available:
        what = f" with {lattices} phi steps x mosaic domains" if lattices else ""
        raise UserError(f"a {det.fpixels}x{det.spixels} detector{what} needs {needed / 2**30:.1f} GiB of memory "
                        f"but only {available / 2**30:.1f} GiB is available")


def pack_detector(geo: np.ndarray, det: Detector) -> None:
    """The detector's slots of `geo`: its origin, axes, beam, polarization, pixel and distances."""
    geo[L.G_PIX0:L.G_PIX0 + 3] = det.pix0
    geo[L.G_FDET:L.G_FDET + 3] = det.fdet
    geo[L.G_SDET:L.G_SDET + 3] = det.sdet
    geo[L.G_ODET:L.G_ODET + 3] = det.odet
    geo[L.G_BEAM:L.G_BEAM + 3] = det.beam
    geo[L.G_POLAR:L.G_POLAR + 3] = det.polar_vector
    geo[L.G_PIXEL] = det.pixel_size
    geo[L.G_DISTANCE] = det.distance
    geo[L.G_CLOSE] = det.close_distance


def _pack(sim: Simulation) -> None:
    """Flat arrays for the kernels (layout.py names the slots)."""
    det, p = sim.detector, sim.params
    geo = np.zeros(L.N_GEO)
    pack_detector(geo, det)
    geo[L.G_SUBPIXEL] = det.pixel_size / sim.oversample
    geo[L.G_THICKSTEP] = sim.thickstep
    geo[L.G_MU] = sim.mu
    geo[L.G_THICK] = sim.thick
    geo[L.G_KAHN] = p.polarization
    geo[L.G_RE2_FLUENCE] = R_E_SQR * sim.fluence
    geo[L.G_STEPS] = sim.steps
    geo[L.G_I_BG] = (WATER_F * WATER_F * R_E_SQR * sim.fluence * p.water_size * p.water_size * p.water_size
                     * 1e6 * AVOGADRO / WATER_MW)
    geo[L.G_DMIN] = p.dmin
    geo[L.G_FUDGE] = p.fudge
    geo[L.G_NA], geo[L.G_NB], geo[L.G_NC] = sim.Na, sim.Nb, sim.Nc
    geo[L.G_DEFAULT_F] = p.default_F
    geo[L.G_WATER] = p.water_size

    ints = np.zeros(L.N_INT, dtype=np.int64)
    ints[L.I_FPIXELS], ints[L.I_SPIXELS] = det.fpixels, det.spixels
    ints[L.I_OVERSAMPLE] = sim.oversample
    ints[L.I_THICKSTEPS] = sim.thicksteps
    ints[L.I_SOURCES] = len(sim.sources.wavelengths)
    ints[L.I_PHISTEPS] = sim.phisteps
    ints[L.I_MOSAIC] = sim.mosaic_domains
    ints[L.I_OVERSAMPLE_THICK] = p.oversample_thick
    ints[L.I_OVERSAMPLE_POLAR] = p.oversample_polar
    ints[L.I_OVERSAMPLE_OMEGA] = p.oversample_omega
    ints[L.I_POINT_PIXEL] = p.point_pixel
    ints[L.I_CURVED] = p.curved_detector
    ints[L.I_NOPOLAR] = p.nopolar
    ints[L.I_SHAPE] = L.SHAPES[p.xtal_shape]
    hkl = sim.hkl
    if hkl is not None:
        ints[L.I_H_MIN:L.I_L_SPAN + 1] = (hkl.h_min, hkl.h_max - hkl.h_min, hkl.k_min, hkl.k_max - hkl.k_min,
                                         hkl.l_min, hkl.l_max - hkl.l_min)
        sim.Fgrid = np.ascontiguousarray(hkl.grid)
    else:
        ints[L.I_H_SPAN] = ints[L.I_K_SPAN] = ints[L.I_L_SPAN] = -1  # every F is default_F
        sim.Fgrid = np.zeros((1, 1, 1))
    ints[L.I_ROI_XMIN:L.I_ROI_YMAX + 1] = det.roi
    ints[L.I_HAS_MASK] = sim.mask is not None
    ints[L.I_INTERPOLATE] = sim.interpolate
    ints[L.I_FIRST_PIXEL] = -1
    ints[L.I_INTERP_UNTIL] = det.fpixels * det.spixels
    ints[L.I_RENDER_FROM] = 0
    ints[L.I_RENDER_TO] = det.fpixels * det.spixels
    sim.geo, sim.ints = geo, ints
    sim.recip = np.array(sim.crystal.a_star + sim.crystal.b_star + sim.crystal.c_star, dtype=np.float64)
    sim.source_table = source_table(sim.sources, det.polar_vector)


def source_table(sources: Sources, polar_vector) -> np.ndarray:
    """Per source: direction toward it, wavelength, and its polarization basis B and E."""
    basis = host64.polarization_basis
    table = np.empty((len(sources.wavelengths), 10))
    table[:, :3] = sources.directions
    table[:, 3] = sources.wavelengths
    for row, (x, y, z) in zip(table, sources.directions):
        row[4:] = basis(-x, -y, -z, *polar_vector)
    return table

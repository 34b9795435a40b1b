"""What `run` prints before rendering: the derived geometry, crystal and sampling, in the
reference's wording and number formats, so the two outputs can be compared line by line."""

from __future__ import annotations

import math

from .. import __version__
from ..model.detector import cross, dot
from ..model.simulation import FDUMP, Simulation

RTD = 180.0 * (1.0 / math.pi)
AVOGADRO = 6.02214179e23
SHAPE_NAMES = {"ROUND": "ellipsoidal", "SQUARE": "parallelpiped", "GAUSS": "gaussian", "TOPHAT": "tophat-spot"}


def _g(*values) -> str:
    return " ".join(f"{v:g}" for v in values)


def _g15(*values) -> str:
    return " ".join(f"{v:.15g}" for v in values)


def _axes_table(title: str, names: tuple, axes: list) -> list[str]:
    """Three axes as the columns of an X/Y/Z table, in the reference's fixed-point format."""
    return [title, "     " + "  ".join(f"{n:<10s}" for n in names),
            *(f"{xyz}: " + " ".join(f"{v[i]:11.8f}" for v in axes) for i, xyz in enumerate("XYZ"))]


def approximate_mw(sim: Simulation) -> float:
    """The reference's rough molecular weight: a crystal of density 1.2 g/cm^3 whatever -density
    and -MW say (it overwrites them before printing), shared among its Na*Nb*Nc cells."""
    x, y, z = sim.xtal_size
    return x * y * z * 1.2e6 * AVOGADRO / (sim.Na * sim.Nb * sim.Nc)


def setup_lines(sim: Simulation) -> list[str]:
    det, cr, p = sim.detector, sim.crystal, sim.params
    out = [f"reading {name}" for name in (p.maskfile, p.imgfile) if name is not None]
    out += det.warnings
    out.append(f"nbnumba {__version__}: nanoBragg-compatible diffraction simulator")
    out.append(f"{det.convention.lower()} convention selected.")
    if det.pivot == "SAMPLE":
        out.append("pivoting detector around sample")
    out.append(f"DETECTOR_FAST_AXIS {_g15(*det.fdet)}")
    out.append(f"DETECTOR_SLOW_AXIS {_g15(*det.sdet)}")
    out.append(f"DETECTOR_NORMAL_AXIS {_g15(*det.odet)}")
    if det.pivot == "BEAM":
        out.append("pivoting detector around direct beam spot")
    out.append(f"DETECTOR_PIX0_VECTOR {_g15(*det.pix0)}")
    out.append(f"XDS incident beam: {_g(dot(det.beam, det.fdet), dot(det.beam, det.sdet), dot(det.beam, det.odet))}")
    out.extend(n for n in sim.notes if n.startswith("auto-selected"))
    if p.matfile is not None:
        out.append(f"reading {p.matfile}")
    if cr.misset_deg is not None:
        out.append("random orientation misset angles: {:f} {:f} {:f} deg".format(*cr.misset_deg))
    out.append(f"Unit Cell: {_g(*cr.cell)}")
    out.append(f"Recp Cell: {_g(*cr.recip_cell)}")
    out.append(f"volume = {cr.volume:g} A^3")
    out.extend(_axes_table("real-space cell vectors (Angstrom):", ("a", "b", "c"),
                           [[x * 1e10 for x in v] for v in (cr.a, cr.b, cr.c)]))
    out.extend(_axes_table("reciprocal-space cell vectors (Angstrom^-1):", ("a_star", "b_star", "c_star"),
                           [cr.a_star, cr.b_star, cr.c_star]))
    out.append("crystal is {:g} x {:g} x {:g} microns".format(*(x * 1e6 for x in sim.xtal_size)))
    if p.oversample <= 0:
        out.append(f"auto-selected {sim.oversample}-fold oversampling")
    if sim.oversample < sim.recommended_oversample:
        out.append(f"WARNING: maximum dimension of sample is {max(sim.xtal_size) * 1e10:g} A")
        out.append(f"         but reciprocal pixel size is {sim.lambda0 * det.distance / det.pixel_size * 1e10:g} A")
        out.append("         intensity may vary significantly across a pixel!")
        out.append(f"         recommend -oversample {sim.recommended_oversample} to work around this")
    out.append(f"approximate MW = {approximate_mw(sim):g}")
    out.extend(n for n in sim.notes if n.startswith("WARNING"))
    if sim.hkl_source == "fdump":
        out.append("reading Fs from Fdump.bin")
    elif sim.hkl_source == "file":
        out.append(f"counting entries in {p.hklfile}")
        if p.default_F != 0.0:
            out.append(f"initializing to default_F = {p.default_F:g}:")
            out.append("done initializing:")
        out.append(f"re-reading {p.hklfile}")
        out.append(f"writing dump file for next time: {FDUMP}")
    out.extend(f"thick{t} = {sim.thickstep * t * 1e6:g} um" for t in range(sim.thicksteps))
    out.extend(f"phi{t} = {(sim.phi0 + sim.phistep * t) * RTD:g}" for t in range(sim.phisteps))
    out.extend(f"divergence deviation: {_g(h, v)}" for h, v in sim.sources.divergence_points)
    out.extend(f"lambda{t} = {lam:.15g}" for t, lam in enumerate(sim.sources.wavelength_steps))
    out.append(f"  created a total of {len(sim.sources.listing)} sources:")
    out.extend(f"{_g(x, y, z)}   {_g(w, lam)}" for x, y, z, w, lam in sim.sources.listing)
    out.append(f"  created a total of {sim.mosaic_domains} mosaic domains")
    hkls = sim.hkl.count if sim.hkl is not None else 0
    out.append(f"  {hkls} initialized hkls (all others ={p.default_F:g})")
    out.append(f"  {SHAPE_NAMES[p.xtal_shape]} xtal: {sim.Na:.0f}x{sim.Nb:.0f}x{sim.Nc:.0f} cells")
    disp, _, dsteps = sim.sources.dispersion
    out.append(f"  wave={sim.lambda0:g} meters +/- {disp * 100:g}% in {dsteps} steps")
    out.append("  polarization effect disabled" if p.nopolar else f"  Kahn polarization factor: {p.polarization:f}")
    if p.curved_detector:
        out.append("  curved detector: all pixels same distance from origin")
    if p.point_pixel:
        out.append("  pixel obliquity effect disabled")
    out.append(f"  incident fluence: {sim.fluence:g} photons/m^2")
    out.append(f"  distance={det.distance:g} detsize={det.detsize_f:g}x{det.detsize_s:g}  pixel={det.pixel_size:g} "
               f"meters ({det.fpixels}x{det.spixels} pixels)")
    out.append(f"  sensor is {sim.thick:g} m thick in {sim.thicksteps} layers with mu= {sim.mu:g}")
    out.append(f"  Xbeam={det.Xbeam:g} Ybeam={det.Ybeam:g}")
    out.append(f"  Fbeam={det.Fbeam:g} Sbeam={det.Sbeam:g}")
    out.append(f"  Xclose={det.Xclose:g} Yclose={det.Yclose:g}")
    out.append(f"  Fclose={det.Fclose:g} Sclose={det.Sclose:g}")
    out.append(f"  DIRECTION_OF_DETECTOR_X-AXIS= {_g(*det.fdet)}")
    out.append(f"  DIRECTION_OF_DETECTOR_Y-AXIS= {_g(*det.sdet)}")
    out.append(f"  DIRECTION_OF_DETECTOR_Z-AXIS= {_g(*det.odet)}")
    out.append(f"  INCIDENT_BEAM_DIRECTION= {_g(*det.beam)}")
    out.append(f"  spindle ROTATION_AXIS= {_g(*det.spindle)}")
    out.append(f"  POLARIZATION_PLANE_NORMAL= {_g(*cross(det.beam, det.polar_vector))}")
    out.append(f"  dials origin= {_g(*det.dials_origin)}")
    out.append("  roi: {} < x < {} && {} < y < {}".format(*det.roi))
    hrange, hstep, vrange, vstep, ndiv = sim.sources.divergence
    out.append(f"  hdivrange={hrange:g} hdivstep={hstep:g}  radians")
    out.append(f"  vdivrange={vrange:g} vdivstep={vstep:g}  radians")
    out.append(f"  {ndiv} divergence steps")
    out.append(f"  {len(sim.sources.listing)} sources")
    out.append(f"  {sim.mosaic_domains} mosaic domains over mosaic spread of {sim.mosaic_spread * RTD:g} degrees")
    out.append(f"  {sim.phisteps} phi steps from {sim.phi0 * RTD:g} to {(sim.phi0 + sim.osc) * RTD:g} degrees")
    extra = "".join(f" +{n}" for n, on in (("thick", p.oversample_thick), ("polar", p.oversample_polar),
                                           ("omega", p.oversample_omega)) if on)
    out.append(f"  {sim.oversample}x{sim.oversample} pixel oversample steps{extra}")
    if sim.mask is not None:
        out.append(f"  skipping zero-flagged pixels in {p.maskfile}")
    if p.calculate_noise:
        out.append("")
        out.append("  noise image paramters:")
        out.append(f"  seed: {sim.seed}")
        out.append(f"  water droplet size: {p.water_size:g} m")
    return out


def solid_angle_line(sim: Simulation, omega_sum: float) -> str:
    return (f"solid angle subtended by detector = {omega_sum / sim.steps:g} steradian "
            f"( {100 * omega_sum / sim.steps / 4 / math.pi:g}% sphere)")

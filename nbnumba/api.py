"""The Python API: build a simulation from keywords or a nanoBragg argument list, render it on a
device, and get numpy arrays with the derived geometry.

    >>> from nbnumba import api
    >>> sim = api.simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, N=5,
    ...                      **{"lambda": 6.2}, distance=100, detpixels=64, pixel=0.1)
    >>> result = api.render(sim)                # the float image `run` writes, background included
    >>> result.image                            # float32 (slow, fast), photons per pixel
    >>> sim.detector.pix0, sim.detector.Fbeam   # derived geometry, SI units
    >>> counts = api.detector_images(sim, result)   # `run`'s int and noise images (detector response)
    >>> api.write_outputs(sim, result, intfile="img.img", noisefile="noise.img", pgmfile="img.pgm")

Many simulations from one structure-factor file: parse it once with `api.read_hkl` and hand the
table to each `api.simulation(..., hkl=table)` while the cell, N, distance or anything else change
(the -bg_ group's table is read once per file and modification time in a process).  The first
render of a kind compiles its kernels (10-30 s, then cached on disk): a line on stderr says so, as
the command line does.

Keyword names are the nanoBragg flags without the dash (`lambda` is a Python keyword: pass it
through `**{"lambda": ...}` or use `wave=`); a value is a number, a string, a sequence for flags
that take several values, or True for a switch.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, replace

import numpy as np

from .amorphous.chain import add_background
from .errors import UserError
from .io import hkl as _hkl
from .io.hkl import HKLTable
from .kernels.backends import backend, backend_for  # noqa: F401 - part of the API
from .kernels.render import render as _render
from .model.crystal import phi_lattices
from .model.detector import rotate_xyz
from .model.simulation import Simulation, build
from .outputs import images as _outputs
from .outputs.images import Stats, statistics
from .runtime.jitcache import compile_notice
from .runtime.threads import set_threads  # noqa: F401 - part of the API


def arguments(**flags) -> list[str]:
    """A nanoBragg argument list from keywords (see the module docstring)."""
    argv: list[str] = []
    for name, value in flags.items():
        if value is False or value is None:
            continue
        argv.append(f"-{name}")
        if value is True:
            continue
        if isinstance(value, (list, tuple, np.ndarray)):
            argv.extend(str(v) for v in value)
        else:
            argv.append(str(value))
    return argv


def read_image(path, frame: int = 1, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Any image nbnumba writes or compares, as float64 (slow, fast): float .bin/.bin.gz (square,
    or `shape`), TIFF, SMV, or one image of an HDF5/NeXus file (`frame` from 1: a sweep's frame
    number, a batch's row)."""
    from .io.any_image import load_image
    return load_image(path, shape, frame).image


def read_hkl(path, default_F: float = 0.0) -> HKLTable:
    """A structure-factor file (h k l F per line) parsed once, for `simulation(..., hkl=table)`;
    `default_F` fills the grid's missing reflections, as -default_F does."""
    return _hkl.read_hkl(str(path), default_F)


def simulation(argv: list[str] | None = None, *, hkl: HKLTable | None = None, **flags) -> Simulation:
    """A simulation from an argument list, keywords, or both (keywords come last).  `hkl`: a table
    from `read_hkl`, used instead of reading -hkl (or Fdump.bin) again."""
    return build(list(argv or []) + arguments(**flags), hkl=hkl)


@dataclass
class Result:
    """A rendered image.

    image: float32 (slow, fast), photons per pixel: the float image `run` writes (the spots plus
    the -bg_ group's background). stats: its `Stats` (max_I, mean, rms, rmsd...). omega_sum: the
    spots' solid angle summed over every rendered sub-pixel step (sr; divide by sim.steps for the
    detector's solid angle). seconds: render time, background included."""

    image: np.ndarray
    stats: Stats
    omega_sum: float
    seconds: float


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def render(sim: Simulation, device: str | None = None, precision: str | None = None) -> Result:
    """The float image `nbnumba run` writes for the simulation's flags, bit for bit: the whole
    detector's spots plus, with -bg_stol (-bg_4stol, -bg_Q), the amorphous background on the
    same detector and beam.  `device` and `precision` default to the flags' -device and
    -precision.  A background that goes negative is reported on stderr, as `run` reports it."""
    precision = precision or sim.params.precision
    if precision not in ("double", "single"):
        raise UserError(f"precision must be double or single, got {precision!r}")
    device = device or sim.params.device
    chosen = backend(device)
    t0 = time.perf_counter()
    with compile_notice(f"{chosen.__name__.rsplit('.', 1)[-1]} {precision}", _say):
        done = _render(sim, chosen, precision)
    image = add_background(sim, done.image, say=_say, device=device)
    return Result(image, statistics(sim, image), done.omega_sum, time.perf_counter() - t0)


@dataclass
class DetectorImages:
    """What the detector reports for a rendered image, as `run` writes it.

    int_image: the noiseless counts of the -intfile (uint16). noise_image: the counts with noise
    of the -noisefile, or None under -nonoise. scale: ADU per photon of the int image (-scale,
    55000 / max_I, or -gain with the detector-response flags). response: noisify's full result
    (`nbnumba.response.ResponseResult`: PSF reports, photons, overloads) when the flags ask for
    a detector response (-readout, -flicker, -calibration, -psf, -gain, -calib_seed), else None."""

    int_image: np.ndarray
    noise_image: np.ndarray | None
    scale: float
    response: object | None = None


def detector_images(sim: Simulation, result: Result) -> DetectorImages:
    """`run`'s int and noise images of `result`: with the detector-response flags, noisify's
    chain (calibration, flicker, Poisson noise, PSF, read-out, ADC at -gain, from -seed and
    -calib_seed); without them nanoBragg's int image and Poisson noise image from -seed."""
    if sim.params.response:
        r = _outputs.detector_response(sim, result.image)[1]
        return DetectorImages(r.int_image, r.noise_image, sim.params.gain, r)
    counts, scale = _outputs.int_image(sim, result.image, result.stats.max_I)
    noise = _outputs.noise_image(sim, result.image)[0] if sim.params.calculate_noise else None
    return DetectorImages(counts, noise, scale)


def int_image(sim: Simulation, result: Result) -> tuple[np.ndarray, float]:
    """(the SMV int image `run` writes, its scale): see `detector_images`."""
    images = detector_images(sim, result)
    return images.int_image, images.scale


def noise_image(sim: Simulation, result: Result) -> np.ndarray:
    """The SMV noise image `run` writes (see `detector_images`), drawn from the run's -seed, even
    under -nonoise."""
    if not sim.params.calculate_noise:
        sim = Simulation(**{**sim.__dict__, "params": _with_noise(sim.params)})
    return detector_images(sim, result).noise_image


def _with_noise(params):
    return replace(params, calculate_noise=True)


def write_outputs(sim: Simulation, result: Result, floatfile=None, intfile=None, noisefile=None,
                  pgmfile=None) -> None:
    """Write the files `run` writes, each only when named: the float image (raw float32, or TIFF
    for a .tif/.tiff name), the SMV int and noise images (`detector_images`, with `run`'s
    header), the PGM preview.
    Each is written whole or not at all, as `run` writes them."""
    from .io.images import pgm_bytes, write_float_image, write_pgm
    from .io.smv import write_smv

    if floatfile is not None:
        write_float_image(floatfile, result.image)
    images = detector_images(sim, result)
    fields, keys = _outputs.header_fields(sim), _outputs.smv_keys(sim.params)
    if intfile is not None:
        write_smv(intfile, images.int_image, fields, keys)
    if noisefile is not None:
        noise = images.noise_image if images.noise_image is not None else noise_image(sim, result)
        write_smv(noisefile, noise, fields, keys)
    if pgmfile is not None and images.response is not None:
        write_pgm(pgmfile, images.response.pgm, 1.0)
    elif pgmfile is not None:
        pgm_scale = _outputs.pgm_scale_for(sim, result.stats, images.scale)
        write_pgm(pgmfile, pgm_bytes(result.image, pgm_scale, sim.detector.roi), pgm_scale)


def reorient(sim: Simulation, misset_deg) -> Simulation:
    """The same simulation with the crystal turned by extra misset angles (x, y, z in degrees),
    applied after the orientation it already has; structure factors and geometry are reused."""
    rtd = 180.0 / math.pi
    angles = [float(a) / rtd for a in misset_deg]
    crystal = sim.crystal
    turned = type(crystal)(*(rotate_xyz(v, *angles) for v in (crystal.a, crystal.b, crystal.c)),
                           *(rotate_xyz(v, *angles) for v in (crystal.a_star, crystal.b_star, crystal.c_star)),
                           crystal.cell, crystal.recip_cell, crystal.volume, crystal.misset_deg)
    other = Simulation(**{**sim.__dict__, "crystal": turned})
    other.lattice = phi_lattices(turned, sim.detector.spindle, sim.phi0, sim.phistep, sim.phisteps,
                                 sim.umats, sim.mosaic_spread, sim.params.fix_phi0)
    other.recip = np.array(turned.a_star + turned.b_star + turned.c_star, dtype=np.float64)
    return other


def render_orientations(sim: Simulation, missets_deg, device: str = "cpu",
                        precision: str | None = None) -> np.ndarray:
    """Images (n, slow, fast) for several extra misset angles, reusing the compiled kernels."""
    return np.stack([render(reorient(sim, m), device, precision).image for m in missets_deg])


def jacobian(sim: Simulation, wrt=(), mask=None, device: str = "cpu", precision: str = "double"):
    """The value image and one derivative image per parameter, in one pass.

    wrt: names of nbnumba.derivatives.NAMES (rotx roty rotz a b c alpha beta gamma Na Nb Nc scale
    distance Xbeam Ybeam detector_rotx detector_roty detector_rotz lambda mosaic); "F" is refused
    here (see `gradient`).  mask: None, a (slow, fast) array (non-zero: evaluated) or an integer
    array of (slow, fast) rows; pixels outside it (and outside the run's ROI and mask) are 0.
    Returns an object with .image (float64 (slow, fast): `render`'s float image, bit for bit once
    cast to float32, in double precision) and .derivatives ({name: float64 (slow, fast)}, dI/dp per
    unit of p in its flag units: deg, A, mm, cells; `nbnumba.derivatives.parameters` and
    docs/derivatives.md give the units and sign conventions).  A parameter this simulation cannot
    vary (N with the square shape, lambda with -sourcefile...) raises UserError."""
    from .derivatives import jacobian as _jacobian
    return _jacobian(sim, wrt, mask, device, precision)


def gradient(sim: Simulation, weights, wrt=(), mask=None, device: str = "cpu", precision: str = "double"):
    """The value image and the reduced gradient sum_i weights_i dI_i/dp of each parameter of `wrt`
    (as `jacobian`'s, plus "F": the whole structure-factor table), without derivative images:
    memory O(K + table).  weights: float (slow, fast), e.g. dL/dI of a pixel-wise loss.
    Returns an object with .image, .gradient ({name: float}) and .F_gradient (float64 shaped like
    the HKL table, sim.Fgrid, index [h - h_min, k - k_min, l - l_min]; None without "F")."""
    from .derivatives import gradient as _gradient
    return _gradient(sim, weights, wrt, mask, device, precision)


def set_parameters(sim: Simulation, values: dict) -> Simulation:
    """A new simulation with parameters set in their flag units (nbnumba.derivatives.apply)."""
    from .derivatives import apply
    return apply(sim, values)


def refine(sim: Simulation, data, refine, fix=(), bounds=None, readout: float = 0.0, likelihood: str = "poisson",
           shoebox: int = 15, threshold: float = 0.02, allpixels: bool = False, planes: bool = True,
           background=None, usable=None, maxiter: int = 300, cycles: int = 3, positions: bool = True,
           device: str = "cpu", precision: str = "double", progress=None):
    """Fit `sim` (the starting model) to a measured image; the same result `nbnumba refine` prints.

    data: photons, float (slow, fast), or a file name (SMV counts: as `refine -data` reads them).
    refine: parameter names or groups (a list or "rotx,roty,rotz,cell,N,scale"), fix: names left
    out; bounds: {name: (low, high)} in flag units.  readout: read-out noise sigma in photons;
    likelihood "poisson" or "lsq"; shoebox, threshold: the spot windows (allpixels: the whole
    detector in tiles); planes: a background plane per window; background: a fixed (slow, fast)
    photon image, scaled by the parameter bg_scale; usable: bool (slow, fast), False for pixels to
    leave out; positions: first fit the spots' positions to the data's (refine.positions).
    progress: a function given one line per iteration.
    Returns a `nbnumba.refine.result.RefineResult`: names, start, values, errors, correlation,
    loss, pixels, iterations, seconds, sim (the refined Simulation), table(), to_json()."""
    from .refine.data import Data, load_data
    from .refine.driver import refine as _refine
    from .refine.engine import Settings
    from .refine.likelihood import Likelihood

    settings = Settings(likelihood=Likelihood(likelihood, readout), shoebox=shoebox, threshold=threshold,
                        allpixels=allpixels, planes=planes, maxiter=maxiter, cycles=cycles,
                        positions=positions)
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        measured = load_data(data, sim.shape, readout=readout, mask=usable)
    else:
        photons = np.asarray(data, dtype=np.float64)
        ok = np.isfinite(photons) if usable is None else np.isfinite(photons) & np.asarray(usable, dtype=bool)
        measured = Data(np.where(ok, photons, 0.0), ok, "array", 0.0, 1.0)
    return _refine(sim, measured, refine, fix, bounds or {}, settings, background, device, precision,
                   say=progress)

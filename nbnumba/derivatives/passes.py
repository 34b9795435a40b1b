"""Derivative passes: the value image with K derivative images (`jacobian`), or with the reduced
gradient sum_i g_i dI_i/dp of K parameters and of the structure-factor table (`gradient`).

Both walk only the pixels asked for (the simulation's ROI and mask, further cut by a mask or a
pixel list), so their cost follows the pixels of a fit, not the detector.  The reference's two
order-dependent switches (the first rendered pixel starts from the unrotated lattice; tricubic
interpolation is switched off for good after the first pixel whose neighbourhood leaves the table)
are resolved over the whole detector as `render.render` resolves them, so every value equals the
render's: a value pass over the detector runs first only when a switch can move (a resolution
limit with phi-dependent lattices, or interpolation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..kernels.render import _pair_major, first_active_pixel
from ..model.simulation import Simulation
from ..physics import layout as L
from ..physics.tangent_pixel import N_SHARE_COLUMNS
from .directions import directions
from .parameters import check_names


@dataclass
class Jacobian:
    """image: float64 (slow, fast), the float image `run` writes (its float32 cast is that image, bit
    for bit, in double precision).  derivatives: {name: float64 (slow, fast)}, dI/dp per unit of the
    parameter in its flag units (derivatives.parameters).  Pixels not asked for are 0."""

    image: np.ndarray
    derivatives: dict
    seconds: float


@dataclass
class Gradient:
    """image as Jacobian's; gradient: {name: sum_i weights_i dI_i/dp} over the pixels asked for;
    F_gradient: sum_i weights_i dI_i/dF_hkl, float64 shaped like the HKL table (sim.hkl.grid;
    index [h - h_min, k - k_min, l - l_min]), or None when "F" is not asked for."""

    image: np.ndarray
    gradient: dict
    F_gradient: np.ndarray | None
    seconds: float


def _real(precision: str):
    if precision not in ("double", "single"):
        raise UserError(f"precision must be double or single, got {precision!r}")
    return np.float32 if precision == "single" else np.float64


def _backend(device: str):
    if device == "cpu":
        from ..kernels import derivatives_cpu
        return derivatives_cpu
    if device == "cuda":
        from ..kernels import derivatives_cuda
        if not derivatives_cuda.available():
            raise UserError("device cuda: no usable CUDA GPU or driver was found")
        return derivatives_cuda
    raise UserError(f"device must be cpu or cuda, got {device!r}")


def active_pixels(sim: Simulation) -> np.ndarray:
    """(slow, fast) bool: the pixels `run` renders (ROI and mask)."""
    spixels, fpixels = sim.shape
    xmin, xmax, ymin, ymax = sim.detector.roi
    s = np.arange(spixels)[:, None]
    f = np.arange(fpixels)[None, :]
    active = (f >= xmin) & (f <= xmax) & (s >= ymin) & (s <= ymax)
    if sim.mask is not None:
        active &= sim.mask != 0
    return active


def pixel_list(sim: Simulation, mask) -> np.ndarray:
    """Scan indices (ascending) of the rendered pixels that `mask` keeps: None (all), a (slow, fast)
    array of bools or reals (non-zero: kept), or an integer array of (slow, fast) rows."""
    active = active_pixels(sim)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype.kind in "iu":
            rows = mask.reshape(-1, 2).astype(np.int64)
            if not ((rows >= 0).all() and (rows[:, 0] < sim.shape[0]).all() and (rows[:, 1] < sim.shape[1]).all()):
                raise UserError("a pixel of the pixel list is outside the detector")
            chosen = np.zeros(sim.shape, dtype=bool)
            chosen[rows[:, 0], rows[:, 1]] = True
            active &= chosen
        elif mask.shape != sim.shape:
            shape = "x".join(str(n) for n in mask.shape[::-1]) or "a scalar"
            raise UserError(f"the mask is {shape} but the detector is {sim.shape[1]}x{sim.shape[0]} pixels")
        else:
            active &= mask != 0
    return np.flatnonzero(active.ravel()).astype(np.int32)  # a CUDA launch's limit keeps them int32


def _arrays(sim: Simulation, real) -> dict:
    return dict(geo=sim.geo.astype(real), ints=sim.ints.copy(), sources=sim.source_table.astype(real),
                lattice=_pair_major(sim.lattice, real), recip=sim.recip.astype(real), Fhkl=sim.Fgrid.astype(real))


def _pass(backend, arrays, dirs, pixels, weights, store, scatter, table_shape, shape):
    """(image (float64, `shape`), tangents (pixels x K, with `store`), flags per pixel, reduced
    gradient (K, in the order of `names`: the stacked directions' and the contracted ones'),
    structure factors' gradient or None)."""
    parts = backend.parts(len(pixels))
    n, k = len(pixels), dirs["dgeo"].shape[0]
    image = np.zeros(shape)
    dvalues = np.zeros((n, k) if store else (1, k))
    flags = np.zeros(n, dtype=np.int8)
    gradient_parts = np.zeros((parts, k))
    Fgrad_parts = np.zeros((parts,) + (table_shape if scatter else (1, 1, 1)))
    share_parts = np.zeros((parts, N_SHARE_COLUMNS if dirs["folded"] else 0))
    backend.tangent_pixels(pixels, arrays["geo"], arrays["ints"], arrays["sources"], arrays["lattice"],
                           arrays["recip"], arrays["Fhkl"], dirs["frames"], dirs["dgeo"], dirs["dsources"],
                           dirs["dbase"], dirs["dlattice"], dirs["generic"], dirs["drecip"], dirs["use_shares"],
                           dirs["use_q"], weights.ravel(), store, scatter, image.ravel(), dvalues, flags,
                           gradient_parts, Fgrad_parts, share_parts)
    gradient = np.zeros(len(dirs["kept"]) + len(dirs["folded"]))
    gradient[dirs["kept"]] = gradient_parts.sum(axis=0)
    if dirs["folded"]:
        gradient[dirs["folded"]] = dirs["shares"] @ share_parts.sum(axis=0)
    return image, dvalues, flags, gradient, Fgrad_parts.sum(axis=0) if scatter else None


def _resolve_switches(sim: Simulation, backend, arrays, real) -> None:
    """Set ints' first pixel and the end of interpolation as `render.render` finds them."""
    ints = arrays["ints"]
    guess = first_active_pixel(sim)
    ints[L.I_FIRST_PIXEL] = guess
    variants_differ = not np.array_equal(sim.lattice[0], sim.lattice[1])
    if not ((variants_differ and sim.geo[L.G_DMIN] > 0) or sim.interpolate):
        return
    everything = pixel_list(sim, None)
    none = directions(sim, [], real)
    def flags():
        return _pass(backend, arrays, none, everything, np.zeros(1), True, False, None, sim.shape)[2]

    found = flags()
    ran = everything[np.flatnonzero(found & 2)]
    if ran.size and ran[0] != guess and variants_differ:
        ints[L.I_FIRST_PIXEL] = ran[0]
        if sim.interpolate:
            found = flags()
    left = everything[np.flatnonzero(found & 1)]
    if sim.interpolate and left.size and left[0] < sim.shape[0] * sim.shape[1] - 1:
        ints[L.I_INTERP_UNTIL] = left[0]


def _prepare(sim, wrt, mask, device, precision, allow_F):
    names = check_names(sim, wrt, allow_F) if wrt else []
    real = _real(precision)
    backend = _backend(device)
    arrays = _arrays(sim, real)
    _resolve_switches(sim, backend, arrays, real)
    return names, real, backend, arrays, pixel_list(sim, mask)


def _image(sim, pixels, values):
    image = np.zeros(sim.shape)
    image.ravel()[pixels] = values
    return image


def jacobian(sim: Simulation, wrt=(), mask=None, device: str = "cpu", precision: str = "double") -> Jacobian:
    t0 = time.perf_counter()
    names, real, backend, arrays, pixels = _prepare(sim, wrt, mask, device, precision, allow_F=False)
    dirs = directions(sim, names, real)
    image, dvalues, _, _, _ = _pass(backend, arrays, dirs, pixels, np.zeros(1), True, False, None, sim.shape)
    derivatives = {name: _image(sim, pixels, dvalues[:, j]) for j, name in enumerate(names)}
    return Jacobian(image, derivatives, time.perf_counter() - t0)


def gradient(sim: Simulation, weights, wrt=(), mask=None, device: str = "cpu",
             precision: str = "double") -> Gradient:
    t0 = time.perf_counter()
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != sim.shape:
        shape = "x".join(str(n) for n in weights.shape[::-1]) or "a scalar"
        raise UserError(f"the weights are {shape} but the detector is {sim.shape[1]}x{sim.shape[0]} pixels")
    names, real, backend, arrays, pixels = _prepare(sim, wrt, mask, device, precision, allow_F=True)
    scatter = "F" in names
    names = [n for n in names if n != "F"]
    dirs = directions(sim, names, real, contract=backend.CONTRACTS_SHARES)
    image, _, _, grad, Fgrad = _pass(backend, arrays, dirs, pixels, np.ascontiguousarray(weights), False, scatter,
                                     sim.Fgrid.shape, sim.shape)
    return Gradient(image, {n: float(grad[j]) for j, n in enumerate(names)}, Fgrad, time.perf_counter() - t0)

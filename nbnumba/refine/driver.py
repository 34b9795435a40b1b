"""One shot's refinement from a starting Simulation and the measured image: the usable pixels,
the fixed background image (the -bg_ group's, or the user's), the model, the fit, the result."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from . import positions
from .data import Data
from .engine import Settings, fit
from .model import SimulationModel
from .parameters import bounds_for, expand, parse_bounds
from .result import RefineResult, unit_of


def active_pixels(sim) -> np.ndarray:
    """The pixels the run renders: inside its ROI and not masked."""
    xmin, xmax, ymin, ymax = sim.detector.roi
    slow, fast = np.indices(sim.shape)
    active = (fast >= xmin) & (fast <= xmax) & (slow >= ymin) & (slow <= ymax)
    if sim.mask is not None:
        active &= sim.mask != 0
    return active


def background_image(sim, given=None) -> np.ndarray | None:
    """The fixed background in photons: the user's image, else the -bg_ group's amorphous
    scattering rendered once at the start, else None."""
    if given is not None:
        given = np.asarray(given, dtype=np.float64)
        if given.shape != sim.shape:
            raise UserError(f"the background image is {given.shape[1]}x{given.shape[0]} pixels but the detector is "
                            f"{sim.shape[1]}x{sim.shape[0]}")
        return given
    if sim.params.bg_stol_file is None:
        return None
    from ..amorphous.chain import add_background
    return np.asarray(add_background(sim, np.zeros(sim.shape, dtype=np.float32)), dtype=np.float64)


def refine(sim, data: Data, refine, fix=(), bounds=None, settings: Settings | None = None, background=None,
           device: str = "cpu", precision: str = "double", say=None, stop=None) -> RefineResult:
    settings = settings or Settings()
    if data.photons.shape != sim.shape:
        raise UserError(f"the data are {data.photons.shape[1]}x{data.photons.shape[0]} pixels but the detector is "
                        f"{sim.shape[1]}x{sim.shape[0]}")
    names = expand(refine, fix)
    model = SimulationModel(sim, names, background_image(sim, background), device, precision)
    given = parse_bounds(bounds) if isinstance(bounds, str) or bounds is None else dict(bounds)
    limits = bounds_for(names, model.start, given)
    usable = data.usable & active_pixels(sim)
    begin, found = model.start, None
    if settings.positions:
        found = positions.data_spots(data.photons, usable, settings.likelihood.readout)
        stage = positions.fit(model, found, usable, model.start, limits, settings.threshold, settings.shoebox, say)
        begin = stage.values
        if stage.skipped and say is not None:
            say(f"refine: positions stage left out: {stage.skipped}")
    done = fit(model, data.photons, usable, limits, settings, say=say, stop=stop, begin=begin, found=found)
    refined = model.simulation(done.values, with_scale=True)
    return RefineResult(names, [unit_of(n) for n in names], done.start, done.values, done.errors, done.correlation,
                        done.loss, done.start_loss, done.pixels, done.windows.count, done.iterations,
                        done.evaluations, done.seconds, done.converged, done.message, done.interrupted,
                        settings.likelihood.kind, settings.likelihood.readout, refined, done)

"""The amorphous background of a run: nonBragg's scattering of the -bg_ group's sample, rendered on
the run's own detector and sources (one geometry for spots and background, whatever the convention,
rotation or pivot), added to the spots in float32 as users add the two programs' images (the
detector response that follows is response/outputs.py's, as noisify applies it).

`nbnumba nonbragg` reads -Xbeam/-Ybeam and the detector flags as nonBragg does; the -bg_ group
never goes through that reading, so its water ring is centred on the spots' direct beam."""

from __future__ import annotations

import functools
import os
from typing import Callable

import numpy as np

from ..model.simulation import Simulation
from ..runtime.jitcache import compile_notice
from .options import NonBraggParams
from .setup import StolTable, background_on, check_weights, read_stol_table, sample_in_beam

# nonBragg's sample is 0.1 mm wide and high unless told otherwise; the -bg_ group sets its thickness
SAMPLE_ACROSS = (NonBraggParams.sample_y, NonBraggParams.sample_z)


@functools.lru_cache(maxsize=8)
def _cached_table(path: str, size: int, mtime_ns: int, unit: float) -> StolTable:
    return read_stol_table(path, unit)


def stol_table(path: str, unit: float) -> StolTable:
    """The -bg_ group's table, read once per file, size and modification time in a process (a
    batch worker or a Python session renders many images with it; the kernels only read it)."""
    try:
        st = os.stat(path)
    except OSError:
        return read_stol_table(path, unit)  # its own one-line error
    return _cached_table(path, st.st_size, st.st_mtime_ns, unit)


def check_background(sim: Simulation) -> None:
    """Read the -bg_ table (kept for the render) and check the weights of the sources that light
    it before rendering, so that a mistake in them stops the command before any work."""
    p = sim.params
    if p.bg_stol_file is None:
        return
    stol_table(p.bg_stol_file, p.bg_stol_unit)
    if p.sourcefile is not None:
        check_weights(p.sourcefile, [row[3] for row in sim.sources.listing])


def negative_warning(pixels: int) -> str:
    return (f"nbnumba: warning: the background is negative in {pixels} pixels (the table's cubic spline "
            "overshoots); -bg_fix_spline keeps it between the table's values")


def add_background(sim: Simulation, spots: np.ndarray, progress: bool = False,
                   say: Callable[[str], None] | None = None, device: str | None = None) -> np.ndarray:
    """The spots plus the background of the -bg_ group's sample on the run's detector, lit by the
    run's sources and fluence, oversampled as nonBragg would be by the same -oversample (1 when
    not given), left out of the pixels -mask skips, added in float32; the spots alone without
    -bg_stol.  `say` (stderr for `run` and the API, None in a batch worker) hears that the
    background kernels compile, the first time, and that the background goes negative (nonBragg's
    spline overshoot) without -bg_fix_spline; `device` overrides -device."""
    p = sim.params
    if p.bg_stol_file is None:
        return spots
    table = stol_table(p.bg_stol_file, p.bg_stol_unit)
    sample, _ = sample_in_beam(p.bg_thick, *SAMPLE_ACROSS, p.bg_density, p.bg_MW, 0.0, p.beamsize)
    device = device or p.device
    with compile_notice(f"background {device}", say or (lambda line: None)):
        rendered = background_on(sim, table, sample, p.oversample if p.oversample > 0 else 1, device=device,
                                 fix_spline=p.bg_fix_spline, progress=progress)
    if sim.mask is not None:  # -mask's skipped pixels stay empty, as the spots leave them
        rendered.image[sim.mask == 0] = 0.0
    negative = int((rendered.image < 0).sum())
    if negative and say is not None:
        say(negative_warning(negative))
    return spots.astype(np.float32) + rendered.image

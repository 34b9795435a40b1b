"""The amorphous background of a run: nonBragg's image of the -bg_ group's sample on the same
detector and beam, added to the spots in float32 as users add the two programs' images (the
detector response that follows is outputs.py's, as noisify applies it)."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..model.simulation import Simulation

# The background's group: nonBragg's own flags under a bg_ prefix, handed to nonBragg as typed.
BACKGROUND_FLAGS = {"-bg_stol": "-stol", "-bg_4stol": "-4stol", "-bg_Q": "-Q", "-bg_thick": "-thickness",
                    "-bg_density": "-density", "-bg_MW": "-MW"}
# nanoBragg flags that nonBragg reads with another meaning (its sample is the amorphous one) or that
# name run's own outputs: the background is rendered without them.
NOT_FOR_THE_BACKGROUND = ("-sample", "-xtal", "-density", "-MW", "-molec", "-thick", "-floatfile", "-floatimage",
                          "-intfile", "-intimage", "-noisefile", "-noiseimage", "-pgm", "-nopgm", "-nonoise",
                          "-out", "-nexus", "-printout", "-trace", "-dump", "-seed", "-scale", "-progress",
                          "-noprogress")


def _groups(argv: list[str]) -> list[list[str]]:
    """The argument list cut into flags, each with the values that follow it."""
    from ..model.options import looks_numeric

    groups: list[list[str]] = []
    for token in argv:
        if token.startswith("-") and not looks_numeric(token) or not groups:
            groups.append([token])
        else:
            groups[-1].append(token)
    return groups


def nonbragg_argv(argv: list[str]) -> list[str]:
    """nonBragg's command line for the background of a run: the run's geometry and beam flags that
    nonBragg also reads, and the -bg_ group under nonBragg's names, each value as typed."""
    from .options import NONBRAGG_FLAGS

    out = []
    for flag, *values in _groups(argv):
        if flag in BACKGROUND_FLAGS:
            out += [BACKGROUND_FLAGS[flag], *values]
        elif not flag.startswith(NOT_FOR_THE_BACKGROUND) and any(f.matches(flag) for f in NONBRAGG_FLAGS):
            out += [flag, *values]
    return out + ["-nonoise", "-nopgm", "-noprogress"]


def add_background(sim: Simulation, spots: np.ndarray, progress: bool = False) -> np.ndarray:
    """The spots plus the background of the -bg_ group's sample, rendered by nonBragg's rules on the
    same flags (its beam centre, its oversampling), then added in float32 as users add the two
    programs' images; the spots alone without -bg_stol."""
    from .nonbragg_setup import background, build

    if sim.params.bg_stol_file is None:
        return spots
    nb = build(nonbragg_argv(sim.params.argv))
    if nb.detector.fpixels != sim.detector.fpixels or nb.detector.spixels != sim.detector.spixels:
        raise UserError("the background's detector differs in size from the run's (check -detsize/-detpixels)")
    rendered = background(nb, progress=progress)
    return spots.astype(np.float32) + rendered.image.astype(np.float32)

"""One shot's refinement from its options and starting flags, as the command and the list mode's
workers run it: build the model, read the data, fit, print the table, write PREFIX.*."""

from __future__ import annotations

from ..errors import UserError
from .engine import Settings
from .likelihood import Likelihood


def settings_of(options: dict) -> Settings:
    return Settings(likelihood=Likelihood(options.get("likelihood", "poisson"), options.get("readout", 0.0)),
                    shoebox=options.get("shoebox", 15), threshold=options.get("spot_threshold", 0.02),
                    allpixels=options.get("allpixels", False), planes=not options.get("noplanes", False),
                    maxiter=options.get("maxiter", 300), cycles=options.get("cycles", 3),
                    positions=not options.get("nopositions", False))


def device_of(p) -> str:
    """-device auto: the GPU when one is found (as `run` decides), else the CPU."""
    if p.device != "auto":
        return p.device
    from ..kernels.backends import backend_for
    return "cuda" if backend_for(p).__name__.endswith("cuda") else "cpu"


def refine_shot(options: dict, flags: list[str], say=None, stop=None, echo=None, note=None, extra=None):
    """Refine the data of options["data"] against the model of `flags`; `echo` gets the table's
    lines, `note` the set-up's warnings; options["out"] names the files' prefix.  `extra` goes
    into PREFIX.json.  Returns the RefineResult."""
    from ..io.any_image import load_image
    from ..model.simulation import announce, build
    from . import outputs
    from .data import load_data
    from .driver import background_image, refine

    if "data" not in options:
        raise UserError("refine needs -data IMAGE (the measured image) and the starting model's flags")
    if "refine" not in options:
        raise UserError("refine needs -refine NAMES, e.g. -refine rotx,roty,rotz,cell,N,scale,distance,beam")
    settings = settings_of(options)
    frame = options.get("frame", 1)
    if frame < 1:
        raise UserError(f"-frame counts from 1, got {frame}")
    if "out" in options:
        outputs.check(options["out"])
    from ..runtime.threads import set_threads

    sim = build(list(flags), say=None)
    if sim.params.nthreads:
        set_threads(sim.params.nthreads)
    if note is not None:
        announce(sim, note)
    data = load_data(options["data"], sim.shape, frame, options.get("adc"), options.get("gain"), None,
                     settings.likelihood.readout)
    given = load_image(options["bgimage"], sim.shape).image if "bgimage" in options else None
    background = background_image(sim, given)
    device = device_of(sim.params)
    result = refine(sim, data, options["refine"], options.get("fix", ()), options.get("bounds"), settings, background,
                    device, sim.params.precision, say=say, stop=stop)
    if echo is not None:
        for line in result.table():
            echo(line)
    if "out" in options:
        outputs.write(options["out"], result, list(flags), {"data": data.path, "frame": frame, "adc": data.adc,
                                                            "gain": data.gain, **(extra or {})}, background, device)
    return result

"""`nbnumba refine`: fit the model of nanoBragg's flags to a measured image (or to each image of a
list), print the refined parameters with their standard errors, write PREFIX.json/.flags/
_model.bin/.png."""

from __future__ import annotations

import click

from ..errors import UserError
from ..runtime.guard import PASSTHROUGH, guarded, note

# refine's own options, taken out before the rest (the starting model's flags) goes to the run
# parser; -adc, -gain, -readout and -out mean the data's here, not a rendered image's
VALUED = {"data": str, "frame": int, "adc": float, "gain": float, "readout": float, "refine": str, "fix": str,
          "bounds": str, "shoebox": int, "spot_threshold": float, "likelihood": str, "maxiter": int, "cycles": int,
          "out": str, "bgimage": str, "list": str, "outdir": str, "workers": int, "scheduler": str}
SWITCHES = {"allpixels", "noplanes", "noprogress"}
KIND = {int: "an integer", float: "a number", str: "a value"}
GRACE_S = 60.0  # after Ctrl-C: time to compute the errors at the best point and write the files


def split_options(args: list[str]) -> tuple[dict, list[str]]:
    """(refine's options, the starting model's flags)."""
    ours: dict = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        name = args[i].lstrip("-") if args[i].startswith("-") else None
        if name in VALUED:
            if i + 1 >= len(args):
                raise UserError(f"-{name} needs {KIND[VALUED[name]]}")
            try:
                ours[name] = VALUED[name](args[i + 1])
            except ValueError:
                raise UserError(f"-{name} expects {KIND[VALUED[name]]}, got {args[i + 1]!r}") from None
            i += 2
            continue
        if name in SWITCHES:
            ours[name] = True
        else:
            rest.append(args[i])
        i += 1
    return ours, rest


def settings_of(ours: dict):
    from ..refine.engine import Settings
    from ..refine.likelihood import Likelihood

    return Settings(likelihood=Likelihood(ours.get("likelihood", "poisson"), ours.get("readout", 0.0)),
                    shoebox=ours.get("shoebox", 15), threshold=ours.get("spot_threshold", 0.02),
                    allpixels=ours.get("allpixels", False), planes=not ours.get("noplanes", False),
                    maxiter=ours.get("maxiter", 300), cycles=ours.get("cycles", 3))


def device_of(p) -> str:
    """-device auto: the GPU when one is found (as `run` decides), else the CPU."""
    if p.device != "auto":
        return p.device
    from ..kernels.backends import backend_for
    return "cuda" if backend_for(p).__name__.endswith("cuda") else "cpu"


def refine_one(ours: dict, flags: list[str], say=None, stop=None, echo=click.echo):
    """Refine one shot: the data of -data against the model of `flags`; print the table and
    write the files of -out.  Returns the RefineResult."""
    from ..io.any_image import load_image
    from ..model.simulation import announce, build
    from ..refine import outputs
    from ..refine.data import load_data
    from ..refine.driver import background_image, refine

    if "data" not in ours:
        raise UserError("refine needs -data IMAGE (the measured image) and the starting model's flags")
    if "refine" not in ours:
        raise UserError("refine needs -refine NAMES, e.g. -refine rotx,roty,rotz,cell,N,scale,distance,beam")
    settings = settings_of(ours)
    if ours.get("frame", 1) < 1:
        raise UserError(f"-frame counts from 1, got {ours['frame']}")
    if "out" in ours:
        outputs.check(ours["out"])
    sim = build(flags, say=None)
    announce(sim, note)
    data = load_data(ours["data"], sim.shape, ours.get("frame", 1), ours.get("adc"), ours.get("gain"), None,
                     settings.likelihood.readout)
    given = load_image(ours["bgimage"], sim.shape).image if "bgimage" in ours else None
    background = background_image(sim, given)
    device = device_of(sim.params)
    result = refine(sim, data, ours["refine"], ours.get("fix", ()), ours.get("bounds"), settings, background,
                    device, sim.params.precision, say=say, stop=stop)
    for line in result.table():
        echo(line)
    if "out" in ours:
        outputs.write(ours["out"], result, flags, {"data": data.path, "frame": ours.get("frame", 1),
                                                   "adc": data.adc, "gain": data.gain}, background, device)
    return result


def run_refine(args: list[str]) -> None:
    from ..runtime import interrupt

    ours, flags = split_options(args)
    if "list" in ours:
        from ..refine.shots import run_list
        return run_list(ours, flags, echo=click.echo)
    say = None if ours.get("noprogress") else note
    with interrupt.grace(GRACE_S):
        refine_one(ours, flags, say=say, stop=interrupt.requested)


@click.command(context_settings=PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def refine(args) -> None:
    """Fit the model of nanoBragg's flags to a measured image, every pixel of the spots' windows.

    \b
    nbnumba refine -data IMAGE [-frame N] [-adc A] [-gain G] [-readout SIGMA] [-mask MASK.img]
                   -refine rotx,roty,rotz,cell,N,scale,distance,beam [-fix NAMES]
                   [-bounds name:low:high,...] [-shoebox 15] [-spot_threshold 0.02]
                   [-allpixels] [-noplanes] [-bgimage FILE] [-likelihood poisson|lsq]
                   [-maxiter 300] [-cycles 3] [-out PREFIX] [-noprogress]
                   [nanoBragg flags of the starting model]
    nbnumba refine -list SHOTS.csv [-outdir DIR] [-workers N | -scheduler ADDRESS] [options above]
    \b
    Prints each parameter's start, refined value and standard error; -out PREFIX writes
    PREFIX.json, PREFIX.flags (for `nbnumba run $(cat PREFIX.flags)`), PREFIX_model.bin and
    PREFIX.png.  Groups: rot, cell (a b c alpha beta gamma), edges (a b c), beam (Xbeam Ybeam),
    detector_rot; N is Na, Nb and Nc scaled together.  See the README's refine section.
    """
    guarded(run_refine, list(args))

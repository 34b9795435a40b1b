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
SWITCHES = {"allpixels", "noplanes", "nopositions", "noprogress"}
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


def run_refine(args: list[str]) -> None:
    from ..runtime import interrupt

    ours, flags = split_options(args)
    if "list" in ours:
        from .refine_shots import run_list
        code = run_list(ours, flags, echo=click.echo, note=note)
        if code:
            raise SystemExit(code)
        return
    from ..refine.shot import refine_shot

    say = None if ours.get("noprogress") else note
    with interrupt.grace(GRACE_S):
        refine_shot(ours, flags, say=say, stop=interrupt.requested, echo=click.echo, note=note)


@click.command(context_settings=PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def refine(args) -> None:
    """Fit the model of nanoBragg's flags to a measured image, every pixel of the spots' windows.

    \b
    nbnumba refine -data IMAGE [-frame N] [-adc A] [-gain G] [-readout SIGMA] [-mask MASK.img]
                   -refine rotx,roty,rotz,cell,N,scale,distance,beam [-fix NAMES]
                   [-bounds name:low:high,...] [-shoebox 15] [-spot_threshold 0.02]
                   [-allpixels] [-noplanes] [-nopositions] [-bgimage FILE] [-likelihood poisson|lsq]
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

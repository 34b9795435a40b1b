"""`nbnumba sweep` and `nbnumba batch`: the command lines (see docs/batch.md)."""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING

import click

from ..errors import RuntimeFailure, UserError
from ..runtime.guard import guarded

if TYPE_CHECKING:
    from ..batch.engine import EngineOptions
    from ..batch.frames import Outputs

CONTEXT = dict(ignore_unknown_options=True, allow_extra_args=True, help_option_names=["--help"])

# Options of sweep/batch themselves, taken out of the argument list before the rest goes to the
# run parser; each may be written with one dash or two, and `--name=value` works too.
VALUED = {"nframes": int, "first": int, "outdir": str, "prefix": str, "workers": int, "scheduler": str,
          "max_frames": int, "format": str, "compression": str, "images": str, "out": str}
SWITCHES = {"floats", "noise", "pgm", "noprogress"}
SWEEP_ONLY = {"nframes", "first"}
BATCH_ONLY = {"images", "out"}
FORMATS = {"sweep": ("smv", "nexus"), "batch": ("smv", "hdf5")}


def split_options(args: list[str], allowed: set[str]) -> tuple[dict, list[str]]:
    """(our options, the remaining run flags)."""
    ours: dict = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, value = arg, None
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
        bare = name.lstrip("-").replace("-", "_") if name.startswith("-") else None
        if bare in allowed and bare in VALUED:
            if value is None:
                if i + 1 >= len(args):
                    raise UserError(f"{name} needs a value")
                value = args[i + 1]
                i += 1
            convert = VALUED[bare]
            try:
                ours[bare] = convert(value)
            except ValueError:
                raise UserError(f"{name} expects an integer, got {value!r}") from None
        elif bare in allowed and bare in SWITCHES and value is None:
            ours[bare] = True
        else:
            rest.append(arg)
        i += 1
    for name in ("workers", "max_frames"):
        if name in ours and ours[name] < (1 if name == "workers" else 0):
            raise UserError(f"-{name} must be at least {1 if name == 'workers' else 0}, got {ours[name]}")
    return ours, rest


def _outputs(ours: dict, command: str) -> Outputs:
    from ..batch.frames import Outputs
    from ..io.nexus import COMPRESSIONS, _filters
    form = ours.get("format", "smv").lower()
    if form not in FORMATS[command]:
        raise UserError(f"-format expects {' or '.join(FORMATS[command])}, got {ours['format']!r}")
    compression = ours.get("compression", "gzip").lower()
    if compression not in COMPRESSIONS:
        raise UserError(f"-compression expects {', '.join(COMPRESSIONS)}, got {ours['compression']!r}")
    _filters(compression)  # a missing plugin stops the command before any rendering
    if "out" in ours and form != "hdf5":
        raise UserError("-out names the file of -format hdf5; SMV batches name their files by -outdir/-prefix")
    return Outputs(outdir=ours.get("outdir", "."), prefix=ours.get("prefix"), floats=ours.get("floats", False),
                   noise=ours.get("noise", False), pgm=ours.get("pgm", False), format=form,
                   compression=compression, images=ours.get("images"), out=ours.get("out"))


def _engine(ours: dict) -> EngineOptions:
    from ..batch.cluster import check_address
    from ..batch.engine import EngineOptions, hooks_from_env
    if ours.get("scheduler") is not None:
        check_address(ours["scheduler"])
    return EngineOptions(workers=ours.get("workers"), scheduler=ours.get("scheduler"),
                         progress=not ours.get("noprogress", False), max_frames=ours.get("max_frames"),
                         hooks=hooks_from_env())


def _check_first(frame) -> None:
    """Build the first frame here, so that a mistake stops the run before any cluster starts."""
    from ..amorphous.chain import check_background
    from ..batch.frames import input_paths
    from ..io.atomic import check_writable
    from ..model.simulation import announce, build

    sim = build(list(frame.argv), say=None)
    p = sim.params
    if p.precision not in ("double", "single"):
        raise UserError(f"-precision expects double or single, got {p.precision!r}")
    if p.device not in ("cpu", "cuda", "auto"):
        raise UserError(f"-device expects cpu, cuda or auto, got {p.device!r}")
    check_writable(list(frame.files), input_paths(p))
    check_background(sim)  # a mistake in the -bg_ table stops the command here too
    announce(sim, lambda line: click.echo(line, err=True))


def run_sweep(args: list[str]) -> int:
    from ..batch.engine import run_job
    from ..batch.frames import sweep_frames
    ours, rest = split_options(args, (set(VALUED) - BATCH_ONLY) | SWITCHES)
    engine = _engine(ours)
    if "nframes" not in ours:
        raise UserError("sweep needs -nframes N (the number of frames)")
    outputs = _outputs(ours, "sweep")
    job = sweep_frames(rest, ours["nframes"], outputs, ours.get("first", 1))
    job.command_line = shlex.join(["nbnumba", "sweep", *args])
    try:
        os.makedirs(outputs.outdir, exist_ok=True)
    except OSError as err:
        raise RuntimeFailure(f"cannot create {outputs.outdir}: {err.strerror or err}") from None
    _check_first(job.frames[0])
    return run_job(job, engine, say=click.echo)


def run_batch(args: list[str]) -> int:
    from ..batch.engine import run_job
    from ..batch.frames import batch_frames
    ours, rest = split_options(args, (set(VALUED) - SWEEP_ONLY) | SWITCHES)
    engine = _engine(ours)
    files = [a for a in rest[:1] if not a.startswith("-")]
    if not files:
        raise UserError("batch needs a job file: nbnumba batch JOBS.csv [run flags] (see docs/batch.md)")
    outputs = _outputs(ours, "batch")
    job = batch_frames(files[0], rest[1:], outputs)
    job.command_line = shlex.join(["nbnumba", "batch", *args])
    if outputs.format == "hdf5":
        try:
            os.makedirs(os.path.dirname(job.sink), exist_ok=True)
        except OSError as err:
            raise RuntimeFailure(f"cannot create {os.path.dirname(job.sink)}: {err.strerror or err}") from None
        if job.frames:
            _check_first(job.frames[0])
    return run_job(job, engine, say=click.echo)


def _guard(action, args) -> None:
    guarded(action, list(args))


@click.command(context_settings=CONTEXT)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sweep(args) -> None:
    """Render a rotation series: frame i covers [phi0 + i*osc, phi0 + (i+1)*osc).

    \b
    nbnumba sweep [run flags] -nframes N [-outdir DIR] [-prefix NAME] [-first K]
                  [-floats] [-noise] [-pgm] [-format smv|nexus] [-compression gzip|none|bslz4]
                  [--workers N | --scheduler ADDRESS] [-max_frames M] [-noprogress]
    \b
    Writes DIR/NAME_00001.img ... (SMV with PHI/OSC_START/OSC_RANGE), with -floats
    NAME_00001.bin, with -noise NAME_noise_00001.img (noise seed S+i, S = -seed or 1),
    and DIR/NAME_manifest.json; running it again renders only missing or stale frames.
    Every int frame has one scale (-scale, else chosen from frame 1; none under the
    detector-response flags: their counts are ADU at -gain).  -format nexus: the whole
    series in one NXmx file DIR/NAME.nxs instead.
    """
    _guard(run_sweep, args)


@click.command(context_settings=CONTEXT)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def batch(args) -> None:
    """Render one image per row of a CSV job file (base flags plus per-row overrides).

    \b
    nbnumba batch JOBS.csv [run flags added to the base] [-outdir DIR] [-prefix NAME]
                  [-floats] [-noise] [-pgm] [-format smv|hdf5 [-out DATASET.h5]
                  [-images float|int|noise] [-compression gzip|none|bslz4]]
                  [--workers N | --scheduler ADDRESS] [-max_frames M] [-noprogress]
    \b
    JOBS.csv: '# base: FLAGS' lines, a header of flag names without the dash, one row
    per image (see data/batch_example.csv).  Outputs default to DIR/NAME_00001.img
    (NAME: the job file's name); a row without -seed gets -seed ROW.  -format hdf5:
    one training-set file with images, labels (the varying flags and derived values)
    and geom.
    """
    _guard(run_batch, args)

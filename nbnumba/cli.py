"""The `nbnumba` command: a thin Click layer over the simulation, rendering and output modules."""

from __future__ import annotations

import os
import sys

import click
import numpy as np

from .command import guarded

PASSTHROUGH = dict(ignore_unknown_options=True, allow_extra_args=True, help_option_names=["--help"])


def _skip_scipy_blas() -> None:
    """Numba's first compiled call imports SciPy's BLAS only to offer np.dot, which nbnumba never
    uses; a one-shot command saves that 0.1-0.2 s (the library API leaves SciPy alone)."""
    sys.modules.setdefault("scipy.linalg.cython_blas", None)


def _note(line: str) -> None:
    click.echo(line, err=True)


def run_simulation(argv: list[str], trace: tuple[int, int] | None = None) -> None:
    from .api import backend_for
    from .chain import add_background
    from .io.atomic import check_writable
    from .io.hkl import write_fdump
    from .jitcache import compile_notice
    from .outputs import output_paths, statistics, write_outputs
    from .render import render
    from .report import setup_lines, solid_angle_line
    from .simulation import FDUMP, announce, build
    from .threads import set_threads
    from .trace_report import trace_lines, trace_pixel

    sim = build(argv, say=None)
    backend = backend_for(sim.params)
    set_threads(sim.params.nthreads)
    check_writable(output_paths(sim.params))
    announce(sim, _note)
    for line in setup_lines(sim):
        click.echo(line)
    if sim.hkl_source == "file":
        write_fdump(FDUMP, sim.hkl)
    p = sim.params
    if trace is None and p.trace_spixel >= 0 and p.trace_fpixel >= 0:
        trace = (p.trace_spixel, p.trace_fpixel)
    if trace is not None:
        click.echo(f"TRACE_CONFIG: tracing pixel (spixel={trace[0]}, fpixel={trace[1]})")
        with compile_notice(f"trace {p.precision}", _note):
            value, rows = trace_pixel(sim, trace[0], trace[1])
        for line in trace_lines(sim, value, rows):
            click.echo(line)
    with compile_notice(f"{backend.__name__.rsplit('.', 1)[-1]} {p.precision}", _note):
        rendered = render(sim, backend, p.precision, progress=p.progress and not p.printout)
    bad = int(rendered.image.size - np.isfinite(rendered.image).sum())
    if bad:
        click.echo(f"nbnumba: warning: {bad} pixels are not finite numbers (NaN or infinity); "
                   "check the geometry and the structure factors", err=True)
    from .printout import interpolation_warning, printout_lines
    if p.printout:
        for line in printout_lines(sim, rendered.image):
            click.echo(line)
    # the reference ends its warning without a newline: the one before the summary ends it
    warning = interpolation_warning(sim, rendered.interpolation_left_at) if rendered.interpolation_left_at >= 0 else []
    for line in warning or [""]:
        click.echo(line)
    click.echo(solid_angle_line(sim, rendered.omega_sum))
    image = add_background(sim, rendered.image, progress=p.progress and not p.printout)
    stats = statistics(sim, image)
    write_outputs(sim, image, stats, click.echo)


def trace_only(argv: list[str], pixel: tuple[int, int]) -> None:
    from .jitcache import compile_notice
    from .simulation import build
    from .trace_report import trace_lines, trace_pixel

    sim = build(argv)
    with compile_notice("trace double", _note):
        value, rows = trace_pixel(sim, pixel[0], pixel[1], "double")
    for line in trace_lines(sim, value, rows):
        click.echo(line)


HELP_WORDS = ("-h", "-help", "--help")


class NanoBraggGroup(click.Group):
    """nanoBragg's habits on top of Click: `nbnumba -hkl F.hkl ...` (a flag straight after the
    program name) is `nbnumba run -hkl F.hkl ...`, and `-h` or `-help` asks for help anywhere.
    The help words are rewritten here rather than registered as Click options, because a short
    option `-h` would make Click split nanoBragg's `-hkl` into `-h -k -l`."""

    def parse_args(self, ctx, args):
        args = ["--help" if a in HELP_WORDS else a for a in args]
        if args and args[0].startswith("-") and args[0] not in ("--help", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=NanoBraggGroup)
@click.version_option(package_name="nbnumba")
def main() -> None:
    """nbnumba: nanoBragg's diffraction simulator, same command line, on CPU and GPU.

    `nbnumba -hkl F.hkl -mat A.mat ...` (nanoBragg's flags straight after the program name) is
    the same as `nbnumba run ...`. `nbnumba flags [WORD]` lists every flag with its default and
    unit; `nbnumba COMMAND -h` describes one command."""


@main.command(context_settings=PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(args) -> None:
    """Render an image from nanoBragg's flags, e.g. `nbnumba run -hkl F.hkl -mat A.mat -out img.bin`.

    Every nanoBragg flag works with its meaning, units, defaults, synonyms and abbreviations:
    `nbnumba flags` lists them all, `nbnumba flags WORD` those that mention WORD. nbnumba adds
    -out FILE (= -floatfile), -precision double|single, -device cpu|cuda|auto, -nthreads N and the
    -fix_* switches that correct the reference's defects (see the README)."""
    _skip_scipy_blas()
    guarded(run_simulation, list(args))


@main.command(context_settings=PASSTHROUGH)
@click.option("--pixel", nargs=2, type=int, required=True, metavar="SLOW FAST", help="the pixel to follow")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def trace(pixel, args) -> None:
    """Print the TRACE_PY lines of one pixel without rendering the image.

    ARGS are `run`'s nanoBragg flags (`nbnumba flags` lists them)."""
    _skip_scipy_blas()
    guarded(trace_only, list(args), tuple(pixel))


@main.command()
@click.argument("word", required=False)
def flags(word) -> None:
    """Print the flag reference (Markdown) from the parser's own tables: each flag's values,
    default, unit and domain.  WORD keeps the flags whose name or meaning contains it."""
    from .options import flag_table, sweep_table

    def keep(row) -> bool:
        return word is None or word.lower() in row[0].lower() or word.lower() in row[-1].lower()

    run_rows = [row for row in flag_table() if keep(row)]
    sweep_rows = [row for row in sweep_table() if keep(row)]
    if not run_rows and not sweep_rows:
        click.echo(f"nbnumba: no flag or option matches {word!r}", err=True)
        sys.exit(1)
    if run_rows:
        click.echo("| flag | values | default | unit | domain | meaning |")
        click.echo("| --- | --- | --- | --- | --- | --- |")
        for name, nargs, default, unit, domain, text in run_rows:
            click.echo(f"| `{name}` | {nargs} | {default} | {unit} | {domain} | {text} |")
    if sweep_rows:
        if run_rows:
            click.echo("")
        click.echo("Options of `sweep` and `batch` themselves (one dash or two; `--name=value` works too):")
        click.echo("")
        click.echo("| option | values | default | domain | commands | meaning |")
        click.echo("| --- | --- | --- | --- | --- | --- |")
        for name, nargs, default, domain, commands, text in sweep_rows:
            click.echo(f"| `{name}` | {nargs} | {default} | {domain} | {commands} | {text} |")


@main.command("trace-diff")
@click.argument("ref", type=click.Path())
@click.argument("ours", type=click.Path())
@click.option("--tolerance", type=float, default=1e-6, show_default=True, help="relative tolerance")
@click.option("--json", "json_path", type=click.Path(), default=None, help="write the comparison as JSON")
def trace_diff(ref, ours, tolerance, json_path) -> None:
    """Compare two trace logs quantity by quantity; exit 1 when any is beyond tolerance."""
    from . import tracediff

    def compare():
        sys.exit(tracediff.main(ref, ours, tolerance=tolerance, json_path=json_path))

    guarded(compare)


@main.command("compare")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--roi", nargs=4, type=int, default=None, metavar="XMIN XMAX YMIN YMAX",
              help="compare only this region (inclusive, x the fast index, as -roi)")
@click.option("--shape", nargs=2, type=int, default=None, metavar="SLOW FAST",
              help="size of raw float images (default: square)")
@click.option("--threshold", type=float, default=0.999, show_default=True, help="lowest correlation that passes")
@click.option("--peaks", type=int, default=20, show_default=True, help="local maxima to match in each image")
@click.option("--json", "json_path", type=click.Path(), default=None, help="write the comparison as JSON")
@click.option("--png-dir", type=click.Path(), default=None, help="write a.png, b.png and diff.png previews here")
@click.option("--frame", type=int, default=1, show_default=True,
              help="image of an HDF5/NeXus file (from 1: a sweep's frame, a batch's row)")
def compare_images(a, b, roi, shape, threshold, peaks, json_path, png_dir, frame) -> None:
    """Compare two images (float .bin/.bin.gz, TIFF, SMV or HDF5/NeXus); exit 1 when the correlation is below threshold."""
    def run_compare():
        from . import compare

        sys.exit(compare.main(a, b, roi=roi, shape=shape, threshold=threshold, peaks=peaks,
                              json_path=json_path, png_dir=png_dir, frame=frame))

    guarded(run_compare)


from .batch.commands import batch, sweep  # noqa: E402 - the commands import this module lazily

main.add_command(sweep)
main.add_command(batch)


def console() -> None:
    """The `nbnumba` command.  When nothing is left running it leaves without the interpreter's
    teardown, which would spend about 0.2 s unloading Numba, its thread pool and LLVM: by then
    every output file is closed and synced, and the streams are flushed here.  Worker processes
    or threads still alive (a Dask cluster) get the ordinary exit, which shuts them down."""
    from . import interrupt

    interrupt.install()  # until a command's own handling starts, and after it ends
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    import multiprocessing
    import threading
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if others or multiprocessing.active_children():
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to deliver
            pass
    os._exit(code)


def _echo_flag_table(rows) -> None:
    """A companion program's flag table (flag, values, meaning) as Markdown."""
    click.echo("| flag | values | meaning |")
    click.echo("| --- | --- | --- |")
    for name, nargs, text in rows:
        click.echo(f"| `{name}` | {nargs} | {text} |")


@main.command(context_settings=PASSTHROUGH)
@click.option("--flags", "list_flags", is_flag=True, help="print the nonbragg flag reference (Markdown)")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def nonbragg(list_flags, args) -> None:
    """Amorphous scattering (water, air, ice...) as nonBragg: every nonBragg flag works (-stol water.stol ...)."""
    if list_flags:
        from .nonbragg_options import flag_table

        _echo_flag_table(flag_table())
        return
    from .nonbragg import run_nonbragg

    _skip_scipy_blas()
    guarded(run_nonbragg, list(args))


@main.command(context_settings=PASSTHROUGH)
@click.option("--flags", "list_flags", is_flag=True, help="print the noisify flag reference (Markdown)")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def noisify(list_flags, args) -> None:
    """Add detector effects to a float image: every flag of the reference's noisify works
    (e.g. -floatfile img.bin -readout 3 -flicker 0.02 -psf gauss -psf_fwhm 100)."""
    if list_flags:
        from .noisify_options import flag_table

        _echo_flag_table(flag_table())
        return
    from .noisify import run_noisify

    _skip_scipy_blas()
    guarded(run_noisify, list(args), click.echo, lambda line: click.echo(line, err=True))

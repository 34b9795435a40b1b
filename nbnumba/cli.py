"""The `nbnumba` command: a thin Click layer over the simulation, rendering and output modules."""

from __future__ import annotations

import os
import signal
import sys

import click
import numpy as np

from .errors import UserError

PASSTHROUGH = dict(ignore_unknown_options=True, allow_extra_args=True, help_option_names=["--help"])


class _Terminated(SystemExit):
    """SIGTERM: reported like an interruption; a plain exit with code 143 outside _guarded."""


def _terminate(signum, frame):
    raise _Terminated(143)


def _guarded(action, *args) -> None:
    """Run an action; a user's mistake or an interruption ends in one line on stderr, no traceback."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with np.errstate(all="ignore"):  # host-side float warnings on extreme inputs are noise, not output
            action(*args)
    except UserError as err:
        click.echo("nbnumba: error: " + " ".join(str(err).splitlines()), err=True)  # one line, always
        sys.exit(err.exit_code)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except KeyboardInterrupt:
        click.echo("nbnumba: interrupted", err=True)
        sys.exit(130)
    except _Terminated:
        click.echo("nbnumba: terminated", err=True)
        sys.exit(143)
    except MemoryError:
        click.echo("nbnumba: error: out of memory (try a smaller detector or -roi)", err=True)
        sys.exit(1)
    except Exception as err:  # noqa: BLE001 - last line of defence: never show a traceback
        if os.environ.get("NBNUMBA_DEBUG"):
            raise
        click.echo(f"nbnumba: internal error: {type(err).__name__}: {err} (set NBNUMBA_DEBUG=1 for details)",
                   err=True)
        sys.exit(1)


def _skip_scipy_blas() -> None:
    """Numba's first compiled call imports SciPy's BLAS only to offer np.dot, which nbnumba never
    uses; a one-shot command saves that 0.1-0.2 s (the library API leaves SciPy alone)."""
    sys.modules.setdefault("scipy.linalg.cython_blas", None)


def run_simulation(argv: list[str], trace: tuple[int, int] | None = None) -> None:
    from .api import backend_for, set_threads
    from .io.hkl import write_fdump
    from .outputs import check_writable, output_paths, statistics, write_outputs
    from .render import render
    from .report import setup_lines, solid_angle_line
    from .simulation import FDUMP, build
    from .trace_report import trace_lines, trace_pixel

    sim = build(argv)
    backend = backend_for(sim.params)
    set_threads(sim.params.nthreads)
    check_writable(output_paths(sim.params))
    for line in setup_lines(sim):
        click.echo(line)
    if sim.hkl_source == "file":
        click.echo(f"writing dump file for next time: {FDUMP}")
        write_fdump(FDUMP, sim.hkl)
    p = sim.params
    if trace is None and p.trace_spixel >= 0 and p.trace_fpixel >= 0:
        trace = (p.trace_spixel, p.trace_fpixel)
    if trace is not None:
        click.echo(f"TRACE_CONFIG: tracing pixel (spixel={trace[0]}, fpixel={trace[1]})")
        value, rows = trace_pixel(sim, trace[0], trace[1])
        for line in trace_lines(sim, value, rows):
            click.echo(line)
    rendered = render(sim, backend, p.precision, progress=p.progress and not p.printout)
    bad = int(rendered.image.size - np.isfinite(rendered.image).sum())
    if bad:
        click.echo(f"nbnumba: warning: {bad} pixels are not finite numbers (NaN or infinity); "
                   "check the geometry and the structure factors", err=True)
    click.echo("")
    click.echo(solid_angle_line(sim, rendered.omega_sum))
    stats = statistics(sim, rendered.image)
    write_outputs(sim, rendered.image, stats, click.echo)


def trace_only(argv: list[str], pixel: tuple[int, int]) -> None:
    from .simulation import build
    from .trace_report import trace_lines, trace_pixel

    sim = build(argv)
    value, rows = trace_pixel(sim, pixel[0], pixel[1], "double")
    for line in trace_lines(sim, value, rows):
        click.echo(line)


@click.group()
@click.version_option(package_name="nbnumba")
def main() -> None:
    """nbnumba: nanoBragg's diffraction simulator, same command line, on CPU and GPU."""


@main.command(context_settings=PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(args) -> None:
    """Render an image: every nanoBragg flag works (e.g. -hkl F.hkl -mat A.mat -out img.bin)."""
    _skip_scipy_blas()
    _guarded(run_simulation, list(args))


@main.command(context_settings=PASSTHROUGH)
@click.option("--pixel", nargs=2, type=int, required=True, metavar="SLOW FAST", help="the pixel to follow")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def trace(pixel, args) -> None:
    """Print the TRACE_PY lines of one pixel without rendering the image."""
    _skip_scipy_blas()
    _guarded(trace_only, list(args), tuple(pixel))


@main.command()
def flags() -> None:
    """Print the flag reference (Markdown), generated from the parser's own table."""
    from .options import flag_table

    click.echo("| flag | values | meaning |")
    click.echo("| --- | --- | --- |")
    for name, nargs, text in flag_table():
        click.echo(f"| `{name}` | {nargs} | {text} |")


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

    _guarded(compare)


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

    _guarded(run_compare)


from .batch.commands import batch, sweep  # noqa: E402 - the commands import this module lazily

main.add_command(sweep)
main.add_command(batch)


def console() -> None:
    """The `nbnumba` command.  When nothing is left running it leaves without the interpreter's
    teardown, which would spend about 0.2 s unloading Numba, its thread pool and LLVM: by then
    every output file is closed and synced, and the streams are flushed here.  Worker processes
    or threads still alive (a Dask cluster) get the ordinary exit, which shuts them down."""
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

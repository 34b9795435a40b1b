"""`nbnumba run`: one image from nanoBragg's flags, with the reference's printed summary and files."""

from __future__ import annotations

import click
import numpy as np

from ..runtime.guard import PASSTHROUGH, guarded, note, without_scipy_blas


def run_simulation(argv: list[str], trace: tuple[int, int] | None = None) -> None:
    from ..amorphous.chain import check_background
    from ..io.atomic import check_writable, together
    from ..io.hkl import write_fdump
    from ..kernels.backends import backend_for
    from ..model.params import output_paths
    from ..model.simulation import FDUMP, announce, build
    from ..runtime.threads import set_threads
    from .run_report import setup_lines

    sim = build(argv, say=None)
    p = sim.params
    outputs, inputs = output_paths(p), [p.hklfile, p.matfile, p.maskfile, p.sourcefile, p.stol_file, p.bg_stol_file]
    # Fdump.bin: written with -hkl, read without
    (outputs if sim.hkl_source == "file" else inputs if sim.hkl_source == "fdump" else []).append(FDUMP)
    backend = backend_for(p)
    set_threads(p.nthreads)
    check_writable(outputs, inputs)
    check_background(sim)
    announce(sim, note)
    for line in setup_lines(sim):
        click.echo(line)
    with together():  # no earlier file (Fdump.bin included) is replaced unless every output is written
        _render_and_write(sim, backend, trace)
        if sim.hkl_source == "file":
            write_fdump(FDUMP, sim.hkl)


def _render_and_write(sim, backend, trace) -> None:
    from ..amorphous.chain import add_background
    from ..kernels.render import render
    from ..outputs import prewarm
    from ..outputs.images import statistics, write_outputs
    from ..response.overloads import overload_warning
    from ..runtime.jitcache import compile_notice
    from .printout import interpolation_warning, printout_lines
    from .run_report import solid_angle_line
    from .trace_report import trace_lines, trace_pixel

    p = sim.params
    if trace is None and p.trace_spixel >= 0 and p.trace_fpixel >= 0:
        trace = (p.trace_spixel, p.trace_fpixel)
    if trace is not None:
        click.echo(f"TRACE_CONFIG: tracing pixel (spixel={trace[0]}, fpixel={trace[1]})")
        with compile_notice(f"trace {p.precision}", note):
            value, rows = trace_pixel(sim, trace[0], trace[1])
        for line in trace_lines(sim, value, rows):
            click.echo(line)
    helper = prewarm.start()
    with compile_notice(f"{backend.__name__.rsplit('.', 1)[-1]} {p.precision}", note):
        rendered = render(sim, backend, p.precision, progress=p.progress and not p.printout)
    bad = int(rendered.image.size - np.isfinite(rendered.image).sum())
    if bad:
        click.echo(f"nbnumba: warning: {bad} pixels are not finite numbers (NaN or infinity); "
                   "check the geometry and the structure factors", err=True)
    if p.printout:
        for line in printout_lines(sim, rendered.image):
            click.echo(line)
    # the reference ends its warning without a newline: the one before the summary ends it
    warning = interpolation_warning(sim, rendered.interpolation_left_at) if rendered.interpolation_left_at >= 0 else []
    for line in warning or [""]:
        click.echo(line)
    click.echo(solid_angle_line(sim, rendered.omega_sum))
    image = add_background(sim, rendered.image, progress=p.progress and not p.printout, say=note)
    prewarm.finish(helper)
    stats = statistics(sim, image)
    counts = write_outputs(sim, image, stats, click.echo)
    overloads = overload_warning(counts, "noise image" if p.calculate_noise else "int image")
    if overloads:
        note(overloads)


@click.command(context_settings=PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(args) -> None:
    """Render an image from nanoBragg's flags, e.g. `nbnumba run -hkl F.hkl -mat A.mat -out img.bin`.

    Every nanoBragg flag works with its meaning, units, defaults, synonyms and abbreviations:
    `nbnumba flags` lists them all, `nbnumba flags WORD` those that mention WORD. nbnumba adds
    -out FILE (= -floatfile), -precision double|single, -device cpu|cuda|auto, -nthreads N and the
    -fix_* switches that correct the reference's defects (see the README)."""
    with without_scipy_blas():
        guarded(run_simulation, list(args))

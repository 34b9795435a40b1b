"""The `nonbragg` command: nonBragg's amorphous-scattering image with its command line, printed
summary and output files."""

from __future__ import annotations

import click
import numpy as np

from ..amorphous import img as nonbragg_img
from ..amorphous.report import (
    nonbragg_setup_lines,
    nonbragg_solid_angle_line,
    nonbragg_statistics,
    write_nonbragg_outputs,
)
from ..amorphous.setup import background
from ..io.atomic import check_writable
from ..kernels.backends import flag_backend
from ..model.nonbragg import build, stolout_path, work
from ..model.params import output_paths
from ..runtime.guard import PASSTHROUGH, guarded, without_scipy_blas
from ..runtime.threads import set_threads
from .flags import echo_flag_table


def run_nonbragg(argv: list[str]) -> None:
    nb = build(argv)
    p = nb.params
    stolout = stolout_path(p)
    outputs = ([stolout] if stolout else []) + output_paths(p)
    estimate = work(nb)
    flag_backend(p.device, amorphous=True)  # a bad -device stops the run before anything is printed
    set_threads(p.nthreads)
    check_writable(outputs, [p.stol_file, p.imgfile, p.sourcefile])
    if p.progress and not p.printout and estimate.worth_saying():
        click.echo(estimate.summary(), err=True)  # the first line of the progress display, as run's
    for line in nonbragg_setup_lines(nb):
        click.echo(line)
    rendered = background(nb, progress=nb.params.progress and not nb.params.printout)
    bad = int(rendered.image.size - np.isfinite(rendered.image).sum())
    if bad:
        click.echo(f"nbnumba: warning: {bad} pixels are not finite numbers (NaN or infinity); "
                   "check the geometry and the table", err=True)
    click.echo("")
    click.echo(nonbragg_solid_angle_line(rendered.omega_sum))
    count, difference, files = None, [], []
    if nb.img is not None:
        fit = nonbragg_img.fit(nb, rendered.image, rendered.last)
        for line in fit.warnings:
            click.echo(line)
        files.append((fit.path, nonbragg_img.table_text(fit)))
        click.echo(f"wrote {fit.path} as {len(fit.lines)} lines of text")
        count, difference = fit.last_count, fit.difference
    stats = nonbragg_statistics(nb, rendered.image, count)
    # every output written together: no earlier file is replaced unless all of them are
    write_nonbragg_outputs(nb, rendered.image, stats, click.echo, difference, files)


@click.command(context_settings=PASSTHROUGH)
@click.option("--flags", "list_flags", is_flag=True, help="print the nonbragg flag reference (Markdown)")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def nonbragg(list_flags, args) -> None:
    """Amorphous scattering (water, air, ice...) as nonBragg: every nonBragg flag works (-stol water.stol ...)."""
    if list_flags:
        from ..model.nonbragg_options import flag_table

        echo_flag_table(flag_table())
        return
    with without_scipy_blas():
        guarded(run_nonbragg, list(args))

"""The `nonbragg` command: nonBragg's amorphous-scattering image with its command line, printed
summary and output files."""

from __future__ import annotations

import click
import numpy as np

from ..amorphous import img as nonbragg_img
from ..amorphous.nonbragg_setup import background, build, work
from ..amorphous.report import setup_lines, solid_angle_line, statistics, write_outputs
from ..io.atomic import atomic_write_bytes, check_writable, together
from ..kernels.backends import flag_backend
from ..response.outputs import output_paths
from ..runtime.guard import PASSTHROUGH, guarded, skip_scipy_blas
from ..runtime.threads import set_threads
from .flags import echo_flag_table


def run_nonbragg(argv: list[str]) -> None:
    nb = build(argv)
    flag_backend(nb.params.device, amorphous=True)  # a bad -device stops the run before anything is printed
    set_threads(nb.params.nthreads)
    stolout = nonbragg_img.stolout_path(nb.params)
    p = nb.params
    check_writable(([stolout] if stolout else []) + output_paths(p), [p.stol_file, p.imgfile, p.sourcefile])
    estimate = work(nb)
    if p.progress and not p.printout and estimate.worth_saying():
        click.echo(estimate.summary(), err=True)  # the first line of the progress display, as run's
    for line in setup_lines(nb):
        click.echo(line)
    rendered = background(nb, progress=nb.params.progress and not nb.params.printout)
    bad = int(rendered.image.size - np.isfinite(rendered.image).sum())
    if bad:
        click.echo(f"nbnumba: warning: {bad} pixels are not finite numbers (NaN or infinity); "
                   "check the geometry and the table", err=True)
    click.echo("")
    click.echo(solid_angle_line(rendered.omega_sum))
    count, difference = None, []
    with together():  # no earlier file is replaced unless every output is written
        if nb.img is not None:
            fit = nonbragg_img.fit(nb, rendered.image, rendered.last)
            for line in fit.warnings:
                click.echo(line)
            atomic_write_bytes(fit.path, nonbragg_img.table_text(fit))
            click.echo(f"wrote {fit.path} as {len(fit.lines)} lines of text")
            count, difference = fit.last_count, fit.difference
        write_outputs(nb, rendered.image, statistics(nb, rendered.image, count), click.echo, difference)


@click.command(context_settings=PASSTHROUGH)
@click.option("--flags", "list_flags", is_flag=True, help="print the nonbragg flag reference (Markdown)")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def nonbragg(list_flags, args) -> None:
    """Amorphous scattering (water, air, ice...) as nonBragg: every nonBragg flag works (-stol water.stol ...)."""
    if list_flags:
        from ..amorphous.options import flag_table

        echo_flag_table(flag_table())
        return
    skip_scipy_blas()
    guarded(run_nonbragg, list(args))

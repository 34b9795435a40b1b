"""The `nonbragg` command: nonBragg's amorphous-scattering image with its command line, printed
summary and output files."""

from __future__ import annotations

import click
import numpy as np

from . import nonbragg_img
from .amorphous_setup import backend, render_background
from .io.atomic import atomic_write_bytes, check_writable
from .nonbragg_report import setup_lines, solid_angle_line, statistics, write_outputs
from .nonbragg_setup import NonBragg, build
from .outputs import output_paths
from .threads import set_threads


def background(nb: NonBragg, device: str | None = None, progress: bool = False, last: bool | None = None):
    """The rendered image; with -img (or `last`) also each pixel's last sin(theta)/lambda,
    polarization and solid angle (`Background.last`), which the fit needs."""
    p = nb.params
    return render_background(nb.detector, nb.source_table, nb.table, nb.oversample, device=device or p.device,
                             progress=progress, last=nb.img is not None if last is None else last,
                             molecules=nb.sample.molecules, fluence=nb.fluence, kahn=p.polarization,
                             nopolar=p.nopolar, curved=p.curved_detector, point_pixel=p.point_pixel,
                             fix_spline=p.fix_spline, fmap=p.fmap)


def run_nonbragg(argv: list[str]) -> None:
    nb = build(argv)
    backend(nb.params.device)  # a bad -device stops the run before anything is printed
    set_threads(nb.params.nthreads)
    stolout = nonbragg_img.stolout_path(nb.params)
    check_writable(([stolout] if stolout else []) + output_paths(nb.params))
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
    if nb.img is not None:
        fit = nonbragg_img.fit(nb, rendered.image, rendered.last)
        for line in fit.warnings:
            click.echo(line)
        atomic_write_bytes(fit.path, nonbragg_img.table_text(fit))
        click.echo(f"wrote {fit.path} as {len(fit.lines)} lines of text")
        count, difference = fit.last_count, fit.difference
    write_outputs(nb, rendered.image, statistics(nb, rendered.image, count), click.echo, difference)

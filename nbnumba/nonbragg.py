"""The `nonbragg` command: nonBragg's amorphous-scattering image with its command line, printed
summary and output files."""

from __future__ import annotations

import click
import numpy as np

from .amorphous_setup import backend, render_background
from .nonbragg_report import setup_lines, solid_angle_line, statistics, write_outputs
from .nonbragg_setup import NonBragg, build
from .outputs import check_writable, output_paths
from .threads import set_threads


def background(nb: NonBragg, device: str | None = None, progress: bool = False):
    p = nb.params
    return render_background(nb.detector, nb.source_table, nb.table, nb.oversample, device=device or p.device,
                             progress=progress,
                             molecules=nb.sample.molecules, fluence=nb.fluence, kahn=p.polarization,
                             nopolar=p.nopolar, curved=p.curved_detector, point_pixel=p.point_pixel,
                             fix_spline=p.fix_spline, fmap=p.fmap)


def run_nonbragg(argv: list[str]) -> None:
    nb = build(argv)
    backend(nb.params.device)  # a bad -device stops the run before anything is printed
    set_threads(nb.params.nthreads)
    check_writable(output_paths(nb.params))
    for line in setup_lines(nb):
        click.echo(line)
    rendered = background(nb, progress=nb.params.progress and not nb.params.printout)
    bad = int(rendered.image.size - np.isfinite(rendered.image).sum())
    if bad:
        click.echo(f"nbnumba: warning: {bad} pixels are not finite numbers (NaN or infinity); "
                   "check the geometry and the table", err=True)
    click.echo("")
    click.echo(solid_angle_line(rendered.omega_sum))
    write_outputs(nb, rendered.image, statistics(nb, rendered.image), click.echo)

"""`nbnumba trace`: one pixel's TRACE_PY lines, without rendering the image."""

from __future__ import annotations

import click

from ..runtime.guard import PASSTHROUGH, guarded, note, without_scipy_blas


def trace_only(argv: list[str], pixel: tuple[int, int]) -> None:
    from ..model.simulation import announce, build
    from ..runtime.jitcache import compile_notice
    from .trace_report import trace_lines, trace_pixel

    sim = build(argv, say=None)
    announce(sim, note, estimate=False)  # the estimate is the whole image's: a trace renders one pixel
    with compile_notice("trace double", note):
        value, rows = trace_pixel(sim, pixel[0], pixel[1], "double")
    for line in trace_lines(sim, value, rows):
        click.echo(line)


@click.command(context_settings=PASSTHROUGH)
@click.option("--pixel", nargs=2, type=int, required=True, metavar="SLOW FAST", help="the pixel to follow")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def trace(pixel, args) -> None:
    """Print the TRACE_PY lines of one pixel without rendering the image.

    ARGS are `run`'s nanoBragg flags (`nbnumba flags` lists them)."""
    with without_scipy_blas():
        guarded(trace_only, list(args), tuple(pixel))

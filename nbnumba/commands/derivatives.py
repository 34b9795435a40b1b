"""`nbnumba derivatives [run flags] -wrt NAMES -out PREFIX [-weights FILE]`: the value image and
one derivative image per parameter, as float32 files and a PNG montage to look at; with -weights
(an image of dL/dI), the reduced gradient of each parameter is printed too.

    PREFIX.value.bin        the float image `run` writes (photons per pixel)
    PREFIX.d_NAME.bin       dI/dNAME per pixel, per unit of NAME in its flag units
    PREFIX.montage.png      the value image (grey) and each derivative (blue -, red +), side by side
"""

from __future__ import annotations

import click
import numpy as np

from ..errors import UserError
from ..runtime.guard import PASSTHROUGH, guarded, without_scipy_blas

TILE = 256  # the montage's tiles are at most this many pixels a side


def split_flags(argv: list[str]) -> tuple[list[str], str, str, str | None]:
    """(the run flags, -wrt, -out, -weights) from the command line."""
    rest: list[str] = []
    found: dict[str, str] = {}
    i = 0
    while i < len(argv):
        if argv[i] in ("-wrt", "-out", "-weights"):
            if i + 1 >= len(argv) or (argv[i + 1].startswith("-") and argv[i] != "-wrt"):
                raise UserError(f"{argv[i]} needs a value")
            found[argv[i]] = argv[i + 1]
            i += 2
            continue
        rest.append(argv[i])
        i += 1
    for flag, what in (("-wrt", "parameters, e.g. -wrt rotx,Na,distance"), ("-out", "a file name prefix")):
        if flag not in found:
            raise UserError(f"derivatives needs {flag} ({what})")
    return rest, found["-wrt"], found["-out"], found.get("-weights")


def _tile(image: np.ndarray) -> np.ndarray:
    step = max(1, -(-max(image.shape) // TILE))
    s, f = image.shape[0] // step * step, image.shape[1] // step * step
    if step == 1:
        return image
    return image[:s, :f].reshape(s // step, step, f // step, step).mean(axis=(1, 3))


def montage(image: np.ndarray, derivatives: dict) -> np.ndarray:
    """RGB uint8: the value image, then each derivative, in rows of four tiles (at most TILE
    pixels a side, block means of the image)."""
    from ..io.png import colorize
    tiles = [colorize(_tile(image), "grey")]  # between its 0.5th and 99.5th percentiles
    for d in derivatives.values():
        tile = _tile(d)
        # spots are a few pixels: saturate the brightest half percent so the rest shows
        limit = float(np.percentile(np.abs(tile), 99.5)) or float(np.abs(tile).max()) or 1.0
        tiles.append(colorize(tile, "diverging", vmax=limit))
    h, w = tiles[0].shape[:2]
    cols = min(4, len(tiles))
    rows = -(-len(tiles) // cols)
    gap = 2
    canvas = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for n, tile in enumerate(tiles):
        r, c = divmod(n, cols)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return canvas


def run_derivatives(argv: list[str]) -> None:
    from ..derivatives import UNITS, gradient, jacobian
    from ..derivatives.parameters import check_names
    from ..io.any_image import load_image
    from ..io.atomic import check_writable
    from ..io.images import write_float_image
    from ..io.png import write_png
    from ..kernels.backends import backend_for
    from ..model.simulation import build
    from ..runtime.threads import set_threads

    flags, wrt, prefix, weights_path = split_flags(argv)
    sim = build(flags, say=None)
    p = sim.params
    backend_for(p)  # checks -device and -precision
    set_threads(p.nthreads)
    names = check_names(sim, wrt, allow_F=weights_path is not None)
    images = [n for n in names if n != "F"]
    weights = None
    if weights_path is not None:
        raw = weights_path.endswith((".bin", ".bin.gz", ".raw"))
        weights = load_image(weights_path, sim.shape if raw else None).image
        if weights.shape != sim.shape:
            raise UserError(f"{weights_path}: the weights are {weights.shape[1]}x{weights.shape[0]} but the detector "
                            f"is {sim.shape[1]}x{sim.shape[0]} pixels")
    paths = [f"{prefix}.value.bin", f"{prefix}.montage.png"] + [f"{prefix}.d_{n}.bin" for n in images]
    check_writable(paths)
    device = "cuda" if p.device == "cuda" else "cpu"
    result = jacobian(sim, images, device=device, precision=p.precision)
    write_float_image(paths[0], result.image)
    for name, path in zip(images, paths[2:]):
        write_float_image(path, result.derivatives[name])
        d = result.derivatives[name]
        click.echo(f"d/d{name:<14s} per {UNITS[name]:<5s} max |dI/dp| {np.abs(d).max():.6g}  -> {path}")
    write_png(paths[1], montage(result.image, result.derivatives))
    click.echo(f"value image (max {result.image.max():.6g} photons) -> {paths[0]}; montage -> {paths[1]}")
    if weights is not None:
        reduced = gradient(sim, weights, names, device=device, precision=p.precision)
        for name, value in reduced.gradient.items():
            click.echo(f"sum_i w_i dI_i/d{name} = {value:.12g} per {UNITS[name]}")
        if reduced.F_gradient is not None:
            click.echo(f"structure factors: |sum_i w_i dI_i/dF| = {np.linalg.norm(reduced.F_gradient):.12g} "
                       f"over {np.count_nonzero(reduced.F_gradient)} reflections")


@click.command(context_settings=PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def derivatives(args) -> None:
    """Derivative images of the image with respect to model parameters, e.g.
    `nbnumba derivatives -mat A.mat -hkl F.hkl ... -wrt rotx,a,distance -out d`.

    ARGS are `run`'s flags plus -wrt NAME,NAME,... (rotx roty rotz a b c alpha beta gamma Na Nb Nc
    scale distance Xbeam Ybeam detector_rotx detector_roty detector_rotz lambda mosaic), -out PREFIX
    (writes PREFIX.value.bin, PREFIX.d_NAME.bin, float32, and PREFIX.montage.png) and -weights FILE
    (an image of dL/dI: prints the reduced gradient; then -wrt may name F). Units: see the README."""
    with without_scipy_blas():
        guarded(run_derivatives, list(args))

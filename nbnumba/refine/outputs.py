"""The files of `refine -out PREFIX`: PREFIX.json (the table, the correlations, the flags),
PREFIX.flags (the refined model as flags for `nbnumba run`), PREFIX_model.bin (the refined model
over the whole detector, float32, as `run` renders PREFIX.flags, plus the fixed background) and
PREFIX.png (data | model with its planes | residual, over the box that holds the windows).  Each
file is written whole or not at all."""

from __future__ import annotations

import json

import numpy as np

from ..io.atomic import atomic_write_bytes, check_writable
from ..io.images import write_float_image
from ..io.png import colorize, write_png
from .flagsout import refined_flags
from .result import RefineResult

GAP = 4  # pixels between the PNG's panels


def paths(prefix: str) -> dict:
    return {"json": f"{prefix}.json", "flags": f"{prefix}.flags", "model": f"{prefix}_model.bin",
            "png": f"{prefix}.png"}


def check(prefix: str) -> None:
    check_writable(list(paths(prefix).values()))


def panels(result: RefineResult) -> np.ndarray:
    """RGB pixels: data | model | residual over the windows' bounding box (grey outside them)."""
    fit = result.fit
    windows = fit.windows
    (s0, f0), (s1, f1) = windows.pixels.min(axis=0), windows.pixels.max(axis=0) + 1
    data = windows.image(fit.data_pixels)[s0:s1, f0:f1]
    model = windows.image(fit.model_pixels)[s0:s1, f0:f1]
    both = np.concatenate([data[np.isfinite(data)], model[np.isfinite(model)]])
    low, high = (float(np.percentile(both, 0.5)), float(np.percentile(both, 99.5))) if both.size else (0.0, 1.0)
    grey = [colorize(x, "grey", low, high) for x in (data, model)]
    residual = colorize(data - model, "diverging")
    outside = ~np.isfinite(data)
    for image in (*grey, residual):
        image[outside] = 96
    gap = np.full((data.shape[0], GAP, 3), 255, dtype=np.uint8)
    return np.concatenate([grey[0], gap, grey[1], gap, residual], axis=1)


def write(prefix: str, result: RefineResult, start_argv: list[str], extra: dict | None = None,
          background: np.ndarray | None = None, device: str = "cpu") -> dict:
    """Write the four files; returns their paths."""
    from ..kernels.backends import backend
    from ..kernels.render import render

    where = paths(prefix)
    flags = refined_flags(start_argv, result.sim, result.names)
    document = {**result.to_json(), "start_flags": list(start_argv), "refined_flags": flags, **(extra or {})}
    model = render(result.sim, backend(device), "double").image
    if background is not None:
        factor = result.value("bg_scale") if "bg_scale" in result.names else 1.0
        model = model.astype(np.float64) + factor * background
    write_float_image(where["model"], model.astype(np.float32))
    write_png(where["png"], panels(result))
    atomic_write_bytes(where["flags"], (" ".join(flags) + "\n").encode())
    atomic_write_bytes(where["json"], (json.dumps(document, indent=1, allow_nan=False) + "\n").encode())
    return where

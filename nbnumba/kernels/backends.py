"""The backends a render can run on: `cpu` (nbnumba.kernels.cpu) or `cuda` (nbnumba.kernels.cuda),
one interface; `auto` takes the GPU when one is usable."""

from __future__ import annotations

import importlib

from ..errors import UserError


def backend(device: str = "cpu", amorphous: bool = False):
    """The kernels for `device`: the Bragg render's, or with `amorphous` the amorphous background's."""
    if device not in ("cpu", "cuda", "auto"):
        raise UserError(f"device must be cpu, cuda or auto, got {device!r}")
    if device in ("cuda", "auto"):
        from . import cuda
        if cuda.available():
            return importlib.import_module(f"{__package__}.amorphous_cuda") if amorphous else cuda
        if device == "cuda":
            raise UserError("no usable CUDA GPU or driver was found (the GPU needs pip install 'nbnumba[cuda]')")
    return importlib.import_module(f"{__package__}.{'amorphous_cpu' if amorphous else 'cpu'}")


def flag_backend(device: str, amorphous: bool = False):
    """`backend` for the -device flag: its messages name the flag."""
    try:
        return backend(device, amorphous)
    except UserError as err:
        raise UserError(f"-device {device}: {err}") from None


def backend_for(params):
    """The backend a run's -device asks for, after checking -precision."""
    if params.precision not in ("double", "single"):
        raise UserError(f"-precision expects double or single, got {params.precision!r}")
    return flag_backend(params.device)

"""The backends a render can run on: `cpu` (nbnumba.kernels.cpu) or `cuda` (nbnumba.kernels.cuda),
one interface; `auto` takes the GPU when one is usable."""

from __future__ import annotations

from ..errors import UserError


def backend(device: str = "cpu"):
    if device not in ("cpu", "cuda", "auto"):
        raise UserError(f"device must be cpu, cuda or auto, got {device!r}")
    if device in ("cuda", "auto"):
        from . import cuda
        if cuda.available():
            return cuda
        if device == "cuda":
            raise UserError("no usable CUDA GPU or driver was found (the GPU needs pip install 'nbnumba[cuda]')")
    from . import cpu
    return cpu


def backend_for(params):
    """The backend a run's -device asks for, after checking -precision (messages name the flags)."""
    if params.precision not in ("double", "single"):
        raise UserError(f"-precision expects double or single, got {params.precision!r}")
    try:
        return backend(params.device)
    except UserError as err:
        raise UserError(f"-device {params.device}: {err}") from None

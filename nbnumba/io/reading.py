"""Reading an input file whole, with a one-line error naming it when that fails."""

from __future__ import annotations

from ..errors import UserError


def read_bytes(path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None

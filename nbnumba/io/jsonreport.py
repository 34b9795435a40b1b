"""Writing a command's JSON summary (compare, trace-diff)."""

from __future__ import annotations

import json

from ..errors import RuntimeFailure, UserError
from .atomic import atomic_write_bytes


def write_json_report(path, data) -> None:
    """Written whole or not at all; a failure is exit 2 (exit 1 means "not alike" for these
    commands)."""
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"
    try:
        atomic_write_bytes(path, text.encode("utf-8"))
    except RuntimeFailure as e:
        raise UserError(f"cannot write JSON report {path}: {str(e).split(': ', 1)[-1]}") from None

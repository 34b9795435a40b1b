"""Writing a command's JSON summary (compare, trace-diff)."""

from __future__ import annotations

import json

from ..errors import UserError


def write_json_report(path, data) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, allow_nan=False)
            fh.write("\n")
    except OSError as e:
        raise UserError(f"cannot write JSON report {path}: {e.strerror or e}") from None

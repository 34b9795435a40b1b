"""Compare a nanoBragg single-pixel trace with an nbnumba trace, quantity by quantity.

Both programs print one line per intermediate quantity of the traced pixel
(``TRACE_C: key v1 v2 ...`` / ``TRACE_PY: key ...``) plus per-phi-step lines
(``TRACE_C_PHI phi_tic=0 key=value ...``).  Walking the reference trace in its
printed order follows the simulation pipeline, so the first quantity that
disagrees points at the stage where the port goes wrong.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from nbnumba.errors import UserError
from nbnumba.io.jsonreport import write_json_report

__all__ = [
    "TraceEntry",
    "TraceFormatError",
    "DiffRow",
    "DiffResult",
    "parse_trace",
    "diff_traces",
    "format_table",
    "to_json",
    "main",
]

# The prefix names the program that printed the line (C, PY, ...), so any
# TRACE_ word is accepted; only what follows it is compared.
_SCALAR_LINE = re.compile(r"^TRACE_\w+:(?P<rest>.*)$")
_PHI_LINE = re.compile(r"^TRACE_\w*?_PHI(?:\s+(?P<rest>.*))?$")
_KEY = re.compile(r"^[A-Za-z_][^\s#]*$")

OK = "ok"
DIFF = "DIFF"
MISSING_IN_OURS = "missing-in-ours"
MISSING_IN_REF = "missing-in-ref"
SHAPE = "shape"


class TraceFormatError(ValueError):
    """A line carries a trace prefix but is not ``key value...`` / ``key=value...``."""

    def __init__(self, line_number: int, problem: str):
        super().__init__(f"line {line_number}: {problem}")
        self.line_number = line_number
        self.problem = problem


@dataclass(frozen=True)
class TraceEntry:
    """One traced quantity.

    ``key`` is the display name: the bare quantity name, with ``#n`` appended
    when the name occurs more than once in its trace (one block per
    sub-pixel, source or mosaic domain).  Matching between two traces uses
    ``(base, occurrence)`` so that a key repeated in only one of them still
    lines up with the other's single occurrence.
    """

    key: str
    values: tuple[float, ...]
    base: str
    occurrence: int
    line: int


@dataclass(frozen=True)
class DiffRow:
    key: str
    ref: tuple[float, ...] | None
    ours: tuple[float, ...] | None
    abs_delta: float | None
    rel_delta: float | None
    status: str


@dataclass(frozen=True)
class DiffResult:
    rows: tuple[DiffRow, ...]
    tolerance: float
    abs_floor: float
    counts: dict[str, int] = field(init=False)

    def __post_init__(self):
        counts = {s: 0 for s in (OK, DIFF, MISSING_IN_OURS, MISSING_IN_REF, SHAPE)}
        for row in self.rows:
            counts[row.status] += 1
        object.__setattr__(self, "counts", counts)

    @property
    def ok(self) -> bool:
        return self.first_divergence is None

    @property
    def first_divergence(self) -> DiffRow | None:
        return next((row for row in self.rows if row.status != OK), None)

    @property
    def n_beyond(self) -> int:
        return len(self.rows) - self.counts[OK]


def _number(token: str, line_number: int, what: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise TraceFormatError(line_number, f"non-numeric value {token!r} for {what}") from None


def _parse_phi(rest: str, line_number: int) -> list[tuple[str, tuple[float, ...]]]:
    fields: list[tuple[str, str]] = []
    for token in rest.split():
        name, sep, value = token.partition("=")
        if not sep or not _KEY.match(name):
            raise TraceFormatError(line_number, f"expected name=value in PHI line, got {token!r}")
        fields.append((name, value))
    tics = [value for name, value in fields if name == "phi_tic"]
    if len(tics) != 1:
        raise TraceFormatError(line_number, "PHI line needs exactly one phi_tic=N field")
    tic = _number(tics[0], line_number, "phi_tic")
    if not tic.is_integer():
        raise TraceFormatError(line_number, f"phi_tic must be an integer, got {tics[0]!r}")
    quantities = [
        (f"phi[{int(tic)}].{name}", (_number(value, line_number, name),))
        for name, value in fields
        if name != "phi_tic"
    ]
    if not quantities:
        raise TraceFormatError(line_number, "PHI line has no fields besides phi_tic")
    return quantities


def _parse_scalar(rest: str, line_number: int) -> tuple[str, tuple[float, ...]]:
    tokens = rest.split()
    if not tokens:
        raise TraceFormatError(line_number, "trace line has no key")
    key, values = tokens[0], tokens[1:]
    if not _KEY.match(key):
        raise TraceFormatError(line_number, f"invalid key {key!r}")
    if not values:
        raise TraceFormatError(line_number, f"no value for {key}")
    return key, tuple(_number(v, line_number, key) for v in values)


def parse_trace(text: str) -> list[TraceEntry]:
    """Every trace quantity of ``text`` in printed order; other lines are skipped."""
    raw: list[tuple[str, tuple[float, ...], int]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        phi = _PHI_LINE.match(line)
        if phi:
            raw.extend((k, v, line_number) for k, v in _parse_phi(phi["rest"] or "", line_number))
            continue
        scalar = _SCALAR_LINE.match(line)
        if scalar:
            key, values = _parse_scalar(scalar["rest"], line_number)
            raw.append((key, values, line_number))

    totals: dict[str, int] = {}
    for key, _, _ in raw:
        totals[key] = totals.get(key, 0) + 1
    seen: dict[str, int] = {}
    entries = []
    for key, values, line_number in raw:
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        label = f"{key}#{occurrence}" if totals[key] > 1 else key
        entries.append(TraceEntry(label, values, key, occurrence, line_number))
    return entries


def _component_delta(a: float, b: float) -> tuple[float, float]:
    # NaN == NaN and inf == inf count as agreement: both programs produced
    # the same non-finite value, which is what a port should reproduce.
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0, 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf, math.inf
    delta = abs(a - b)
    return delta, delta / max(abs(a), abs(b))


def _compare(ref, ours, tolerance, abs_floor) -> tuple[float | None, float | None, str]:
    if ours is None:
        return None, None, MISSING_IN_OURS
    if ref is None:
        return None, None, MISSING_IN_REF
    if len(ref) != len(ours):
        return None, None, SHAPE
    worst_abs = worst_rel = 0.0
    within = True
    for a, b in zip(ref, ours):
        d_abs, d_rel = _component_delta(a, b)
        worst_abs, worst_rel = max(worst_abs, d_abs), max(worst_rel, d_rel)
        # Checking each component (not the worst deltas) matters: a tiny
        # component may have a large relative error yet sit under abs_floor.
        if not (d_abs <= abs_floor or d_abs <= tolerance * max(abs(a), abs(b))):
            within = False
    return worst_abs, worst_rel, OK if within else DIFF


def diff_traces(
    ref: list[TraceEntry],
    ours: list[TraceEntry],
    tolerance: float = 1e-6,
    abs_floor: float = 1e-12,
) -> DiffResult:
    """Compare quantity by quantity, in the reference's (pipeline) order."""
    if not tolerance >= 0 or not abs_floor >= 0:
        raise ValueError("tolerance and abs_floor must be non-negative numbers")

    ours_by_id = {(e.base, e.occurrence): e for e in ours}
    ref_ids = {(e.base, e.occurrence) for e in ref}
    repeated = {e.base for e in (*ref, *ours) if e.occurrence > 0}

    def label(entry: TraceEntry) -> str:
        return f"{entry.base}#{entry.occurrence}" if entry.base in repeated else entry.base

    rows = []
    for entry in ref:
        other = ours_by_id.get((entry.base, entry.occurrence))
        theirs = other.values if other else None
        rows.append(DiffRow(label(entry), entry.values, theirs,
                            *_compare(entry.values, theirs, tolerance, abs_floor)))
    for entry in ours:
        if (entry.base, entry.occurrence) not in ref_ids:
            rows.append(DiffRow(label(entry), None, entry.values,
                                *_compare(None, entry.values, tolerance, abs_floor)))
    return DiffResult(tuple(rows), tolerance, abs_floor)


def _fmt_values(values: tuple[float, ...] | None) -> str:
    # 15 significant digits: enough to show a 1e-12 relative difference.
    return "-" if values is None else " ".join(f"{v:.15g}" for v in values)


def _fmt_delta(delta: float | None) -> str:
    return "-" if delta is None else f"{delta:.3e}"


def _summary(result: DiffResult) -> str:
    first = result.first_divergence
    tail = f"first divergence: {first.key}" if first else "no divergence"
    return (f"{len(result.rows)} quantities, {result.n_beyond} beyond tolerance "
            f"{result.tolerance:g}; {tail}")


def format_table(result: DiffResult) -> str:
    header = ("key", "ref", "ours", "abs delta", "rel delta", "status")
    cells = [header] + [
        (row.key, _fmt_values(row.ref), _fmt_values(row.ours),
         _fmt_delta(row.abs_delta), _fmt_delta(row.rel_delta), row.status)
        for row in result.rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    first = result.first_divergence
    lines = []
    for i, row_cells in enumerate(cells):
        text = "  ".join(c.ljust(w) for c, w in zip(row_cells, widths))
        if first is not None and i > 0 and result.rows[i - 1] is first:
            text += "  <-- first divergence"
        lines.append(text.rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(_summary(result))
    return "\n".join(lines)


def _json_number(x: float | None):
    # Strict JSON has no NaN/Infinity; keep them readable as strings.
    if x is None or math.isfinite(x):
        return x
    return repr(x)


def to_json(result: DiffResult) -> dict:
    first = result.first_divergence
    return {
        "tolerance": result.tolerance,
        "abs_floor": result.abs_floor,
        "ok": result.ok,
        "quantities": len(result.rows),
        "beyond_tolerance": result.n_beyond,
        "counts": dict(result.counts),
        "first_divergence": first.key if first else None,
        "summary": _summary(result),
        "rows": [
            {
                "key": row.key,
                "ref": None if row.ref is None else [_json_number(v) for v in row.ref],
                "ours": None if row.ours is None else [_json_number(v) for v in row.ours],
                "abs_delta": _json_number(row.abs_delta),
                "rel_delta": _json_number(row.rel_delta),
                "status": row.status,
            }
            for row in result.rows
        ],
    }


def _load(path: str | Path) -> list[TraceEntry]:
    try:
        # Whole program logs may hold stray non-UTF-8 bytes outside trace lines.
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"cannot read trace file {path}: {exc.strerror or exc}") from None
    try:
        entries = parse_trace(text)
    except TraceFormatError as exc:
        raise UserError(f"malformed trace file {path}: {exc}") from None
    if not entries:
        # Almost always the wrong file; an empty-vs-empty diff would pass silently.
        raise UserError(f"no TRACE_ lines in {path}")
    return entries


def main(
    ref_path: str | Path,
    ours_path: str | Path,
    tolerance: float = 1e-6,
    json_path: str | Path | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the comparison table; 0 when every quantity agrees, 1 otherwise."""
    out = out if out is not None else sys.stdout
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise UserError(f"tolerance must be a non-negative number, got {tolerance}")
    result = diff_traces(_load(ref_path), _load(ours_path), tolerance=tolerance)
    print(format_table(result), file=out)
    if json_path is not None:
        write_json_report(json_path, to_json(result))
    return 0 if result.ok else 1

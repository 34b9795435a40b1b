"""Compare a nanoBragg single-pixel trace with an nbnumba trace, quantity by quantity.

Both programs print one line per intermediate quantity of the traced pixel
(``TRACE_C: key v1 v2 ...`` / ``TRACE_PY: key ...``) plus per-phi-step lines
(``TRACE_C_PHI phi_tic=0 key=value ...``).  Walking the reference trace in its
printed order follows the simulation pipeline, so the first quantity that
disagrees points at the stage where the port goes wrong.

Whole program logs are read as they are printed: every line that is not a
quantity (a banner, ``TRACE_C: detector_convention=MOSFLM``, ``TRACE_CONFIG:
tracing pixel ...``) is skipped and counted.  A quantity printed by one
program only is reported apart from the values that differ; only the latter
make the comparison fail.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import click

from ..errors import UserError
from ..io.atomic import check_distinct
from ..io.jsonreport import write_json_report
from ..io.reading import read_text
from ..runtime.guard import guarded

__all__ = [
    "TraceEntry",
    "parse_log",
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
DIFFERS = (DIFF, SHAPE)  # a quantity printed on one side only is reported, not a failure


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
        return next((row for row in self.rows if row.status in DIFFERS), None)

    @property
    def n_beyond(self) -> int:
        return sum(self.counts[s] for s in DIFFERS)

    @property
    def n_one_side(self) -> int:
        return self.counts[MISSING_IN_OURS] + self.counts[MISSING_IN_REF]


def _numbers(tokens) -> tuple[float, ...] | None:
    try:
        return tuple(float(t) for t in tokens)
    except ValueError:
        return None


def _parse_phi(rest: str) -> list[tuple[str, tuple[float, ...]]] | None:
    fields = [token.partition("=") for token in rest.split()]
    if not fields or any(not sep or not _KEY.match(name) for name, sep, _ in fields):
        return None
    tics = [value for name, _, value in fields if name == "phi_tic"]
    tic = _numbers(tics) if len(tics) == 1 else None
    if tic is None or not tic[0].is_integer():
        return None
    quantities = []
    for name, _, value in fields:
        if name != "phi_tic":
            number = _numbers([value])
            if number is None:
                return None
            quantities.append((f"phi[{int(tic[0])}].{name}", number))
    return quantities or None


def _parse_scalar(rest: str) -> tuple[str, tuple[float, ...]] | None:
    tokens = rest.split()
    if len(tokens) < 2 or not _KEY.match(tokens[0]):
        return None
    values = _numbers(tokens[1:])
    return None if values is None else (tokens[0], values)


def parse_log(text: str) -> tuple[list[TraceEntry], list[tuple[int, str]]]:
    """(every trace quantity of ``text`` in printed order, the TRACE lines that hold none).

    Lines without a trace prefix are not counted at all."""
    raw: list[tuple[str, tuple[float, ...], int]] = []
    skipped: list[tuple[int, str]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        phi = _PHI_LINE.match(line)
        scalar = None if phi else _SCALAR_LINE.match(line)
        if phi:
            quantities = _parse_phi(phi["rest"] or "")
            if quantities is not None:
                raw.extend((k, v, line_number) for k, v in quantities)
                continue
        elif scalar:
            quantity = _parse_scalar(scalar["rest"])
            if quantity is not None:
                raw.append((*quantity, line_number))
                continue
        else:
            continue
        skipped.append((line_number, line))

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
    return entries, skipped


def parse_trace(text: str) -> list[TraceEntry]:
    """Every trace quantity of ``text`` in printed order; other lines are skipped."""
    return parse_log(text)[0]


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
    compared = len(result.rows) - result.n_one_side
    return (f"{compared} quantities compared, {result.n_beyond} beyond tolerance {result.tolerance:g}; "
            f"{result.counts[MISSING_IN_OURS]} only in the reference, {result.counts[MISSING_IN_REF]} only in ours; "
            f"{tail}")


def _aligned(rows: list[DiffRow], first: DiffRow | None) -> list[str]:
    header = ("key", "ref", "ours", "abs delta", "rel delta", "status")
    cells = [header] + [
        (row.key, _fmt_values(row.ref), _fmt_values(row.ours),
         _fmt_delta(row.abs_delta), _fmt_delta(row.rel_delta), row.status)
        for row in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = []
    for i, row_cells in enumerate(cells):
        text = "  ".join(c.ljust(w) for c, w in zip(row_cells, widths))
        if first is not None and i > 0 and rows[i - 1] is first:
            text += "  <-- first divergence"
        lines.append(text.rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_table(result: DiffResult) -> str:
    """The quantities both logs print, then those printed by one program only, then a summary."""
    one_side = (MISSING_IN_OURS, MISSING_IN_REF)
    both = [row for row in result.rows if row.status not in one_side]
    lines = _aligned(both, result.first_divergence)
    only = [row for row in result.rows if row.status in one_side]
    if only:
        lines += ["", "printed by one program only (not a difference):", *_aligned(only, None)]
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


def _load(path: str | Path) -> tuple[list[TraceEntry], int]:
    """(the quantities of a log file, how many TRACE lines held none)."""
    try:
        text = read_text(path)
    except UserError as exc:
        raise UserError(f"cannot read trace file {path}: {str(exc).split(': ', 1)[-1]}") from None
    entries, skipped = parse_log(text)
    if not entries:
        # Almost always the wrong file; an empty-vs-empty diff would pass silently.
        raise UserError(f"no TRACE_ lines in {path}")
    return entries, len(skipped)


def main(
    ref_path: str | Path,
    ours_path: str | Path,
    tolerance: float = 1e-6,
    json_path: str | Path | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the comparison table; 1 when a value printed by both differs, else 0."""
    out = out if out is not None else sys.stdout
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise UserError(f"tolerance must be a non-negative number, got {tolerance}")
    if json_path is not None:
        check_distinct([str(json_path)], [str(ref_path), str(ours_path)])
    (ref, ref_skipped), (ours, ours_skipped) = _load(ref_path), _load(ours_path)
    result = diff_traces(ref, ours, tolerance=tolerance)
    print(format_table(result), file=out)
    if ref_skipped or ours_skipped:
        print(f"skipped TRACE lines that hold no quantity: {ref_skipped} in {ref_path}, "
              f"{ours_skipped} in {ours_path}", file=out)
    if json_path is not None:
        write_json_report(json_path, to_json(result))
    return 0 if result.ok else 1


@click.command("trace-diff")
@click.argument("ref", type=click.Path())
@click.argument("ours", type=click.Path())
@click.option("--tolerance", type=float, default=1e-6, show_default=True, help="relative tolerance")
@click.option("--json", "json_path", type=click.Path(), default=None, help="write the comparison as JSON")
def trace_diff(ref, ours, tolerance, json_path) -> None:
    """Compare two trace logs quantity by quantity; exit 1 when any is beyond tolerance."""
    def compare():
        sys.exit(main(ref, ours, tolerance=tolerance, json_path=json_path))

    guarded(compare)

"""Structure factors: ``h k l F`` text files and the reference's binary ``Fdump.bin`` cache.

Text layout.  The reference reads the file as one stream of numbers with ``fscanf``, four
at a time, so line breaks do not matter and two numbers may even touch (``-12-12``).  We
read it the same way, with one addition from the spec (AT-IO-004): when every line holds
the same number of values and that number is more than four (``h k l F sigma phase``),
each line is one record and the extra columns are ignored.  Where the reference silently
stops reading at anything unreadable, we stop with an error naming the line instead.
"""

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from .atomic import atomic_open
from .reading import read_bytes

_NOT_DECIMAL = re.compile(rb"[^0-9eE+\-.\s]")
_NUMBER = re.compile(rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.IGNORECASE)
_SPACE = re.compile(rb"\s*")
_WORD_END = re.compile(rb"\S*$")
_INDEX_LIMIT = 2**31  # the reference keeps indices in C ints


@dataclass
class HKLTable:
    """F on the grid [h_min..h_max] x [k_min..k_max] x [l_min..l_max].

    ``grid`` has shape (h_range+1, k_range+1, l_range+1) with ``grid[h-h_min, k-k_min,
    l-l_min]`` = F, exactly as the reference allocates it: the last layer of each axis is
    never filled and stays 0.  ``count`` is the number of records read (for Fdump files the
    reference's h_range*k_range*l_range).  ``warnings`` lists accepted oddities (non-integer
    indices) for the caller to report.
    """

    h_min: int
    h_max: int
    k_min: int
    k_max: int
    l_min: int
    l_max: int
    count: int
    grid: np.ndarray
    warnings: list[str] = field(default_factory=list)


def _scan(path, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """All numbers in the file and the 1-based line of each, splitting like ``fscanf``."""
    values, lines = [], []
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        pos = _SPACE.match(line).end()
        while pos < len(line):
            number = _NUMBER.match(line, pos)
            if number is None:
                word = _WORD_END.search(line, 0, pos).group() + line[pos:].split()[0]
                bad = word.decode("latin-1")
                raise UserError(f"{path} line {lineno}: {bad!r} is not a number (expected h k l F)")
            values.append(float(number.group()))
            lines.append(lineno)
            pos = _SPACE.match(line, number.end()).end()
    return np.array(values, dtype=np.float64), np.array(lines, dtype=np.int64)


def _numbers(path, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    # Plain whitespace-separated decimals take the fast numpy path; anything else (touching
    # numbers, nan, stray text) is rescanned token by token, which also locates errors.
    if _NOT_DECIMAL.search(data) is None:
        try:
            values = np.array(data.split(), dtype=np.float64)
        except ValueError:
            return _scan(path, data)
        per_line = np.array([len(line.split()) for line in data.split(b"\n")])
        lines = np.repeat(np.arange(1, per_line.size + 1), per_line)
        return values, lines
    return _scan(path, data)


def _records(path, values: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (h, k, l, F) and the line of each row's F."""
    if values.size == 0:
        raise UserError(f"{path}: no h k l F records (the file is empty or blank)")
    _, per_line = np.unique(lines, return_counts=True)
    width = int(per_line[0])
    if width > 4 and np.all(per_line == width):
        keep = np.arange(values.size).reshape(-1, width)[:, :4].ravel()
        values, lines = values[keep], lines[keep]
    if values.size % 4:
        raise UserError(f"{path} line {lines[-1]}: incomplete last record (expected h k l F)")
    return values.reshape(-1, 4), lines[3::4]


def _indices(path, name: str, column: np.ndarray, lines: np.ndarray, warnings: list[str]) -> np.ndarray:
    bad = ~(np.abs(column) < _INDEX_LIMIT)
    if bad.any():
        first = int(np.argmax(bad))
        raise UserError(f"{path} line {lines[first]}: {name} = {column[first]:g} is not a usable Miller index")
    # The reference's own test for "integer": values within 0.4 below the next integer
    # round up to it, everything else is flagged.
    index = np.ceil(column - 0.4)
    for at in np.flatnonzero(index != column):
        warnings.append(f"{path} line {lines[at]}: non-integer {name} = {column[at]:g}, using {int(index[at])}")
    return index.astype(np.int64)


def _allocate(path, shape: tuple[int, int, int]) -> np.ndarray:
    try:
        return np.zeros(shape, dtype=np.float64)
    except (MemoryError, ValueError):
        raise UserError(f"{path}: Miller index ranges need a {shape[0]}x{shape[1]}x{shape[2]} grid, too large") from None


def read_hkl(path, default_F: float) -> HKLTable:
    """Structure factors from an ``h k l F`` text file; grid points not listed get ``default_F``."""
    return parse_hkl(path, read_bytes(path), default_F)


def parse_hkl(path, data: bytes, default_F: float) -> HKLTable:
    """`read_hkl` of the file's bytes `data` (`path` names it in errors and warnings)."""
    values, lines = _numbers(path, data)
    records, record_lines = _records(path, values, lines)
    F = records[:, 3]
    if not np.isfinite(F).all():
        first = int(np.argmax(~np.isfinite(F)))
        raise UserError(f"{path} line {record_lines[first]}: F = {F[first]:g} is not a finite number")
    warnings: list[str] = []
    hkl = [_indices(path, name, records[:, i], record_lines, warnings) for i, name in enumerate("hkl")]
    low = [int(index.min()) for index in hkl]
    high = [int(index.max()) for index in hkl]
    ranges = [hi - lo + 1 for lo, hi in zip(low, high)]
    grid = _allocate(path, tuple(r + 1 for r in ranges))
    if default_F != 0.0:
        grid[: ranges[0], : ranges[1], : ranges[2]] = default_F
    flat = np.ravel_multi_index([index - lo for index, lo in zip(hkl, low)], grid.shape)
    # A repeated reflection keeps its last F, as the reference's sequential reading does.
    _, last_from_end = np.unique(flat[::-1], return_index=True)
    last = flat.size - 1 - last_from_end
    grid.flat[flat[last]] = F[last]
    return HKLTable(low[0], high[0], low[1], high[1], low[2], high[2], len(records), grid, warnings)


def write_fdump(path, table: HKLTable) -> None:
    """Write ``table`` in the reference's ``Fdump.bin`` format."""
    t = table
    header = f"{t.h_min} {t.h_max} {t.k_min} {t.k_max} {t.l_min} {t.l_max}\n\f".encode("ascii")
    with atomic_open(path) as f:
        f.write(header)
        f.write(np.ascontiguousarray(t.grid, dtype="<f8").tobytes())


_FDUMP_HEADER = re.compile(rb"\s*([+-]?\d+)\s+([+-]?\d+)\s+([+-]?\d+)\s+([+-]?\d+)\s+([+-]?\d+)\s+([+-]?\d+)\n\f")


def read_fdump(path) -> HKLTable:
    """A table cached by :func:`write_fdump` or by the reference."""
    # The reference's fscanf would also swallow data bytes that look like whitespace after
    # the form feed; reading from exactly after it is what the writer meant.
    data = read_bytes(path)
    header = _FDUMP_HEADER.match(data)
    if header is None:
        raise UserError(f"{path}: not an Fdump file (expected a line of six integers then a form feed)")
    h_min, h_max, k_min, k_max, l_min, l_max = (int(v) for v in header.groups())
    ranges = (h_max - h_min + 1, k_max - k_min + 1, l_max - l_min + 1)
    if min(ranges) < 1:
        raise UserError(f"{path}: Fdump header has an empty index range")
    shape = tuple(r + 1 for r in ranges)
    expected = 8 * math.prod(shape)
    found = len(data) - header.end()
    if found != expected:
        raise UserError(
            f"{path}: Fdump data is {found} bytes, its header's index ranges need {expected}"
            + (" (file truncated)" if found < expected else "")
        )
    grid = np.frombuffer(data, dtype="<f8", offset=header.end()).astype(np.float64).reshape(shape)
    return HKLTable(h_min, h_max, k_min, k_max, l_min, l_max, math.prod(ranges), grid)

"""Multi-column text tables (``-sourcefile``, ``-stol``) read the way nanoBragg reads them.

The reference tokenizes each line by hand rather than with a strict parser: values are
separated by any of `` \\t,;:!``, each value is converted with C ``atof`` (so a word reads
as 0), blank lines are skipped, and columns missing at the end of a line stay NaN so the
caller can substitute defaults.  :func:`read_columns` reproduces that loop step by step,
because its quirks (a trailing word turning the remaining columns into 0, extra columns
being ignored) decide which defaults the simulation later applies.
"""

import math
import re

import numpy as np

from ..errors import UserError
from .reading import read_bytes

DELIMITERS = " \t,;:!"
# Characters the reference skips as "the rest of the number" before looking for a delimiter.
_NUMBER_CHARS = "0123456789-+.EGeg"

_ATOF = re.compile(
    r"[ \t\n\v\f\r]*([+-]?)(?:"
    r"0x(?=\.?[0-9a-f])([0-9a-f]*\.?[0-9a-f]*(?:p[+-]?\d+)?)"
    r"|((?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)"
    r"|(inf(?:inity)?)"
    r"|(nan(?:\(\w*\))?))",
    re.IGNORECASE,
)


def c_atof(text: str) -> float:
    """Value of the longest numeric prefix of ``text``, 0.0 when there is none (C ``atof``)."""
    m = _ATOF.match(text)
    if m is None:
        return 0.0
    sign, hexpart, decimal, inf, nan = m.groups()
    if decimal is not None:
        return float(sign + decimal)
    if hexpart is not None:
        try:
            return float.fromhex(sign + "0x" + hexpart)
        except OverflowError:
            return -math.inf if sign == "-" else math.inf
    if inf is not None:
        return float(sign + "inf")
    return float(sign + "nan")


def _skip_until_delimiter(text: str) -> str:
    for i, ch in enumerate(text):
        if ch in DELIMITERS:
            return text[i:]
    return ""


def _not_numbers(token: str, ncols: int) -> str | None:
    """The first of the line's values that is a word or NaN (where the reference's atof gives 0
    or NaN), or None."""
    for word in re.split(f"[{re.escape(DELIMITERS)}]+", token.strip(DELIMITERS + "\n"))[:ncols]:
        m = _ATOF.match(word)
        if m is None or m.group(5) is not None:
            return word
    return None


def _parse_line(token: str, ncols: int) -> list[float]:
    row = [math.nan] * ncols
    column = 0
    while True:
        row[column] = c_atof(token)
        token = token.lstrip(_NUMBER_CHARS)
        if token == "\n":
            break
        token = _skip_until_delimiter(token).lstrip(DELIMITERS)
        if token == "\n":
            break
        column += 1
        if column >= ncols:
            break
    return row


def read_columns(path, ncols: int, numbers_only: bool = False) -> np.ndarray:
    """Rows of ``ncols`` values from a delimited text file, shape (rows, ncols), NaN where missing.

    Windows line endings and a missing final newline are normalised first: the reference
    would otherwise read the missing columns of such lines as 0 instead of NaN.  With
    `numbers_only`, a word or a NaN among the values is a user's mistake (a table where a word
    read as 0, or NaN as a missing value, would go on to render garbage).
    """
    text = read_bytes(path).decode("latin-1")
    text = text.replace("\r\n", "\n")
    if text and not text.endswith("\n"):
        text += "\n"
    rows = []
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        token = (line + "\n").lstrip(DELIMITERS)
        if token == "\n":
            continue
        if numbers_only and (word := _not_numbers(token, ncols)) is not None:
            raise UserError(f"{path} line {number}: {word!r} is not a number")
        rows.append(_parse_line(token, ncols))
    if not rows:
        raise UserError(f"{path}: no data rows (the file is empty or blank)")
    return np.array(rows, dtype=np.float64)

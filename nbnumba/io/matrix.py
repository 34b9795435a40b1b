"""MOSFLM orientation matrices (``-mat``): the reciprocal cell vectors a*, b*, c*."""

import math
import re

import numpy as np

from ..errors import UserError
from .reading import read_bytes

_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def read_mosflm_matrix(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a*, b*, c* as read from the file, still multiplied by the wavelength as MOSFLM stores them.

    Only the first nine numbers count: three rows holding the x, y and z components of
    (a*, b*, c*).  The rest of a MOSFLM file (missetting angles, cell, U matrix) is ignored.
    The reference's ``fscanf`` would take any nine numbers; here the first three lines that are
    not blank must hold three each, so that another kind of file (a -sourcefile list of five
    columns, an HKL file) is refused instead of read as a crystal nobody has.
    """
    text = read_bytes(path).decode("latin-1")
    tokens = text.split()[:9]
    for position, token in enumerate(tokens):
        if not _DECIMAL.fullmatch(token):
            raise UserError(f"{path}: matrix element {position + 1} is {token!r}, not a number")
    if len(tokens) < 9:
        raise UserError(f"{path}: a MOSFLM matrix needs 9 numbers (3 rows of 3), found {len(tokens)}")
    rows = [line.split() for line in text.splitlines() if line.strip()][:3]
    for number, row in enumerate(rows, 1):
        if len(row) != 3:
            raise UserError(f"{path}: matrix line {number} holds {len(row)} values; a MOSFLM matrix starts with "
                            f"3 lines of 3 numbers (is it a matrix file?)")
    matrix = np.array(tokens, dtype=np.float64).reshape(3, 3)
    if not np.isfinite(matrix).all():
        raise UserError(f"{path}: a matrix element is too large to be a number")
    return matrix[:, 0].copy(), matrix[:, 1].copy(), matrix[:, 2].copy()


def check_orientation(path, a_star, b_star, c_star) -> None:
    """Refuse a matrix no crystal has: singular (zero volume) or left-handed.  The reference takes
    a left-handed one and reports a cell with negative angles (100 100 100 -90 -90 -90)."""
    triple = float(np.dot(a_star, np.cross(b_star, c_star)))
    scale = float(np.linalg.norm(a_star) * np.linalg.norm(b_star) * np.linalg.norm(c_star))
    if not (math.isfinite(triple) and scale > 0 and abs(triple) > 1e-12 * scale):
        raise UserError(f"{path}: the matrix is singular (a*, b*, c* are not independent): no crystal has it")
    if triple < 0:
        raise UserError(f"{path}: the matrix is left-handed (a* . (b* x c*) < 0): MOSFLM matrices are "
                        f"right-handed; is a sign or a row swapped?")

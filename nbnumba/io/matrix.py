"""MOSFLM orientation matrices (``-mat``): the reciprocal cell vectors a*, b*, c*."""

import re

import numpy as np

from ..errors import UserError
from .reading import read_bytes

_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def read_mosflm_matrix(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a*, b*, c* as read from the file, still multiplied by the wavelength as MOSFLM stores them.

    Only the first nine numbers count: three rows holding the x, y and z components of
    (a*, b*, c*).  The rest of a MOSFLM file (missetting angles, cell, U matrix) is ignored,
    and line breaks do not matter, as with the reference's ``fscanf``.
    """
    tokens = read_bytes(path).decode("latin-1").split()[:9]
    for position, token in enumerate(tokens):
        if not _DECIMAL.fullmatch(token):
            raise UserError(f"{path}: matrix element {position + 1} is {token!r}, not a number")
    if len(tokens) < 9:
        raise UserError(f"{path}: a MOSFLM matrix needs 9 numbers (3 rows of 3), found {len(tokens)}")
    rows = np.array(tokens, dtype=np.float64).reshape(3, 3)
    return rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy()

"""Numba's CPU thread count, as -nthreads sets it (a module of its own, so that a command sets it
without importing the simulation stack)."""

from __future__ import annotations

from ..errors import UserError


def set_threads(n: int) -> None:
    """Numba's CPU threads for the renders that follow (0 leaves the current setting)."""
    if n:
        import numba
        if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
            raise UserError(f"-nthreads must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {n}")
        numba.set_num_threads(n)

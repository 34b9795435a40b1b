"""How every command runs: in a worker thread that SIGINT and SIGTERM end at once, with a
user's mistake, an interruption or an internal error reported in one line on stderr."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager

import click
import numpy as np

from ..errors import UserError

# commands that take nanoBragg-style flags hand them through Click untouched
PASSTHROUGH = dict(ignore_unknown_options=True, allow_extra_args=True, help_option_names=["--help"])


@contextmanager
def without_scipy_blas():
    """Numba's first compiled call imports SciPy's BLAS only to offer np.dot, which nbnumba never
    uses; a one-shot command saves that 0.1-0.2 s by blocking the import while it runs.  The block
    is lifted afterwards, so that a process that goes on (tests, a notebook driving the CLI) can
    still import SciPy; the library API leaves SciPy alone."""
    blocked = "scipy.linalg.cython_blas" not in sys.modules
    if blocked:
        sys.modules["scipy.linalg.cython_blas"] = None
    try:
        yield
    finally:
        if blocked and "scipy.linalg.cython_blas" in sys.modules and sys.modules["scipy.linalg.cython_blas"] is None:
            del sys.modules["scipy.linalg.cython_blas"]


def note(line: str) -> None:
    click.echo(line, err=True)


def _quietly(action, *args):
    with np.errstate(all="ignore"):  # host-side float warnings on extreme inputs are noise, not output
        return action(*args)


def guarded(action, *args) -> None:
    """Run an action; a user's mistake or an interruption ends in one line on stderr, no traceback.
    The action runs in a worker thread (nbnumba.interrupt): SIGINT and SIGTERM end the command
    at once, with exit 130 and 143, whatever it is doing."""
    from . import interrupt

    try:
        interrupt.call(_quietly, action, *args)
    except UserError as err:
        click.echo("nbnumba: error: " + " ".join(str(err).splitlines()), err=True)  # one line, always
        sys.exit(err.exit_code)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except KeyboardInterrupt as err:  # raised by the work itself (a test hook), not a signal
        signum = getattr(err, "signum", signal.SIGINT)
        click.echo(interrupt.message(signum), err=True)
        sys.exit(interrupt.exit_code(signum))
    except MemoryError:
        click.echo("nbnumba: error: out of memory (try a smaller detector or -roi)", err=True)
        sys.exit(1)
    except Exception as err:  # noqa: BLE001 - last line of defence: never show a traceback
        if os.environ.get("NBNUMBA_DEBUG"):
            raise
        click.echo(f"nbnumba: internal error: {type(err).__name__}: {err} (set NBNUMBA_DEBUG=1 for details)",
                   err=True)
        sys.exit(1)

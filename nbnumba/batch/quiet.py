"""Worker processes that ignore Ctrl-C from their first instruction.

Ctrl-C in a terminal signals every process of the foreground group, the embedded cluster's
workers too.  Only the client should act on it (it stops the workers and saves the manifest),
and a worker ignores SIGINT once its preload runs (jobs.dask_setup), but a worker still
importing its modules would end in a KeyboardInterrupt traceback.  Python leaves a signal alone
that is ignored when it starts, and an ignored signal stays ignored across exec, whereas a
handled one (the client's) is reset: so the workers are started through a two-line launcher
that ignores SIGINT and then runs this Python.  The launcher is written once into nbnumba's
cache folder; where it cannot be, the workers start as before."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import sys
import uuid

from ..runtime.cache_folder import cache_folder


def launcher_text(python: str) -> str:
    return f"#!/bin/sh\ntrap '' INT\nexec {shlex.quote(python)} \"$@\"\n"


def launcher(python: str = sys.executable) -> str | None:
    """The launcher's path (written if missing), or None where it cannot be written or run."""
    text = launcher_text(python)
    path = os.path.join(cache_folder(), f"python-sigint-ignored-{hashlib.sha256(text.encode()).hexdigest()[:12]}")
    if os.access(path, os.X_OK):
        return path
    temp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temp, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(temp, 0o755)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        return None
    return path if os.access(path, os.X_OK) else None


def spawn_quietly() -> None:
    """Make multiprocessing start its processes (Dask's workers) through the launcher."""
    import multiprocessing

    path = launcher()
    if path is not None and os.name == "posix":
        multiprocessing.set_executable(path)

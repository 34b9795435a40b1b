"""Output files appear complete or not at all: an interrupted or failed write never leaves a
truncated image behind, and never destroys the file it was meant to replace.

A process cut off by a signal (nbnumba.interrupt) does not unwind the thread that was writing:
it calls `abandon`, which removes the temporary files of the writes under way and makes sure
that none of them replaces its target afterwards."""

import contextlib
import os
import stat
import threading
import uuid

from ..errors import RuntimeFailure

_lock = threading.Lock()  # held while a temporary file is created or renamed over its target
_pending: set = set()  # temporary files not yet renamed
_abandoned = False


def check_writable(paths: list[str]) -> None:
    """Fail before rendering, not after: every output's folder must exist and accept files."""
    for path in paths:
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise RuntimeFailure(f"cannot write {path}: it is a directory")
        if not os.path.isdir(folder):
            raise RuntimeFailure(f"cannot write {path}: no such directory {folder}")
        if not os.access(folder, os.W_OK):
            raise RuntimeFailure(f"cannot write {path}: permission denied")


def _failure(path, error: OSError) -> RuntimeFailure:
    return RuntimeFailure(f"cannot write {path}: {error.strerror or error}")


def _is_device(target: str) -> bool:
    # /dev/null, FIFOs and the like cannot be replaced by rename; they are written in place.
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextlib.contextmanager
def atomic_open(path):
    """Binary file object whose contents replace ``path`` only once the block completes."""
    # Resolving symlinks keeps the link and writes its target, as a plain open() would.
    target = os.path.realpath(path)
    if _is_device(target):
        try:
            with open(target, "wb") as f:
                yield f
        except OSError as e:
            raise _failure(path, e) from e
        return
    directory, name = os.path.split(target)
    temp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    with _lock:
        _refuse_if_abandoned(path)
        try:
            # 0o666 lets the umask decide the final permissions, as for any newly created file.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as e:
            raise _failure(path, e) from None
        _pending.add(temp)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        with _lock:
            _refuse_if_abandoned(path)
            os.replace(temp, target)
            _pending.discard(temp)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        _pending.discard(temp)
        if isinstance(e, OSError):
            raise _failure(path, e) from e
        raise


def _refuse_if_abandoned(path) -> None:
    if _abandoned:
        raise RuntimeFailure(f"not writing {path}: the process is stopping")


def abandon(timeout: float = 2.0) -> None:
    """Remove the temporary files of every write under way and refuse every later write or
    rename in this process: called on the way out of an interrupted command, from any thread.
    A rename already under way completes first (waited for up to `timeout` seconds)."""
    global _abandoned
    locked = _lock.acquire(timeout=timeout)
    try:
        _abandoned = True
        for temp in list(_pending):
            with contextlib.suppress(OSError):
                os.unlink(temp)
        _pending.clear()
    finally:
        if locked:
            _lock.release()


def atomic_write_bytes(path, *chunks) -> None:
    """Write the bytes-like chunks (bytes, contiguous arrays) one after another, without
    joining them first."""
    with atomic_open(path) as f:
        for chunk in chunks:
            f.write(chunk)


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside ``path`` for writers that need a file name of their own (HDF5
    reads back what it writes); it replaces ``path`` only once the block completes."""
    target = os.path.realpath(path)
    directory, name = os.path.split(target)
    temp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield temp
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(e, OSError):
            raise _failure(path, e) from e
        raise

"""Output files appear complete or not at all: an interrupted or failed write never leaves a
truncated image behind, and never destroys the file it was meant to replace.

A process cut off by a signal (nbnumba.interrupt) does not unwind the thread that was writing:
it calls `abandon`, which removes the temporary files of the writes under way and makes sure
that none of them replaces its target afterwards.

The outputs of one command are written inside `together()`: each goes to its temporary name and
none is renamed over the user's file until every one of them is written, so a command that
fails on its last output (a full disk) leaves all of the user's earlier files as they were."""

import contextlib
import os
import stat
import threading
import uuid

from ..errors import RuntimeFailure, UserError

_lock = threading.Lock()  # held while a temporary file is created or renamed over its target
_pending: set = set()  # temporary files not yet renamed
_abandoned = False
_group = threading.local()  # .renames: (temp, target, path) held back until `together` ends


def check_writable(paths: list[str], inputs: list[str] = ()) -> None:
    """Fail before rendering, not after: every output's folder must exist and accept files, and
    no file may be named for two outputs, or be an input that an output would replace."""
    check_distinct(paths, inputs)
    for path in paths:
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise RuntimeFailure(f"cannot write {path}: it is a directory")
        if not os.path.isdir(folder):
            raise RuntimeFailure(f"cannot write {path}: no such directory {folder}")
        if not os.access(folder, os.W_OK):
            raise RuntimeFailure(f"cannot write {path}: permission denied")


def _same_file(path: str) -> str | None:
    # a device (/dev/null) takes any number of outputs
    return None if _is_device(os.path.realpath(path)) else os.path.realpath(path)


def check_distinct(paths: list[str], inputs: list[str] = ()) -> None:
    """A user's mistake: two outputs named alike (only one would be kept) or an output that
    names one of the command's inputs (it would be replaced before or while it is read)."""
    read = {_same_file(path): path for path in inputs if path}
    seen: dict = {}
    for path in paths:
        key = _same_file(path)
        if key is None:
            continue
        if key in read:
            raise UserError(f"{path} is an input of this command: name its outputs after other files")
        if key in seen:
            raise UserError(f"{seen[key]} and {path} are one file, named for two outputs: give each output "
                            "its own name")
        seen[key] = path


def failure(path, error: OSError) -> RuntimeFailure:
    """The one line for an output that could not be written (HDF5's errors carry the system's
    error number under a long text of their own: the number's meaning is said instead)."""
    reason = os.strerror(error.errno) if error.errno else (error.strerror or str(error)).splitlines()[0]
    return RuntimeFailure(f"cannot write {path}: {reason}")


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
            raise failure(path, e) from e
        return
    directory, name = os.path.split(target)
    temp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    with _lock:
        _refuse_if_abandoned(path)
        try:
            # 0o666 lets the umask decide the final permissions, as for any newly created file.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as e:
            raise failure(path, e) from None
        _pending.add(temp)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _rename(temp, target, path)
    except BaseException as e:
        _discard(temp)
        if isinstance(e, OSError):
            raise failure(path, e) from e
        raise


def _rename(temp: str, target: str, path) -> None:
    """Put a finished temporary file in place, or hold it back to the end of `together`."""
    renames = getattr(_group, "renames", None)
    if renames is not None:
        renames.append((temp, target, path))
        return
    with _lock:
        _refuse_if_abandoned(path)
        os.replace(temp, target)
        _pending.discard(temp)


def _discard(temp: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(temp)
    _pending.discard(temp)


@contextlib.contextmanager
def together():
    """Every write of this thread inside the block replaces its target only when the whole
    block succeeds; any failure removes all of their temporary files.  Nested blocks join the
    outermost one."""
    if getattr(_group, "renames", None) is not None:
        yield
        return
    _group.renames = renames = []
    try:
        yield
        _group.renames = None
        done = 0
        try:
            with _lock:
                for temp, target, path in renames:
                    _refuse_if_abandoned(path)
                    os.replace(temp, target)
                    _pending.discard(temp)
                    done += 1
        except OSError as e:
            raise failure(renames[done][2], e) from e
    except BaseException:
        for temp, _, _ in renames:
            _discard(temp)
        raise
    finally:
        _group.renames = None


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
    with _lock:
        _refuse_if_abandoned(path)
        _pending.add(temp)
    try:
        yield temp
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _rename(temp, target, path)
    except BaseException as e:
        _discard(temp)
        if isinstance(e, OSError):
            raise failure(path, e) from e
        raise

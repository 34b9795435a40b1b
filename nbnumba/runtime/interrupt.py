"""SIGINT (Ctrl-C) and SIGTERM stop a command within a fraction of a second, whatever it is
doing: exit 130 / 143, one line on stderr, no output or temporary file left behind, earlier files
untouched.

A compiled kernel call cannot be stopped from outside and may last minutes (one pixel of
-oversample 60 or -N 1e9), and Python runs signal handlers in the main thread only, between
bytecodes.  So `call` runs the command's work in a worker thread and keeps the main thread free
to take the signals; the long kernels release the GIL while they run (nogil=True), so the
handler runs at once.  On a signal, work that asked for time to stop (`grace`: the batch client,
which records the frames that finished and stops its workers) sees `requested()` and gets that
time; then, or at once for all other work, the process is cut off: the temporary files of
unfinished writes are removed and nothing more is renamed into place (io.atomic.abandon), child
processes are stopped, the streams are flushed and the process exits with 128 + the signal
number, without unwinding the thread that was working.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

from ..io import atomic

SIGNALS = (signal.SIGINT, signal.SIGTERM)
WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
POLL = 0.05  # s: the main thread's longest wait; a signal taken by another thread wakes no one
CHILDREN_S = 0.2  # s given to child processes to leave on SIGTERM before they are killed
SWITCH_S = 1e-4  # s: the interpreter's thread switch interval once a signal came

_received: list = []  # signal numbers, in order of arrival
_requested = threading.Event()
_grace = [0.0]  # seconds the work may take to stop after a signal
_line_open = [False]  # a progress meter's line on stderr waits for its end


class Interrupted(KeyboardInterrupt):
    """Work giving up because a signal asked it to stop."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum


def exit_code(signum: int) -> int:
    return 128 + int(signum)


def message(signum: int) -> str:
    return "nbnumba: " + WORDS.get(signum, "interrupted")


def requested() -> bool:
    """True once a signal has asked the work to stop."""
    return _requested.is_set()


def check() -> None:
    """Raise Interrupted if a signal has asked the work to stop."""
    if _requested.is_set():
        raise Interrupted(_received[0] if _received else signal.SIGINT)


@contextlib.contextmanager
def grace(seconds: float):
    """While inside, a signal lets the work stop on its own for up to `seconds` (it must watch
    `requested()`) before the process is cut off."""
    old = _grace[0]
    _grace[0] = seconds
    try:
        yield
    finally:
        _grace[0] = old


def line_open(is_open: bool) -> None:
    """A progress meter says whether its last line on stderr is unfinished (then the exit
    message starts on a line of its own)."""
    _line_open[0] = is_open


def install() -> None:
    """Make SIGINT and SIGTERM end the process at once (`terminate`) outside `call` too: while
    the command line is parsed, and after the work is done."""
    for signum in SIGNALS:
        signal.signal(signum, _terminate_now)


def _terminate_now(signum, frame) -> None:
    terminate(signum)


def call(action, *args):
    """`action(*args)` in a worker thread, its result returned and its exception raised here;
    a SIGINT or SIGTERM meanwhile ends the process (see the module's text).  Outside the main
    thread (where signals cannot be handled) the action simply runs."""
    if threading.current_thread() is not threading.main_thread():
        return action(*args)
    outcome: dict = {}

    def work():
        try:
            outcome["value"] = action(*args)
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = err

    _received.clear()
    _requested.clear()
    old = {signum: signal.signal(signum, _on_signal) for signum in SIGNALS}
    try:
        thread = threading.Thread(target=work, name="nbnumba-work", daemon=True)
        thread.start()
        _wait(thread)
    finally:
        for signum, handler in old.items():
            if handler is not None:  # None: a handler set outside Python, which cannot be put back
                signal.signal(signum, handler)
    if "error" in outcome:
        raise outcome.pop("error")
    return outcome.get("value")


def _on_signal(signum, frame) -> None:
    # From here on this thread needs the GIL a few times more; many busy Python threads (the
    # CUDA simulator runs one per GPU thread) would each hold it for the default 5 ms first.
    sys.setswitchinterval(SWITCH_S)
    _received.append(signum)
    _requested.set()


def _wait(thread: threading.Thread) -> None:
    while thread.is_alive() and not _received:
        thread.join(POLL)
    if not _received:
        return
    deadline = time.monotonic() + _grace[0]
    # a second signal cuts the grace short
    while thread.is_alive() and len(_received) == 1 and time.monotonic() < deadline:
        thread.join(min(POLL, max(0.0, deadline - time.monotonic())))
    terminate(_received[0])


def terminate(signum: int) -> None:
    """Leave now, from any state: unfinished writes removed, children stopped, exit 128 + signum.

    The streams are not flushed: the worker thread may hold a stream's lock (blocked on a full
    pipe), and every line the commands print is flushed as it is printed (click.echo)."""
    atomic.abandon()
    _stop_children()
    text = ("\n" if _line_open[0] else "") + message(signum) + "\n"
    with contextlib.suppress(OSError):
        os.write(2, text.encode())
    os._exit(exit_code(signum))


def _stop_children() -> None:
    """SIGTERM to every descendant (the workers of an embedded Dask cluster remove their own
    unfinished files on it), SIGKILL to those still there after CHILDREN_S.  Only processes
    started through multiprocessing (Dask's) are looked for: a command that started none
    imports nothing here."""
    started = sys.modules.get("multiprocessing")
    if started is None or not started.active_children():
        return
    try:
        import psutil
        children = psutil.Process().children(recursive=True)
    except Exception:  # noqa: BLE001 - no psutil: nothing known to stop
        return
    for child in children:
        with contextlib.suppress(Exception):
            child.terminate()
    with contextlib.suppress(Exception):
        _, alive = psutil.wait_procs(children, timeout=CHILDREN_S)
        for child in alive:
            with contextlib.suppress(Exception):
                child.kill()

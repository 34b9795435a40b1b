"""`python -m nbnumba` is the `nbnumba` command."""

import os
import signal


def _before_start(signum, frame):
    # a signal while the modules load: nothing is written yet (console() installs the full handling)
    os.write(2, b"nbnumba: " + (b"terminated" if signum == signal.SIGTERM else b"interrupted") + b"\n")
    os._exit(128 + signum)


for _signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_signum, _before_start)

from .cli import console  # noqa: E402 - after the handlers, so that a signal during the imports is handled

console()

"""Where Numba caches nbnumba's compiled code: a folder per version of the sources.

Numba keys its cache on the calling function's file only, so a kernel cached before a change to
the physics would be reused stale.  The cache folder is therefore named after a hash of the
sources that generate compiled code: every module of the physics and kernels packages (patterns,
so that a new module cannot be left out), with the flat-array layouts and physics/compiled.py
(the jit options the CPU physics is compiled with, which Numba's cache does not key on either),
and the random numbers (response/rng.py).  A dispatcher picks
its cache folder when it is defined, so every module that defines cached functions imports this
one first; otherwise those functions would cache beside their source and a "fresh" cache folder
would not be fresh.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

import numba
from numba.core.caching import FunctionCache
from numba.core.runtime import rtsys

_PACKAGE = Path(__file__).resolve().parents[1]
_SOURCES = ["physics/*.py", "kernels/*.py", "response/rng.py"]


def source_files(package: Path = _PACKAGE) -> list[Path]:
    """The sources that generate compiled code (`_SOURCES`' patterns, each in name order)."""
    return [path for pattern in _SOURCES for path in sorted(Path(package).glob(pattern))]


def source_hash(package: Path = _PACKAGE) -> str:
    """The name of the cache folder: a hash of the sources that generate compiled code."""
    digest = hashlib.sha256()
    for path in source_files(package):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _configure_cache() -> None:
    base = os.environ.get("NBNUMBA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "nbnumba")
    numba.config.CACHE_DIR = os.path.join(base, source_hash())


_configure_cache()


def _load_overload(self, sig, target_context):
    """Numba's FunctionCache.load_overload for nbnumba's own functions, without loading every
    implementation Numba has into its compiler first (0.15 s, a third of a small image's run):
    rebuilding compiled code needs only the runtime's symbols.  A cache miss compiles as
    before, and compiling loads them all."""
    if not getattr(self._py_func, "__module__", "").startswith(_PACKAGE.name + "."):
        return _numba_load_overload(self, sig, target_context)
    rtsys.initialize(target_context)
    with self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)


_numba_load_overload = FunctionCache.load_overload
FunctionCache.load_overload = _load_overload


@contextmanager
def compile_notice(what: str, echo):
    """Say on stderr, once per cache folder, that `what` is being compiled: the first run (or the
    first after an upgrade) otherwise sits silent for 10-20 s.  A marker file written after the
    first successful call remembers that the kernels are in the cache."""
    marker = Path(numba.config.CACHE_DIR) / f"compiled-{what.replace(' ', '-')}"
    if not marker.exists():
        echo(f"nbnumba: compiling the {what} kernels (first run only); cached in {numba.config.CACHE_DIR}")
    yield
    if not marker.exists():
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:  # a read-only cache only means the notice comes again next time
            pass

"""Where Numba caches nbnumba's compiled code: a folder per version of the sources.

Numba keys its cache on the calling function's file only, so a kernel cached before a change to
the physics would be reused stale.  The cache folder is therefore named after a hash of the
sources that generate compiled code: every module of the physics and kernels packages (patterns,
so that a new module cannot be left out), with the flat-array layouts and physics/compiled.py
(the jit options the CPU physics is compiled with, which Numba's cache does not key on either),
the random numbers (response/rng.py) and the vector width the compiler may use
(runtime/vector_width.py).  A dispatcher picks
its cache folder when it is defined, so every module that defines cached functions imports this
one first; otherwise those functions would cache beside their source and a "fresh" cache folder
would not be fresh.

A cached function is also loaded more cheaply than Numba does by default (`_load_overload`,
`call`): a one-image command spends most of its time starting up.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

import numba
import numpy as np
from numba.core import types
from numba.core.caching import FunctionCache
from numba.core.runtime import rtsys
from numba.np.numpy_support import from_dtype

from .cache_folder import cache_folder
from .inline_copy import share_scope_copies
from .vector_width import allow_wide_vectors

_PACKAGE = Path(__file__).resolve().parents[1]
_SOURCES = ["physics/*.py", "kernels/*.py", "response/rng.py", "runtime/vector_width.py"]


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
    numba.config.CACHE_DIR = os.path.join(cache_folder(), source_hash())


_configure_cache()
allow_wide_vectors()
share_scope_copies()


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


def call(dispatcher, *args):
    """`dispatcher(*args)`, through the compiled code for the arguments' types named here.
    Numba's dispatch types each new kind of array in Python, which imports numpy.ma (20-30 ms),
    and its first compile or cache load first loads the Numba extensions of every installed
    package (15-25 ms); a one-image command pays both for nothing.  Arguments of other kinds
    go the usual way."""
    return entry_point(dispatcher, *args)(*args)


def entry_point(dispatcher, *args):
    """What `call` calls for these arguments' types: the compiled code (compiled or loaded from
    the cache first if need be), or the dispatcher itself for arguments of other kinds."""
    signature = _signature(args)
    if signature is None:
        return dispatcher
    compiled = dispatcher.overloads.get(signature)
    return compiled.entry_point if compiled is not None else dispatcher.compile(signature)


def _signature(args) -> tuple | None:
    """The Numba types of arrays, bools, ints and floats, as Numba's own dispatch computes them."""
    named = []
    for value in args:
        if type(value) is np.ndarray:  # a subclass (numpy.ma's) is Numba's to accept or refuse
            flags = value.flags
            layout = "C" if flags.c_contiguous else "F" if flags.f_contiguous else "A"
            named.append(types.Array(from_dtype(value.dtype), value.ndim, layout, readonly=not flags.writeable))
        elif isinstance(value, bool):
            named.append(types.boolean)
        elif isinstance(value, int) and -2**63 <= value < 2**63:
            named.append(types.int64)
        elif isinstance(value, float):
            named.append(types.float64)
        else:
            return None
    return tuple(named)


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

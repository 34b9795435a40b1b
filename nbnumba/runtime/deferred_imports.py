"""A module that Numba imports when it starts but that a command on a warm cache never uses,
loaded only when something first touches it.

importlib.metadata is how Numba finds other packages' extensions, which it does only before it
compiles; importing it brings the email package along (about 10 ms of a one-image run's 0.4 s).
The module is the standard library's lazy one (importlib.util.LazyLoader): the first attribute
read runs it, so a compile or any other user finds it complete.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

DEFERRED = ("importlib.metadata",)


def defer_unused_imports() -> None:
    for name in DEFERRED:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            continue
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        parent, _, child = name.rpartition(".")
        # `from importlib import metadata` reads the attribute: set, it touches nothing
        setattr(importlib.import_module(parent), child, module)

"""Numba's inlining without its quadratic copy.

To inline a function (`inline="always"`), Numba deep-copies the callee's code block by block, each
block with a copy memo of its own, so every block takes a copy of the callee's whole variable scope
with it: blocks x variables, twice per call site, and then every copied scope is renamed.  The
render strip inlines its physics at Numba's level (LLVM vectorises the strips only so), and this
copying was the largest single piece of its first compile, 2 s of 13.  Here the blocks of one scope
share a memo while Numba inlines, so the scope is copied once, as the callee had one; the code
copied is otherwise the same (numba/numba#8989 and NVIDIA/numba-cuda#688 report the cost).

Nothing is changed until Numba first compiles something: a run that loads its kernels from the
cache does not import the inliner.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

from numba.core import event

# while Numba's inline_ir runs: id(scope) -> the deep-copy memo of that scope's blocks
_memos: dict[int, dict] = {}


def _deepcopy(value, memo=None):
    scope = getattr(value, "scope", None)
    if memo is None and scope is not None:
        memo = _memos.setdefault(id(scope), {})
    return copy.deepcopy(value, memo)


def _patch() -> None:
    from numba.core import inline_closurecall

    worker = inline_closurecall.InlineWorker
    # only the copies of inline_ir go through the module's `copy`; another Numba may copy otherwise
    if getattr(inline_closurecall, "copy", None) is not copy or not hasattr(worker, "inline_ir"):
        return
    numba_inline_ir = worker.inline_ir

    def inline_ir(self, *args, **kwargs):
        _memos.clear()
        try:
            return numba_inline_ir(self, *args, **kwargs)
        finally:
            _memos.clear()

    worker.inline_ir = inline_ir
    inline_closurecall.copy = SimpleNamespace(deepcopy=_deepcopy, copy=copy.copy)


class _FirstCompile(event.Listener):
    def __init__(self):
        self.done = False

    def on_start(self, ev):
        if not self.done:
            self.done = True
            _patch()

    def on_end(self, ev):
        pass


def share_scope_copies() -> None:
    """Patch Numba's inliner when Numba first compiles."""
    event.register("numba:compile", _FirstCompile())

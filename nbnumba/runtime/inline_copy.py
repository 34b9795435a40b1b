"""Numba's inlining without its repeated work: each callee's code built once per compile, and
copied once per call site.

To inline a function (`inline="always"`), Numba runs its own front end on the callee at every call
site (bytecode to IR, rewrites, and the callee's own inlining, recursively), and then deep-copies
the callee's code block by block, each block with a copy memo of its own, so every block takes a
copy of the callee's whole variable scope with it: blocks x variables, twice per call site, and
then every copied scope is renamed.  The render strip inlines its physics at Numba's level (LLVM
vectorises the strips only so), and the copying was the largest single piece of its first
compile, 2 s of 13; the repeated front ends another 0.4 s.  Here the blocks of one scope share a
memo while Numba inlines, so the scope is copied once, as the callee had one, and a callee's IR
is built once per outermost compile and flags (Numba copies it before changing it); the code
inlined is otherwise the same (numba/numba#8989 and NVIDIA/numba-cuda#688 report the cost).

Nothing is changed until Numba first compiles something: a run that loads its kernels from the
cache does not import the inliner.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

from numba.core import event

# while Numba's inline_ir runs: id(scope) -> the deep-copy memo of that scope's blocks
_memos: dict[int, dict] = {}
# while an outermost compile runs: (callee, flags) -> the callee's IR after Numba's front end
_callee_irs: dict = {}


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

    def inline_function(self, caller_ir, block, i, function, arg_typs=None):
        flags = self.flags.copy()
        flags.enable_ssa = False  # as run_untyped_passes sets it
        key = (function, flags)  # Numba's flags compare by value
        if key not in _callee_irs:
            _callee_irs[key] = self.run_untyped_passes(function)
        return self.inline_ir(caller_ir, block, i, _callee_irs[key], function.__code__.co_freevars,
                              arg_typs=arg_typs)

    worker.inline_ir = inline_ir
    if hasattr(worker, "inline_function") and hasattr(worker, "run_untyped_passes"):
        worker.inline_function = inline_function
    inline_closurecall.copy = SimpleNamespace(deepcopy=_deepcopy, copy=copy.copy)


class _Compiles(event.Listener):
    def __init__(self):
        self.patched = False
        self.depth = 0

    def on_start(self, ev):
        if not self.patched:
            self.patched = True
            _patch()
        self.depth += 1

    def on_end(self, ev):
        self.depth -= 1
        if self.depth == 0:
            _callee_irs.clear()


def share_scope_copies() -> None:
    """Patch Numba's inliner when Numba first compiles."""
    event.register("numba:compile", _Compiles())

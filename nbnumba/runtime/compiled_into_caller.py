"""Functions compiled into their callers' code, optimised and emitted once, there.

A function Numba compiles for a call from compiled code (a dispatcher, or an `overload`'s
implementation) is optimised and emitted as machine code on its own, and then linked, optimised
and emitted again inside each caller.  The render strips are only ever called from their kernels,
so their own machine code never ran: in the first compile of the supervisor command that was
0.8 s of ~7 s.  A stub made here is typed by compiling the function chosen for its argument types
to Numba's IR and LLVM's (function passes only); each caller links that code into its own and
optimises it with itself, as Numba links a dispatcher's.  In process, one compile serves every
caller; on disk, the callers' caches hold it.

Compiled without Numba's reference counting: the strips allocate nothing (a CUDA device function
cannot), and the functions inlined into them then no longer count their array arguments at each
call (7-8 % of a derivative pass under perf).  The error model and fast maths are the caller's, as
Numba gives them to a function a compiled caller calls.
"""

from __future__ import annotations

import inspect

from llvmlite import binding as ll
from numba.core import compiler, types
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import cpu_target
from numba.core.typing.templates import infer, infer_global, make_intrinsic_template

# (function, argument types, error model, fast maths) -> Numba's compile result, not finalised
_compiled: dict = {}


def _flags():
    flags = compiler.Flags()
    flags.no_compile = True
    flags.no_cpython_wrapper = True
    flags.no_cfunc_wrapper = True
    flags.nrt = False
    flags.inherit_if_not_set("error_model", default="python")
    flags.inherit_if_not_set("fastmath")
    return flags


def _compile(py_func, args):
    flags = _flags()
    key = (py_func, args, flags.error_model, frozenset(flags.fastmath.flags))
    if key not in _compiled:
        with global_compiler_lock:
            context = cpu_target.target_context
            library = context.codegen().create_library(py_func.__qualname__)
            _compiled[key] = compiler.compile_extra(cpu_target.typing_context, context, py_func, args, None, flags,
                                                    {}, library=library)
    return _compiled[key]


def _link_into(caller, cres):
    """Link the compiled function's code into the caller's library, once per library."""
    final = caller._final_module
    try:
        if not final.get_function(cres.fndesc.mangled_name).is_declaration:
            return
    except NameError:
        pass
    module = cres.library._final_module.clone()
    defined = [fn.name for fn in module.functions if not fn.is_declaration and fn.linkage == ll.Linkage.external]
    final.link_in(module)
    # as Numba links a library: a definition the optimiser may inline and then drop (linked in as
    # linkonce_odr before the caller's own code, LLVM would drop it at once, unused)
    for name in defined:
        final.get_function(name).linkage = "linkonce_odr"
    for library in cres.library._linking_libraries:
        caller.add_linking_library(library)


def compiled_into_caller(stub, choose):
    """Make the Python function `stub` callable from compiled code: a call compiles
    `choose(*argument_types)`, a Python function with the stub's parameters, into the caller.
    Returns `stub`, which a kernel may hold in its closure (a cached kernel's key pickles it by
    name)."""

    def typer(typingctx, *args):
        args = tuple(types.unliteral(a) for a in args)
        cres = _compile(choose(*args), args)

        def codegen(context, builder, sig, values):
            _link_into(context.active_code_library, cres)
            return context.call_internal(builder, cres.fndesc, cres.signature, values)

        return cres.signature, codegen

    # Numba folds a call's arguments by the typer's signature: the stub's, after the context
    typer.__signature__ = inspect.Signature(
        [inspect.Parameter("typingctx", inspect.Parameter.POSITIONAL_OR_KEYWORD),
         *inspect.signature(stub).parameters.values()])
    template = make_intrinsic_template(stub, typer, stub.__name__)
    infer(template)
    infer_global(stub, types.Function(template))
    return stub

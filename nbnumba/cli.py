"""The `nbnumba` command: the commands of `nbnumba.commands` assembled into one Click group."""

from __future__ import annotations

import importlib
import os
import sys

import click

# name -> (module of nbnumba.commands, its Click command); a module is imported when its command
# runs (or help lists it), so that a command loads only what it uses
COMMANDS = {
    "batch": ("sweep", "batch"),
    "compare": ("compare", "compare"),
    "derivatives": ("derivatives", "derivatives"),
    "flags": ("flags", "flags"),
    "noisify": ("noisify", "noisify"),
    "nonbragg": ("nonbragg", "nonbragg"),
    "refine": ("refine", "refine"),
    "run": ("run", "run"),
    "sweep": ("sweep", "sweep"),
    "trace": ("trace", "trace"),
    "trace-diff": ("trace_diff", "trace_diff"),
}


HELP_WORDS = ("-h", "-help", "--help")


class NanoBraggGroup(click.Group):
    """nanoBragg's habits on top of Click: `nbnumba -hkl F.hkl ...` (a flag straight after the
    program name) is `nbnumba run -hkl F.hkl ...`, and `-h` or `-help` asks for help anywhere.
    The help words are rewritten here rather than registered as Click options, because a short
    option `-h` would make Click split nanoBragg's `-hkl` into `-h -k -l`."""

    def parse_args(self, ctx, args):
        args = ["--help" if a in HELP_WORDS else a for a in args]
        if args and args[0].startswith("-") and args[0] not in ("--help", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, command = COMMANDS[name]
        return getattr(importlib.import_module(f"nbnumba.commands.{module}"), command)


@click.group(cls=NanoBraggGroup)
@click.version_option(package_name="nbnumba")
def main() -> None:
    """nbnumba: nanoBragg's diffraction simulator, same command line, on CPU and GPU.

    `nbnumba -hkl F.hkl -mat A.mat ...` (nanoBragg's flags straight after the program name) is
    the same as `nbnumba run ...`. `nbnumba flags [WORD]` lists every flag with its default and
    unit; `nbnumba COMMAND -h` describes one command."""


def console() -> None:
    """The `nbnumba` command.  When nothing is left running it leaves without the interpreter's
    teardown, which would spend about 0.2 s unloading Numba, its thread pool and LLVM: by then
    every output file is closed and synced, and the streams are flushed here.  Worker processes
    or threads still alive (a Dask cluster) get the ordinary exit, which shuts them down."""
    from .runtime import interrupt
    from .runtime.deferred_imports import defer_unused_imports

    defer_unused_imports()
    interrupt.install()  # until a command's own handling starts, and after it ends
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    import multiprocessing
    import threading
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if others or multiprocessing.active_children():
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to deliver
            pass
    os._exit(code)

"""How a command runs: the guard that turns errors into one line, interrupts (Ctrl-C, SIGTERM),
the thread count and the compiled-code cache folder.

May import: io (atomic writes, to clean up after an interrupt).
"""

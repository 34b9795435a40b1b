"""How a command runs: the guard that turns errors into one line, interrupts (Ctrl-C, SIGTERM),
the thread count, the compiled-code cache folder, and how Numba compiles the kernels (its inliner
without repeated work; the strips compiled into the kernels that call them).

May import: io (atomic writes, to clean up after an interrupt).
"""

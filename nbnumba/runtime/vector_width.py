"""The CPU vectors Numba's compiler may use: all the CPU has.

LLVM's tuning for many AVX-512 CPUs (Skylake-X to Emerald Rapids) prefers 256-bit vectors,
because early ones slowed their clock for 512-bit work.  The render's strip loops are
arithmetic-bound and run 13-20 % faster with 512-bit vectors on this project's Xeons, with the
same image to the bit: lane width never changes a lane's arithmetic, and without fast-math
LLVM reorders no sum.  A user's own NUMBA_CPU_NAME or NUMBA_CPU_FEATURES is left alone (a
portable cache names a generic CPU).
"""

from __future__ import annotations

import numba

WIDE = "-prefer-256-bit"


def allow_wide_vectors() -> None:
    """Tell Numba's compiler the host CPU's features with LLVM's 256-bit preference lifted.
    Must run before Numba's CPU target first compiles or loads code."""
    if numba.config.CPU_NAME is not None or numba.config.CPU_FEATURES is not None:
        return
    from llvmlite import binding

    features = binding.get_host_cpu_features().flatten()
    if "+avx512f" in features.split(","):
        numba.config.CPU_FEATURES = f"{features},{WIDE}"

"""The output stage's kernels compiled by a helper process while a first run compiles its render.

On an empty compile cache `nbnumba run` compiles its render, then the kernels of its statistics,
int image and noise image: about 2 s more, which nothing but the compiler lock makes wait for the
render.  A helper process compiles them into the cache on another core meanwhile (the same
functions on a 2x2 image: the same types), and the run loads them from there.  Run as
`python -m nbnumba.outputs.prewarm`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

# written in the cache folder once the helper has compiled everything
MARKER = "compiled-outputs"
# a helper that takes longer than this is left to itself: the run compiles what it still needs
PATIENCE_S = 30.0


def _marker() -> Path:
    import numba

    from ..runtime import jitcache  # noqa: F401  (sets numba.config.CACHE_DIR)

    return Path(numba.config.CACHE_DIR) / MARKER


def start() -> subprocess.Popen | None:
    """The helper, started if the output kernels are not cached yet and the run has a second
    thread (-nthreads 1 asks for one core); None otherwise or if it cannot start."""
    import numba

    if numba.get_num_threads() < 2 or _marker().exists():
        return None
    try:
        # in the temporary folder: without -hkl a run reads an Fdump.bin where it runs
        return subprocess.Popen([sys.executable, "-m", __name__], cwd=tempfile.gettempdir(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def finish(helper: subprocess.Popen | None) -> None:
    """Wait for the helper (the kernels it compiles are the next the run needs)."""
    if helper is None:
        return
    try:
        helper.wait(timeout=PATIENCE_S)
    except subprocess.TimeoutExpired:
        pass


def compile_outputs() -> None:
    """Compile the statistics, int image and noise image kernels as `run` calls them."""
    import numpy as np

    from ..model.simulation import build
    from . import images

    sim = build("-cell 50 50 50 90 90 90 -default_F 1 -detpixels 2 -seed 1".split(), say=None)
    image = np.ones(sim.shape, dtype=np.float32)
    images.statistics(sim, image)
    images.int_image(sim, image, 1.0)
    images.noise_image(sim, image)
    try:
        _marker().touch()
    except OSError:  # a read-only cache: nothing was stored either, and the next run tries again
        pass


if __name__ == "__main__":
    from ..runtime.guard import without_scipy_blas

    with without_scipy_blas():  # as the run's own compiles (0.1-0.2 s of SciPy that no kernel uses)
        compile_outputs()

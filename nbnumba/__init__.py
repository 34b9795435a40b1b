"""nbnumba: a Numba port of the nanoBragg diffraction simulator."""

import os

# nbnumba uses no BLAS, but Numba imports SciPy's, whose idle worker threads would compete with
# the render threads for the cores: one BLAS thread is plenty (a user's own setting wins).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

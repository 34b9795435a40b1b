"""nbnumba: a Numba port of the nanoBragg diffraction simulator."""

__version__ = "0.1.0"

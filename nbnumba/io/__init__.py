"""Files in and out: SMV, float, TIFF, PGM and PNG images, HKL tables, matrices, text columns,
NeXus/HDF5, JSON reports, and atomic writes that never leave a half-written file.

May import: nothing of nbnumba but its errors.
"""

"""The render: CPU (parallel njit), CUDA and trace kernels that loop over pixels and call the
shared physics, the backend interface, and the driver that runs a backend over a detector.

May import: model (the `Simulation` a render reads), physics, runtime, io.
"""

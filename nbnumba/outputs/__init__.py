"""What a rendered float image becomes: its statistics, the SMV int and noise images (through the
detector response), the PGM, and the files every command writes, together.

May import: kernels, model, response, physics, runtime, io.
"""

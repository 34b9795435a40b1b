"""The commands: one module per `nbnumba` command (run, trace, trace-diff, compare, flags, sweep and
batch, nonbragg, noisify, derivatives), each reading its own flags and calling the layers below,
with the reports `run` and `trace` print.  `cli.py` only assembles them.

May import: batch, amorphous, derivatives, outputs, response, kernels, model, physics, runtime, io.
"""

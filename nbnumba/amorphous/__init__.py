"""nonBragg's own behaviour: amorphous scattering (water, air, ice...) from a sin(theta)/lambda table:
the set-up from its command line, its report and files, the -img fit with its rejection
statistics, and the -bg_ group that adds such a background to a `run`.

May import: response, kernels, model, physics, runtime, io.
"""

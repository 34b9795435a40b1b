"""nonBragg's own behaviour beyond its set-up (model/nonbragg.py): the render of an amorphous
background, its report and files, the -img fit with its rejection statistics, and the -bg_ group
that adds such a background to a `run`.

May import: outputs, kernels, model, response, physics, runtime, io.
"""

"""Refinement: fit the model to a measured image, pixel by pixel, with standard errors.

`data` reads the measured image into photons with its usable pixels; `windows` picks the pixels
that matter (shoeboxes around the model's spots, or tiles of the whole detector); `background`
solves each window's plane in closed form; `likelihood` is the Poisson-with-read-out loss (or least
squares); `parameters` names, groups, bounds and rescales what is refined; `model` gives the model
image and dI/dp on the chosen pixels from the derivative passes; `engine` runs SciPy's L-BFGS-B
over macro-cycles and computes the errors from JᵀWJ; `result` and `outputs` report and write it;
`shot` fits one row of a list (commands/refine_shots.py runs a list as tasks of the Dask cluster
`batch` uses).

May import: derivatives, amorphous, outputs, response, kernels, model, physics, runtime, io.
"""

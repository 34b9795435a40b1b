"""Derivatives of the image with respect to the model (see docs/derivatives.md).

`parameters`: the named parameters, their units and `apply`; `directions`: each parameter as a
direction in the kernels' inputs; `passes`: `jacobian` and `gradient`, which push those directions
through the physics (physics.tangent_pixel) on the CPU or the GPU.  `commands/derivatives.py` is
its command, `api.jacobian`/`api.gradient` its Python entry points.

May import: kernels, model, physics, runtime, io.
"""

from .parameters import NAMES, UNITS, apply, base
from .passes import Gradient, Jacobian, gradient, jacobian

__all__ = ["NAMES", "UNITS", "apply", "base", "jacobian", "gradient", "Jacobian", "Gradient"]

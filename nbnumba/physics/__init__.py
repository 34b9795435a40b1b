"""The physics of one pixel, written once and compiled for every target.

`make_physics(jit, real)` returns the scalar functions compiled with `jit` (Numba's `njit` for the
CPU kernel, the trace and host-side geometry; `cuda.jit(device=True)` for the GPU kernel) in the
precision `real` (np.float64 reproduces the reference; np.float32 is the fast mode).  Every
literal goes through `R(...)` so that float32 arithmetic is not silently promoted to float64.

Each module holds one subject as a factory that compiles its functions for a target and takes
the functions of the others it builds on; `make_physics` composes them, so that every target gets
its functions from one place.  `amorphous` is built on the namespace it returns.

Derivatives ride along with the same functions (forward mode): beside each scalar function its
module holds the derivative rule (`*_tangent`, `polint_dx`, `interpolate_F_gradient`), and
`tangent_strip` walks a strip of pixels calling both, so a derivative pass computes the render's values
with the render's own functions and carries the tangents of K model directions through them.

The arithmetic follows the reference's order of operations, except for the lattice transform
(`lattice`): in float64 the image agrees with the reference to the last bit in almost every
pixel, which keeps its Poisson noise draws identical.

May import: runtime (the compiled-code cache folder, for `compiled`).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .detector import make_detector
from .features import Features, features_of
from .fused import exact_fma
from .lattice import make_lattice
from .pixel import make_pixel
from .structure_factors import make_structure_factors
from .tangent_pixel import make_tangent_strip
from .tracing import make_tracing
from .vectors import make_vectors

__all__ = ["Features", "features_of", "make_physics"]


def make_physics(jit, real, inline_jit=None, floor=np.floor, ceil=np.ceil, features=None, accumulate=None,
                 strip=1, fma=exact_fma):
    """`inline_jit` compiles the small hot functions (default: `jit`); on the CPU it should inline
    them into their callers, which lets LLVM keep the lattice sums in registers and vectorise.

    `floor` and `ceil` round a real to an integral real of the same type: NumPy's on the CPU (they
    vectorise), math's for CUDA (NumPy's ufuncs are not available there; math's return a real).
    `fma(a, b, c)` is a * b + c rounded once: the target's instruction, or `fused.exact_fma`.

    `features` (a `Features`) makes `render_strip` compile for those features only: the values it
    fixes become constants and the paths they rule out are not compiled.  None: all at run time.

    `accumulate` adds into the structure-factor gradient (`tangent_strip`): None, a plain addition;
    the GPU gives an atomic one.  `strip`: the most pixels a strip takes at once (1: a GPU thread's
    one pixel, for which nothing is compiled that only pays off across pixels)."""
    small = inline_jit if inline_jit is not None else jit
    # loops over several pixels at once; a GPU thread's one pixel would only pay registers for them
    side_by_side = strip > 1
    vectors = make_vectors(jit, real)
    detector = make_detector(jit, small, real, vectors)
    lattice = make_lattice(jit, small, real, floor, ceil, fma, side_by_side)
    structure_factors = make_structure_factors(jit, small, real)
    tracing = make_tracing(jit)
    pixel = make_pixel(jit, small, real, features, side_by_side, vectors, detector, lattice, structure_factors, tracing)
    tangent = make_tangent_strip(jit, small, real, features, ceil, fma, accumulate, strip, vectors, detector, lattice,
                                 structure_factors, pixel)
    return SimpleNamespace(
        dot3=vectors.dot3, cross3=vectors.cross3, unitize3=vectors.unitize3, rotate_axis3=vectors.rotate_axis3,
        rotate_xyz3=vectors.rotate_xyz3,
        polarization_basis=detector.polarization_basis, polarization_factor=detector.polarization_factor,
        solid_angle=detector.solid_angle, pixel_active=detector.pixel_active,
        sin_halfpi=lattice.sin_halfpi, sinc3=lattice.sinc3,
        shape_transform=lattice.shape_transform, lattice_strip=lattice.lattice_strip,
        polint=structure_factors.polint, interpolate_F=structure_factors.interpolate_F,
        render_strip=pixel.render_strip, plain_render_strip=pixel.plain_render_strip,
        tangent_strip=tangent.tangent_strip, plain_tangent_strip=tangent.plain_tangent_strip, real=real,
    )

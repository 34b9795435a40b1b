"""A fused multiply-add, a * b + c rounded once, as plain Python: the host's and the CUDA
simulator's (the compiled targets bring their own instruction: `compiled.fma`, `cuda.fma`).
Python before 3.13 has no math.fma; the product of two reals is exact as a fraction."""

from __future__ import annotations

from fractions import Fraction


def exact_fma(a, b, c):
    return type(c)(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))

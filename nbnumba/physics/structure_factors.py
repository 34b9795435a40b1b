"""Structure factors of the reflections: the nearest one from the table, or the reference's
tricubic interpolation between its neighbours.

`interpolate_F_gradient` is the derivative rule of `interpolate_F`: its partial derivatives in
h, k and l, from the same Lagrange cubics (`polint`'s weights and `polint_dx`, its slope).  The nearest
structure factor is a step function of h, k, l: its derivative there is the pieces' (zero)."""

from __future__ import annotations

from types import SimpleNamespace

from . import layout as L


def make_structure_factors(jit, small, R):
    @jit
    def polint(x0, x1, x2, x3, y0, y1, y2, y3, x):
        """Cubic through four points (Lagrange form, the reference's term order)."""
        t0 = (x - x1) * (x - x2) * (x - x3) * y0 / ((x0 - x1) * (x0 - x2) * (x0 - x3))
        t1 = (x - x0) * (x - x2) * (x - x3) * y1 / ((x1 - x0) * (x1 - x2) * (x1 - x3))
        t2 = (x - x0) * (x - x1) * (x - x3) * y2 / ((x2 - x0) * (x2 - x1) * (x2 - x3))
        t3 = (x - x0) * (x - x1) * (x - x2) * y3 / ((x3 - x0) * (x3 - x1) * (x3 - x2))
        return t0 + t1 + t2 + t3

    @jit
    def polint_dx(x0, x1, x2, x3, y0, y1, y2, y3, x):
        """d/dx of `polint`."""
        d0 = (x0 - x1) * (x0 - x2) * (x0 - x3)
        d1 = (x1 - x0) * (x1 - x2) * (x1 - x3)
        d2 = (x2 - x0) * (x2 - x1) * (x2 - x3)
        d3 = (x3 - x0) * (x3 - x1) * (x3 - x2)
        t0 = ((x - x2) * (x - x3) + (x - x1) * (x - x3) + (x - x1) * (x - x2)) * y0 / d0
        t1 = ((x - x2) * (x - x3) + (x - x0) * (x - x3) + (x - x0) * (x - x2)) * y1 / d1
        t2 = ((x - x1) * (x - x3) + (x - x0) * (x - x3) + (x - x0) * (x - x1)) * y2 / d2
        t3 = ((x - x1) * (x - x2) + (x - x0) * (x - x2) + (x - x0) * (x - x1)) * y3 / d3
        return t0 + t1 + t2 + t3

    @jit
    def interpolate_along_l(Fhkl, hi, kj, lbase, xl0, l):
        return polint(xl0, xl0 + R(1.0), xl0 + R(2.0), xl0 + R(3.0),
                      Fhkl[hi, kj, lbase], Fhkl[hi, kj, lbase + 1], Fhkl[hi, kj, lbase + 2],
                      Fhkl[hi, kj, lbase + 3], l)

    @jit
    def interpolate_along_kl(Fhkl, hi, kbase, lbase, xk0, xl0, k, l):
        return polint(xk0, xk0 + R(1.0), xk0 + R(2.0), xk0 + R(3.0),
                      interpolate_along_l(Fhkl, hi, kbase, lbase, xl0, l),
                      interpolate_along_l(Fhkl, hi, kbase + 1, lbase, xl0, l),
                      interpolate_along_l(Fhkl, hi, kbase + 2, lbase, xl0, l),
                      interpolate_along_l(Fhkl, hi, kbase + 3, lbase, xl0, l), k)

    @jit
    def lagrange_weights(x0, x):
        """The four weights of `polint` at x for the nodes x0, x0 + 1, x0 + 2, x0 + 3 (the cubic
        through a one-hot y), and their slopes."""
        x1, x2, x3 = x0 + R(1.0), x0 + R(2.0), x0 + R(3.0)
        one, zero = R(1.0), R(0.0)
        return ((polint(x0, x1, x2, x3, one, zero, zero, zero, x), polint(x0, x1, x2, x3, zero, one, zero, zero, x),
                 polint(x0, x1, x2, x3, zero, zero, one, zero, x), polint(x0, x1, x2, x3, zero, zero, zero, one, x)),
                (polint_dx(x0, x1, x2, x3, one, zero, zero, zero, x),
                 polint_dx(x0, x1, x2, x3, zero, one, zero, zero, x),
                 polint_dx(x0, x1, x2, x3, zero, zero, one, zero, x),
                 polint_dx(x0, x1, x2, x3, zero, zero, zero, one, x)))

    @jit
    def interpolate_F_gradient(Fhkl, h, k, l, hf, kf, lf, h_min, k_min, l_min):
        """(dF/dh, dF/dk, dF/dl) of `interpolate_F` at the same arguments: the tricubic is the sum
        of the 4x4x4 structure factors weighted by products of `polint`'s weights along h, k, l."""
        hb = hf - 1 - h_min
        kb = kf - 1 - k_min
        lb = lf - 1 - l_min
        wh, sh = lagrange_weights(R(hf - 1), h)
        wk, sk = lagrange_weights(R(kf - 1), k)
        wl, sl = lagrange_weights(R(lf - 1), l)
        dh = R(0.0)
        dk = R(0.0)
        dl = R(0.0)
        for a in range(4):
            for b in range(4):
                line = R(0.0)
                line_slope = R(0.0)
                for c in range(4):
                    f = Fhkl[hb + a, kb + b, lb + c]
                    line += wl[c] * f
                    line_slope += sl[c] * f
                dh += sh[a] * wk[b] * line
                dk += wh[a] * sk[b] * line
                dl += wh[a] * wk[b] * line_slope
        return dh, dk, dl

    @jit
    def interpolate_F(Fhkl, h, k, l, hf, kf, lf, h_min, k_min, l_min):
        """Tricubic interpolation over the 4x4x4 structure factors from (floor(h)-1, ...)."""
        xh0 = R(hf - 1)
        xk0 = R(kf - 1)
        xl0 = R(lf - 1)
        hb = hf - 1 - h_min
        kb = kf - 1 - k_min
        lb = lf - 1 - l_min
        return polint(xh0, xh0 + R(1.0), xh0 + R(2.0), xh0 + R(3.0),
                      interpolate_along_kl(Fhkl, hb, kb, lb, xk0, xl0, k, l),
                      interpolate_along_kl(Fhkl, hb + 1, kb, lb, xk0, xl0, k, l),
                      interpolate_along_kl(Fhkl, hb + 2, kb, lb, xk0, xl0, k, l),
                      interpolate_along_kl(Fhkl, hb + 3, kb, lb, xk0, xl0, k, l), h)

    @jit
    def interpolation_leaves_table(h, k, l, ip):
        """True when the 4x4x4 neighbourhood of (h, k, l) is not inside the table."""
        h_range = ip[L.I_H_SPAN] + 1
        k_range = ip[L.I_K_SPAN] + 1
        l_range = ip[L.I_L_SPAN] + 1
        return ((h - ip[L.I_H_MIN] + 3) > h_range or (h - 2) < ip[L.I_H_MIN]
                or (k - ip[L.I_K_MIN] + 3) > k_range or (k - 2) < ip[L.I_K_MIN]
                or (l - ip[L.I_L_MIN] + 3) > l_range or (l - 2) < ip[L.I_L_MIN])

    @small
    def in_table(hi, ki, li, h_span, k_span, l_span):
        """Whether the reflection hi, ki, li steps from the table's first corner is in it (a
        negative span: no table; outside it F is default_F).  The render reads the entry, the
        derivative strip adds to the same entry of the structure factors' gradient.  The six
        tests are combined without short-circuits: a GPU thread then tests them without a branch
        each (the float32 Gaussian-crystal render kernel 50 -> 49 registers)."""
        return (0 <= hi) & (hi <= h_span) & (0 <= ki) & (ki <= k_span) & (0 <= li) & (li <= l_span)

    return SimpleNamespace(polint=polint, polint_dx=polint_dx, interpolate_F=interpolate_F,
                           interpolate_F_gradient=interpolate_F_gradient, lagrange_weights=lagrange_weights,
                           interpolation_leaves_table=interpolation_leaves_table, in_table=in_table)

"""The lattice transform: Miller indices of a scattering vector and the crystal's shape transform.

Unlike the rest of the arithmetic, which follows the reference's order of operations, the
parallelepiped's transform is computed from the fractional Miller index (more accurate than the
reference's, and several times faster).

`sincg_with_slope` and `shape_transform_partials` carry the derivative rules of the transforms (see
`vectors`).  The parallelepiped's has none in N: sin(N pi h)/sin(pi h) is a function of N only at
integers (for a real N it is singular at every Bragg position), so only its h derivative exists.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from . import layout as L


def make_lattice(jit, small, R, floor, ceil, fma, side_by_side):
    PI = R(math.pi)
    single = R(0.5).dtype.itemsize == 4
    # Taylor coefficients of sin on [-pi/2, pi/2] (see `sin_halfpi` for where they stop)
    C1, C2, C3, C4, C5, C6, C7, C8, C9, C10 = [R((-1.0) ** n / math.factorial(2 * n + 1)) for n in range(1, 11)]
    # pi in two parts: q * PI_A is exact for the small q of a lattice transform
    PI_A = R(3.140625) if single else R(3.1415926534682512)
    PI_B = R(math.pi - 3.140625) if single else R(math.pi - 3.1415926534682512)
    INV_PI = R(1.0 / math.pi)
    # Taylor coefficients of cos on [-pi/2, pi/2] (see `cos_halfpi` for where they stop)
    D0, D1, D2, D3, D4, D5, D6, D7, D8 = [R((-1.0) ** n / math.factorial(2 * n)) for n in range(9)]

    @small
    def sin_halfpi(x):
        """sin(x) for |x| <= pi/2, as a polynomial: no library call, no branch.

        Estrin's scheme: the terms are combined pairwise so the chain of dependent multiplies
        is a third as long as Horner's, which is what limits this loop on the CPU.  Fused
        multiply-adds take 15 operations where separate ones took 25, and agree with the C
        library's sine as often (the reference's sines, of unreduced arguments, round their own
        way regardless).  Truncation below an ulp: float64 stops at the x**21 term, float32 at
        x**13.
        """
        z = x * x
        z2 = z * z
        z4 = z2 * z2
        low = fma(fma(C4, z, C3), z2, fma(C2, z, C1))
        mid = fma(C6, z, C5)
        if not single:
            mid = fma(fma(C8, z, C7), z2, mid)
        p = fma(mid, z4, low)
        if not single:
            p = fma(fma(C10, z, C9), z4 * z4, p)
        return fma(x * z, p, x)

    @small
    def odd(x):
        """1.0 when the integer-valued x is odd, else 0.0 (in floating point, so loops vectorise)."""
        return fma(R(-2.0), floor(x * R(0.5)), x)

    @small
    def cos_halfpi(x):
        """cos(x) for |x| <= pi/2, as a polynomial (the slopes' companion of `sin_halfpi`), by
        Estrin's scheme and fused multiply-adds as it.  Only derivatives use it, whose checks
        ask 1e-6: float64 stops at the x**16 term (off by at most 5e-13), float32 at x**14."""
        z = x * x
        z2 = z * z
        z4 = z2 * z2
        p = fma(fma(fma(D7, z, D6), z2, fma(D5, z, D4)), z4, fma(fma(D3, z, D2), z2, fma(D1, z, D0)))
        if not single:
            p = fma(D8, z4 * z4, p)
        return p

    def make_sincg(slopes):
        """`sincg_with_slope`; without `slopes` (a constant of the compiled code) `sincg_peeled`, the
        value alone by a plain division (and a zero slope)."""

        @small
        def sincg(h, h0, n):
            """sin(N pi h)/sin(pi h) for integer N from the fraction f = h - h0 alone (h0 = round(h)),
            and its d/dh, which shares the reduced arguments and sin(pi f).

            sin(pi (h0 + f)) = (-1)^h0 sin(pi f): the fraction keeps every digit that matters (the
            float32 mode depends on it) and |pi f| <= pi/2 needs no argument reduction; sin(N pi f)
            is reduced by multiples of pi exactly, then each sine and cosine is one polynomial.  At
            an integer h the value is +-N and the slope 0 (even about it); the CPU's loops over
            pixels turn the early return into a select and still run them side by side.
            """
            frac = h - h0
            flips = (n - R(1.0)) * h0
            if frac == R(0.0):
                return (-n if odd(flips) != R(0.0) else n), R(0.0)
            x = PI * frac
            t = x * n
            q = floor(fma(t, INV_PI, R(0.5)))
            r = fma(-q, PI_B, fma(-q, PI_A, t))
            sin_x = sin_halfpi(x)
            sin_r = sin_halfpi(r)
            flip = odd(flips + q) != R(0.0)
            if not slopes:
                ratio = sin_r / sin_x
                return (-ratio if flip else ratio), R(0.0)
            # the slope divides by sin_x too: one division gives its reciprocal, and one
            # correction of the product gives the ratio the division would, bit for bit
            # (Markstein: for a correctly rounded reciprocal the remainder's fused
            # multiply-add is exact and the corrected quotient correctly rounded)
            per_sin_x = R(1.0) / sin_x
            guess = sin_r * per_sin_x
            ratio = fma(fma(-guess, sin_x, sin_r), per_sin_x, guess)
            value = -ratio if flip else ratio
            slope = PI * fma(-n if flip else n, cos_halfpi(r), -value * cos_halfpi(x)) * per_sin_x
            return value, slope

        return sincg

    sincg_with_slope = make_sincg(True)
    sincg_peeled = make_sincg(False)

    @jit
    def sinc3(x):
        """Transform of a sphere."""
        if x == R(0.0):
            return R(1.0)
        return R(3.0) * (math.sin(x) / x - math.cos(x)) / (x * x)

    @jit
    def shape_transform(shape, h, k, l, h0, k0, l0, na, nb, nc, fudge, recip):
        """F_latt of a round, Gaussian or top-hat crystal (not the parallelepiped)."""
        dh = h - h0
        dk = k - k0
        dl = l - l0
        if shape == 1:
            hrad_sqr = dh * dh * na * na + dk * dk * nb * nb + dl * dl * nc * nc
            return na * nb * nc * R(0.723601254558268) * sinc3(PI * math.sqrt(hrad_sqr * fudge))
        # the reference measures this distance with the unrotated reciprocal axes, in 1/A
        dx = dh * recip[0] + dk * recip[3] + dl * recip[6]
        dy = dh * recip[1] + dk * recip[4] + dl * recip[7]
        dz = dh * recip[2] + dk * recip[5] + dl * recip[8]
        rad_star_sqr = (dx * dx + dy * dy + dz * dz) * na * na * nb * nb * nc * nc
        if shape == 2:
            return na * nb * nc * math.exp(-(rad_star_sqr / R(0.63) * fudge))
        if rad_star_sqr * fudge < R(0.3969):
            return na * nb * nc
        return R(0.0)

    @jit
    def sinc3_slope(x):
        """sinc3'(x) / x, by its series where the closed form would cancel."""
        if x < R(1e-2):
            return R(-0.2) + x * x / R(70.0)
        return (R(3.0) * math.sin(x) / (x * x) - R(3.0) * sinc3(x) / x) / x

    @jit
    def shape_transform_partials(shape, h, k, l, h0, k0, l0, na, nb, nc, fudge, recip, value):
        """Partial derivatives of `shape_transform` (= `value`): (d/dh, d/dk, d/dl, d/dNa, d/dNb,
        d/dNc, s, dx, dy, dz), where d/d recip[3m + c] = s * (h - h0, k - k0, l - l0)[m] * (dx,
        dy, dz)[c].  The top hat's edge is a step: its derivative is the pieces'."""
        dh = h - h0
        dk = k - k0
        dl = l - l0
        zero = R(0.0)
        if shape == 1:
            hrad_sqr = dh * dh * na * na + dk * dk * nb * nb + dl * dl * nc * nc
            u = PI * math.sqrt(hrad_sqr * fudge)
            bulk = R(0.723601254558268) * sinc3(u)
            slope = R(0.723601254558268) * na * nb * nc * sinc3_slope(u) * PI * PI * fudge  # d/d hrad_sqr x 2
            return (slope * dh * na * na, slope * dk * nb * nb, slope * dl * nc * nc,
                    bulk * nb * nc + slope * dh * dh * na, bulk * na * nc + slope * dk * dk * nb,
                    bulk * na * nb + slope * dl * dl * nc, zero, zero, zero, zero)
        dx = dh * recip[0] + dk * recip[3] + dl * recip[6]
        dy = dh * recip[1] + dk * recip[4] + dl * recip[7]
        dz = dh * recip[2] + dk * recip[5] + dl * recip[8]
        n_sqr = na * na * nb * nb * nc * nc
        if shape == 2:
            d_sqr = dx * dx + dy * dy + dz * dz
            decay = math.exp(-(d_sqr * n_sqr / R(0.63) * fudge))
            per_rad = -value / R(0.63) * fudge  # d value / d rad_star_sqr
            s = R(2.0) * per_rad * n_sqr
            return (s * (dx * recip[0] + dy * recip[1] + dz * recip[2]),
                    s * (dx * recip[3] + dy * recip[4] + dz * recip[5]),
                    s * (dx * recip[6] + dy * recip[7] + dz * recip[8]),
                    nb * nc * decay + s * d_sqr / na, na * nc * decay + s * d_sqr / nb,
                    na * nb * decay + s * d_sqr / nc, s, dx, dy, dz)
        if (dx * dx + dy * dy + dz * dz) * n_sqr * fudge < R(0.3969):
            return zero, zero, zero, nb * nc, na * nc, na * nb, zero, zero, zero, zero
        return zero, zero, zero, zero, zero, zero, zero, zero, zero, zero

    @small
    def miller_index(a0, a1, a2, qx, qy, qz):
        """Fractional Miller index of the scattering vector (qx, qy, qz) along the real-space
        axis (a0, a1, a2)."""
        return a0 * qx + a1 * qy + a2 * qz

    @small
    def miller_indices(axes, state, p):
        """Fractional and nearest h, k, l of pixel p's scattering vector, for the rotated
        real-space axes `axes` (a, b, c: nine reals)."""
        qx = state[L.P_QX, p]
        qy = state[L.P_QY, p]
        qz = state[L.P_QZ, p]
        h = miller_index(axes[0], axes[1], axes[2], qx, qy, qz)
        k = miller_index(axes[3], axes[4], axes[5], qx, qy, qz)
        l = miller_index(axes[6], axes[7], axes[8], qx, qy, qz)
        return h, k, l, ceil(h - R(0.5)), ceil(k - R(0.5)), ceil(l - R(0.5))

    @small
    def store_indices(scratch, p, h, k, l, h0, k0, l0):
        scratch[L.S_H, p] = h
        scratch[L.S_K, p] = k
        scratch[L.S_L, p] = l
        scratch[L.S_H0, p] = h0
        scratch[L.S_K0, p] = k0
        scratch[L.S_L0, p] = l0

    def make_lattice_strip(slopes):
        """`lattice_strip`; with `slopes` (a constant of the compiled code) it also keeps the
        parallelepiped's sincg slopes (rows S_SA, S_SB, S_SC) for the derivative passes."""
        sincg = sincg_with_slope if slopes else sincg_peeled

        @small
        def lattice_strip(lattice, variant, e, state, width, shape, na, nb, nc, fudge, recip, scratch):
            """Miller indices and lattice transform of (phi step, mosaic domain) pair `e` for each
            pixel of a strip, into `scratch`.  No pixel depends on another and the parallelepiped's
            loop has no branch, so on the CPU it runs several pixels per instruction."""
            axes = (lattice[variant, e, 0], lattice[variant, e, 1], lattice[variant, e, 2],
                    lattice[variant, e, 3], lattice[variant, e, 4], lattice[variant, e, 5],
                    lattice[variant, e, 6], lattice[variant, e, 7], lattice[variant, e, 8])
            if shape == 0 and side_by_side:
                # one axis at a time: three sincg side by side hold more values than the
                # registers, and the loop would spend as much on spilling them as on arithmetic
                # (one pixel, below, keeps the three together: a GPU thread's needs fewer registers)
                for axis in range(3):
                    a0, a1, a2 = axes[3 * axis], axes[3 * axis + 1], axes[3 * axis + 2]
                    n = na if axis == 0 else nb if axis == 1 else nc
                    for p in range(width):
                        h = miller_index(a0, a1, a2, state[L.P_QX, p], state[L.P_QY, p], state[L.P_QZ, p])
                        h0 = ceil(h - R(0.5))
                        f, s = sincg(h, h0, n)
                        scratch[L.S_H + axis, p] = h
                        scratch[L.S_H0 + axis, p] = h0
                        scratch[L.S_FA + axis, p] = f if n > R(1.0) else R(1.0)
                        if slopes:
                            scratch[L.S_SA + axis, p] = s if n > R(1.0) else R(0.0)
                for p in range(width):
                    scratch[L.S_FLATT, p] = scratch[L.S_FA, p] * scratch[L.S_FB, p] * scratch[L.S_FC, p]
            elif shape == 0:
                for p in range(width):
                    h, k, l, h0, k0, l0 = miller_indices(axes, state, p)
                    f_a, s_a = sincg(h, h0, na)
                    f_b, s_b = sincg(k, k0, nb)
                    f_c, s_c = sincg(l, l0, nc)
                    f_a = f_a if na > R(1.0) else R(1.0)
                    f_b = f_b if nb > R(1.0) else R(1.0)
                    f_c = f_c if nc > R(1.0) else R(1.0)
                    store_indices(scratch, p, h, k, l, h0, k0, l0)
                    scratch[L.S_FA, p] = f_a
                    scratch[L.S_FB, p] = f_b
                    scratch[L.S_FC, p] = f_c
                    scratch[L.S_FLATT, p] = f_a * f_b * f_c
                    if slopes:
                        scratch[L.S_SA, p] = s_a if na > R(1.0) else R(0.0)
                        scratch[L.S_SB, p] = s_b if nb > R(1.0) else R(0.0)
                        scratch[L.S_SC, p] = s_c if nc > R(1.0) else R(0.0)
            else:
                for p in range(width):
                    h, k, l, h0, k0, l0 = miller_indices(axes, state, p)
                    store_indices(scratch, p, h, k, l, h0, k0, l0)
                    scratch[L.S_FLATT, p] = shape_transform(shape, h, k, l, h0, k0, l0, na, nb, nc, fudge, recip)

        return lattice_strip

    return SimpleNamespace(sin_halfpi=sin_halfpi, sincg_peeled=sincg_peeled, sincg_with_slope=sincg_with_slope,
                           sinc3=sinc3, shape_transform=shape_transform,
                           shape_transform_partials=shape_transform_partials,
                           lattice_strip=make_lattice_strip(False), lattice_strip_slopes=make_lattice_strip(True))

"""The physics of one pixel, written once and compiled for every target.

`make_physics(jit, real)` returns the scalar functions compiled with `jit` (Numba's `njit` for the
CPU kernel, the trace and host-side geometry; `cuda.jit(device=True)` for the GPU kernel) in the
precision `real` (np.float64 reproduces the reference; np.float32 is the fast mode).  Every
literal goes through `R(...)` so that float32 arithmetic is not silently promoted to float64;
rounding to integers goes through float64 (exact for a float32) because Numba calls the C library
for a float32 floor/ceil, which costs more than the conversion.

The arithmetic follows the reference's order of operations, except for the lattice transform,
which is computed from the fractional Miller index (more accurate than the reference's, and
several times faster): in float64 the image agrees with the reference to the last bit in almost
every pixel, which keeps its Poisson noise draws identical.

`render_strip` runs the reference's per-pixel loop for a strip of neighbouring pixels at once:
the CPU kernel hands it up to `layout.STRIP` pixels, so the innermost loops run across pixels and
vectorise; the GPU kernel and the trace hand it one pixel.  Each pixel still adds up its terms in
the reference's order, so the strip width never changes an image.

`Features` fixes some of the run-time choices at compile time: a GPU thread's registers are sized
for the heaviest path its kernel holds, so the CUDA backend compiles one kernel per feature key
(without it, the tricubic interpolation alone costs ~80 registers where no pixel interpolates).
The CPU kernel and the trace take no key: everything stays a run-time value there.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from . import layout as L


class Features(NamedTuple):
    """The choices a compiled `render_strip` takes as constants (see `features_of`)."""

    interpolate: bool  # tricubic interpolation of structure factors may be used
    curved: bool  # curved detector
    simple: bool  # one source, one detector layer, no oversampling: every loop but phi x mosaic runs once
    shape: int  # crystal shape (layout.SHAPES)
    oversample_thick: bool  # per-sub-step capture fraction, polarization and solid angle
    oversample_polar: bool
    oversample_omega: bool


def features_of(ints) -> Features:
    """The feature key of a render described by the integer parameters `ints`."""
    return Features(
        interpolate=bool(ints[L.I_INTERPOLATE] != 0), curved=bool(ints[L.I_CURVED] != 0),
        simple=bool(ints[L.I_SOURCES] == 1 and ints[L.I_THICKSTEPS] == 1 and ints[L.I_OVERSAMPLE] == 1),
        shape=int(ints[L.I_SHAPE]), oversample_thick=bool(ints[L.I_OVERSAMPLE_THICK] != 0),
        oversample_polar=bool(ints[L.I_OVERSAMPLE_POLAR] != 0),
        oversample_omega=bool(ints[L.I_OVERSAMPLE_OMEGA] != 0))


def make_physics(jit, real, inline_jit=None, floor=np.floor, ceil=np.ceil, features=None):
    """`inline_jit` compiles the small hot functions (default: `jit`); on the CPU it should inline
    them into their callers, which lets LLVM keep the lattice sums in registers and vectorise.

    `floor` and `ceil` round a real to an integral real of the same type: NumPy's on the CPU (they
    vectorise), math's for CUDA (NumPy's ufuncs are not available there; math's return a real).

    `features` (a `Features`) makes `render_strip` compile for those features only: the values it
    fixes become constants and the paths they rule out are not compiled.  None: all at run time."""
    R = real
    # constants of the compiled code; with no key they leave every run-time choice in place
    FIXED = features is not None
    K_INTERPOLATE = bool(features.interpolate) if FIXED else True
    K_CURVED = bool(features.curved) if FIXED else False
    K_SIMPLE = bool(features.simple) if FIXED else False
    K_SHAPE = int(features.shape) if FIXED else 0
    K_OS_THICK = bool(features.oversample_thick) if FIXED else False
    K_OS_POLAR = bool(features.oversample_polar) if FIXED else False
    K_OS_OMEGA = bool(features.oversample_omega) if FIXED else False
    small = inline_jit if inline_jit is not None else jit
    PI = R(math.pi)
    single = R(0.5).dtype.itemsize == 4

    @jit
    def dot3(ax, ay, az, bx, by, bz):
        return ax * bx + ay * by + az * bz

    @jit
    def cross3(ax, ay, az, bx, by, bz):
        return ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx

    @jit
    def unitize3(x, y, z):
        """Magnitude and unit vector; a zero vector stays zero (as the reference)."""
        mag = math.sqrt(x * x + y * y + z * z)
        if mag != R(0.0):
            return mag, x / mag, y / mag, z / mag
        return mag, R(0.0), R(0.0), R(0.0)

    @jit
    def rotate_axis3(vx, vy, vz, ax, ay, az, phi):
        """Rotate v by phi about the unit vector a (right-handed)."""
        sinphi = math.sin(phi)
        cosphi = math.cos(phi)
        d = (ax * vx + ay * vy + az * vz) * (R(1.0) - cosphi)
        return (ax * d + vx * cosphi + (-az * vy + ay * vz) * sinphi,
                ay * d + vy * cosphi + (az * vx - ax * vz) * sinphi,
                az * d + vz * cosphi + (-ay * vx + ax * vy) * sinphi)

    @jit
    def rotate_xyz3(vx, vy, vz, phix, phiy, phiz):
        """Rotate about x, then y, then z; a zero angle is skipped, as in the reference."""
        if phix != 0:
            vy, vz = vy * math.cos(phix) + vz * -math.sin(phix), vy * math.sin(phix) + vz * math.cos(phix)
        if phiy != 0:
            vx, vz = (vx * math.cos(phiy) + vy * R(0.0) + vz * math.sin(phiy),
                      vx * -math.sin(phiy) + vy * R(0.0) + vz * math.cos(phiy))
        if phiz != 0:
            vx, vy = vx * math.cos(phiz) + vy * -math.sin(phiz), vx * math.sin(phiz) + vy * math.cos(phiz)
        return vx, vy, vz

    # Taylor coefficients of sin on [-pi/2, pi/2]: truncation below an ulp of the precision
    terms = 7 if single else 11
    C = [R((-1.0) ** n / math.factorial(2 * n + 1)) for n in range(terms)] + [R(0.0)] * (11 - terms)
    C1, C2, C3, C4, C5, C6, C7, C8, C9, C10 = C[1:11]
    # pi in two parts: q * PI_A is exact for the small q of a lattice transform
    PI_A = R(3.140625) if single else R(3.1415926534682512)
    PI_B = R(math.pi - 3.140625) if single else R(math.pi - 3.1415926534682512)
    INV_PI = R(1.0 / math.pi)

    @small
    def sin_halfpi(x):
        """sin(x) for |x| <= pi/2, as a polynomial: no library call, no branch.

        Estrin's scheme: the terms are combined pairwise so the chain of dependent multiplies
        is a third as long as Horner's, which is what limits this loop on the CPU.
        """
        z = x * x
        z2 = z * z
        z4 = z2 * z2
        low = (C1 + C2 * z) + (C3 + C4 * z) * z2
        mid = (C5 + C6 * z) + (C7 + C8 * z) * z2
        high = C9 + C10 * z
        p = (low + mid * z4) + high * (z4 * z4)
        return x + x * z * p

    @small
    def odd(x):
        """1.0 when the integer-valued x is odd, else 0.0 (in floating point, so loops vectorise)."""
        return x - R(2.0) * floor(x * R(0.5))

    @small
    def sincg_peeled(h, h0, n):
        """sin(N pi h)/sin(pi h) for integer N from the fraction f = h - h0 alone (h0 = round(h)).

        sin(pi (h0 + f)) = (-1)^h0 sin(pi f): the fraction keeps every digit that matters (the
        float32 mode depends on it) and |pi f| <= pi/2 needs no argument reduction; sin(N pi f)
        is reduced by multiples of pi exactly, then both sines are one polynomial each.
        """
        frac = h - h0
        flips = (n - R(1.0)) * h0
        if frac == R(0.0):
            return -n if odd(flips) != R(0.0) else n
        x = PI * frac
        t = x * n
        q = floor(t * INV_PI + R(0.5))
        r = (t - q * PI_A) - q * PI_B
        ratio = sin_halfpi(r) / sin_halfpi(x)
        return -ratio if odd(flips + q) != R(0.0) else ratio

    @jit
    def sinc3(x):
        """Transform of a sphere."""
        if x == R(0.0):
            return R(1.0)
        return R(3.0) * (math.sin(x) / x - math.cos(x)) / (x * x)

    @jit
    def polarization_basis(ix, iy, iz, axx, axy, axz):
        """Unit vectors B = axis x incident and E = incident x B: the frame in which the Kahn
        factor measures a diffracted ray's azimuth.  They depend on the source alone."""
        _, axx, axy, axz = unitize3(axx, axy, axz)
        bx, by, bz = cross3(axx, axy, axz, ix, iy, iz)
        _, bx, by, bz = unitize3(bx, by, bz)
        ex, ey, ez = cross3(ix, iy, iz, bx, by, bz)
        _, ex, ey, ez = unitize3(ex, ey, ez)
        return bx, by, bz, ex, ey, ez

    @jit
    def polarization_factor(kahn, ix, iy, iz, dx, dy, dz, bx, by, bz, ex, ey, ez):
        """Kahn polarization correction for unit vectors incident i and diffracted d, with the
        source's polarization basis (B, E) from `polarization_basis`."""
        cos2theta = dot3(ix, iy, iz, dx, dy, dz)
        cos2theta_sqr = cos2theta * cos2theta
        sin2theta_sqr = R(1.0) - cos2theta_sqr
        cos2psi = R(1.0)
        if kahn != R(0.0):
            # psi = -atan2(B, E) is the azimuth of the diffracted ray around the beam; cos(2 psi)
            # follows from its projections without the two transcendental calls
            b_out = dot3(dx, dy, dz, bx, by, bz)
            e_out = dot3(dx, dy, dz, ex, ey, ez)
            norm = e_out * e_out + b_out * b_out
            if norm > R(0.0):
                cos2psi = (e_out * e_out - b_out * b_out) / norm
        return R(0.5) * (R(1.0) + cos2theta_sqr - kahn * cos2psi * sin2theta_sqr)

    @small
    def solid_angle(pixel_size, close_distance, airpath, point_pixel):
        """Solid angle of a pixel (or sub-pixel) at distance `airpath`, with the obliquity of a
        flat detector; a point pixel is 1/R^2."""
        if point_pixel:
            return R(1.0) / airpath / airpath
        return pixel_size * pixel_size / airpath / airpath * close_distance / airpath

    @jit
    def polint(x0, x1, x2, x3, y0, y1, y2, y3, x):
        """Cubic through four points (Lagrange form, the reference's term order)."""
        t0 = (x - x1) * (x - x2) * (x - x3) * y0 / ((x0 - x1) * (x0 - x2) * (x0 - x3))
        t1 = (x - x0) * (x - x2) * (x - x3) * y1 / ((x1 - x0) * (x1 - x2) * (x1 - x3))
        t2 = (x - x0) * (x - x1) * (x - x3) * y2 / ((x2 - x0) * (x2 - x1) * (x2 - x3))
        t3 = (x - x0) * (x - x1) * (x - x2) * y3 / ((x3 - x0) * (x3 - x1) * (x3 - x2))
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
        h_range = ip[L.I_H_MAX] - ip[L.I_H_MIN] + 1
        k_range = ip[L.I_K_MAX] - ip[L.I_K_MIN] + 1
        l_range = ip[L.I_L_MAX] - ip[L.I_L_MIN] + 1
        return ((h - ip[L.I_H_MIN] + 3) > h_range or (h - 2) < ip[L.I_H_MIN]
                or (k - ip[L.I_K_MIN] + 3) > k_range or (k - 2) < ip[L.I_K_MIN]
                or (l - ip[L.I_L_MIN] + 3) > l_range or (l - 2) < ip[L.I_L_MIN])

    @jit
    def nearest_F(Fhkl, hi, ki, li, h_span, k_span, l_span, default_F):
        """F of the reflection hi, ki, li steps from the table's first corner; default_F outside
        the spans (a negative span: no table)."""
        if 0 <= hi <= h_span and 0 <= ki <= k_span and 0 <= li <= l_span:
            return Fhkl[hi, ki, li]
        return default_F

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
    def trace_row(trace, code, v0, v1, v2, v3, v4):
        n = int(trace[0, 0]) + 1
        if n < trace.shape[0] - L.TRACE_LAST:
            trace[n, 0] = code
            trace[n, 1] = v0
            trace[n, 2] = v1
            trace[n, 3] = v2
            trace[n, 4] = v3
            trace[n, 5] = v4
            trace[0, 0] = n

    @jit
    def trace_last(trace, slot, v0, v1, v2, v3, v4):
        """Overwrite one of the buffer's last rows (layout.TL_*): what the pixel leaves in it."""
        row = trace.shape[0] - slot
        trace[row, 0] = slot
        trace[row, 1] = v0
        trace[row, 2] = v1
        trace[row, 3] = v2
        trace[row, 4] = v3
        trace[row, 5] = v4

    @jit
    def pixel_active(spixel, fpixel, ip, mask):
        """Inside the (inclusive) ROI and not masked out."""
        if (fpixel < ip[L.I_ROI_XMIN] or fpixel > ip[L.I_ROI_XMAX]
                or spixel < ip[L.I_ROI_YMIN] or spixel > ip[L.I_ROI_YMAX]):
            return False
        return ip[L.I_HAS_MASK] == 0 or mask[spixel, fpixel] != 0

    @small
    def miller_indices(axes, state, p):
        """Fractional and nearest h, k, l of pixel p's scattering vector, for the rotated
        real-space axes `axes` (a, b, c: nine reals)."""
        qx = state[L.P_QX, p]
        qy = state[L.P_QY, p]
        qz = state[L.P_QZ, p]
        h = axes[0] * qx + axes[1] * qy + axes[2] * qz
        k = axes[3] * qx + axes[4] * qy + axes[5] * qz
        l = axes[6] * qx + axes[7] * qy + axes[8] * qz
        return h, k, l, ceil(h - R(0.5)), ceil(k - R(0.5)), ceil(l - R(0.5))

    @small
    def store_indices(scratch, p, h, k, l, h0, k0, l0):
        scratch[L.S_H, p] = h
        scratch[L.S_K, p] = k
        scratch[L.S_L, p] = l
        scratch[L.S_H0, p] = h0
        scratch[L.S_K0, p] = k0
        scratch[L.S_L0, p] = l0

    @small
    def lattice_strip(lattice, variant, e, state, width, shape, na, nb, nc, fudge, recip, scratch):
        """Miller indices and lattice transform of (phi step, mosaic domain) pair `e` for each pixel
        of a strip, into `scratch`.  No pixel depends on another and the parallelepiped's loop has
        no branch, so on the CPU it runs several pixels per instruction."""
        axes = (lattice[variant, e, 0], lattice[variant, e, 1], lattice[variant, e, 2],
                lattice[variant, e, 3], lattice[variant, e, 4], lattice[variant, e, 5],
                lattice[variant, e, 6], lattice[variant, e, 7], lattice[variant, e, 8])
        if shape == 0:
            for p in range(width):
                h, k, l, h0, k0, l0 = miller_indices(axes, state, p)
                f_a = sincg_peeled(h, h0, na) if na > R(1.0) else R(1.0)
                f_b = sincg_peeled(k, k0, nb) if nb > R(1.0) else R(1.0)
                f_c = sincg_peeled(l, l0, nc) if nc > R(1.0) else R(1.0)
                store_indices(scratch, p, h, k, l, h0, k0, l0)
                scratch[L.S_FA, p] = f_a
                scratch[L.S_FB, p] = f_b
                scratch[L.S_FC, p] = f_c
                scratch[L.S_FLATT, p] = f_a * f_b * f_c
        else:
            for p in range(width):
                h, k, l, h0, k0, l0 = miller_indices(axes, state, p)
                store_indices(scratch, p, h, k, l, h0, k0, l0)
                scratch[L.S_FLATT, p] = shape_transform(shape, h, k, l, h0, k0, l0, na, nb, nc, fudge, recip)

    @jit
    def trace_evaluation(trace, lattice, variant, e, phi_tic, scratch, square):
        """The reference's trace lines for one phi step of mosaic domain 0 (source 0)."""
        if phi_tic == 0:
            trace_row(trace, L.TR_A, lattice[variant, e, 0], lattice[variant, e, 1], lattice[variant, e, 2],
                      0.0, 0.0)
            trace_row(trace, L.TR_B, lattice[variant, e, 3], lattice[variant, e, 4], lattice[variant, e, 5],
                      0.0, 0.0)
            trace_row(trace, L.TR_C, lattice[variant, e, 6], lattice[variant, e, 7], lattice[variant, e, 8],
                      0.0, 0.0)
            trace_row(trace, L.TR_HKL, scratch[L.S_H, 0], scratch[L.S_K, 0], scratch[L.S_L, 0], 0.0, 0.0)
            trace_row(trace, L.TR_HKL0, scratch[L.S_H0, 0], scratch[L.S_K0, 0], scratch[L.S_L0, 0], 0.0, 0.0)
            if square:
                trace_row(trace, L.TR_FLATT, scratch[L.S_FA, 0], scratch[L.S_FB, 0], scratch[L.S_FC, 0],
                          scratch[L.S_FLATT, 0], 0.0)
        if square:
            trace_row(trace, L.TR_PHI, phi_tic, 0.0, scratch[L.S_K, 0], scratch[L.S_FB, 0], scratch[L.S_FLATT, 0])

    @small
    def add_terms(state, tally, scratch, width, lattice, variant, e, phi_tic, Fhkl, ip, h_min, k_min, l_min,
                  h_span, k_span, l_span, default_F, water, shape, os_thick, os_polar, os_omega, trace, general,
                  tracing):
        """Add pair `e`'s term to each kept pixel's sum.  `general` is a constant at each call: the
        plain case (no interpolation, no trace, no per-sub-step factors) compiles to a lean loop."""
        last_h0 = R(math.nan)  # never equal: the first lookup is always made
        last_k0 = R(0.0)
        last_l0 = R(0.0)
        last_F = default_F
        for p in range(width):
            if state[L.P_KEEP, p] == R(0.0):
                continue
            if general and phi_tic >= 0:
                trace_evaluation(trace, lattice, variant, e, phi_tic, scratch, shape == 0)
            F_latt = scratch[L.S_FLATT, p]
            if general and tracing:
                trace_last(trace, L.TL_HKL, scratch[L.S_H, p], scratch[L.S_K, p], scratch[L.S_L, p], F_latt, 0.0)
                trace_last(trace, L.TL_HKL0, scratch[L.S_H0, p], scratch[L.S_K0, p], scratch[L.S_L0, p], 0.0, 0.0)
                for axis in range(3):
                    trace_last(trace, L.TL_A + axis, lattice[variant, e, 3 * axis], lattice[variant, e, 3 * axis + 1],
                               lattice[variant, e, 3 * axis + 2], 0.0, 0.0)
            if F_latt == R(0.0) and water == R(0.0):
                continue
            interpolate = K_INTERPOLATE and general and state[L.P_INTERPOLATE, p] != R(0.0)
            if interpolate:
                h = scratch[L.S_H, p]
                k = scratch[L.S_K, p]
                l = scratch[L.S_L, p]
                if interpolation_leaves_table(h, k, l, ip):
                    # switched off for good; this very evaluation already falls back to the
                    # nearest structure factor, as in the reference
                    if tracing and trace[trace.shape[0] - L.TL_LEFT, 0] == 0.0:
                        trace_last(trace, L.TL_LEFT, h, k, l, scratch[L.S_H0, p], scratch[L.S_K0, p])
                        trace_last(trace, L.TL_LEFT0, scratch[L.S_L0, p], 0.0, 0.0, 0.0, 0.0)
                    interpolate = False
                    state[L.P_INTERPOLATE, p] = R(0.0)
                    tally[L.T_LEFT_TABLE, p] = 1.0
            if interpolate:
                F_cell = interpolate_F(Fhkl, scratch[L.S_H, p], scratch[L.S_K, p], scratch[L.S_L, p],
                                       int(math.floor(np.float64(scratch[L.S_H, p]))),
                                       int(math.floor(np.float64(scratch[L.S_K, p]))),
                                       int(math.floor(np.float64(scratch[L.S_L, p]))), h_min, k_min, l_min)
            elif (scratch[L.S_H0, p] == last_h0 and scratch[L.S_K0, p] == last_k0
                  and scratch[L.S_L0, p] == last_l0):
                F_cell = last_F  # neighbouring pixels mostly share their nearest reflection
            else:
                last_h0 = scratch[L.S_H0, p]
                last_k0 = scratch[L.S_K0, p]
                last_l0 = scratch[L.S_L0, p]
                F_cell = nearest_F(Fhkl, int(last_h0) - h_min, int(last_k0) - k_min, int(last_l0) - l_min,
                                   h_span, k_span, l_span, default_F)
                last_F = F_cell
            if general and phi_tic == 0:
                trace_row(trace, L.TR_FCELL, F_cell, 0.0, 0.0, 0.0, 0.0)
            if general and tracing:
                trace_last(trace, L.TL_FCELL, F_cell, 0.0, 0.0, 0.0, 0.0)
            I = state[L.P_I, p] + F_cell * F_cell * F_latt * F_latt
            if general:
                if os_thick:
                    I *= state[L.P_CAPTURE, p]
                if os_polar:
                    I *= state[L.P_POLAR, p]
                if os_omega:
                    I *= state[L.P_OMEGA, p]
            state[L.P_I, p] = I

    @jit
    def render_strip(spixel, fpixel0, width, g, ip, sources, lattice, recip, Fhkl, state, tally, scratch,
                     trace, tracing):
        """The reference's per-pixel loop (layer, sub-pixel, source, phi step, mosaic domain) for the
        `width` pixels of row `spixel` from column `fpixel0`, side by side: each loop level runs
        over the strip's pixels, so every pixel sums its terms in the reference's order.

        The values land in state[P_VALUE], the tallies in `tally`.  A strip holding the first
        rendered pixel (ip[I_FIRST_PIXEL]) must hold it alone: that pixel's first phi pass
        starts from the unrotated lattice.  Tracing records the story of the strip's one pixel.
        """
        fpixels = ip[L.I_FPIXELS]
        oversample = 1 if K_SIMPLE else ip[L.I_OVERSAMPLE]
        thicksteps = 1 if K_SIMPLE else ip[L.I_THICKSTEPS]
        nsources = 1 if K_SIMPLE else ip[L.I_SOURCES]
        evaluations = ip[L.I_PHISTEPS] * ip[L.I_MOSAIC]
        mosaic = ip[L.I_MOSAIC]
        shape = K_SHAPE if FIXED else ip[L.I_SHAPE]
        os_thick = K_OS_THICK if FIXED else ip[L.I_OVERSAMPLE_THICK] != 0
        os_polar = K_OS_POLAR if FIXED else ip[L.I_OVERSAMPLE_POLAR] != 0
        os_omega = K_OS_OMEGA if FIXED else ip[L.I_OVERSAMPLE_OMEGA] != 0
        curved = K_CURVED if FIXED else ip[L.I_CURVED] != 0
        point_pixel = ip[L.I_POINT_PIXEL] != 0
        scan0 = spixel * fpixels + fpixel0
        variant = 0 if scan0 == ip[L.I_FIRST_PIXEL] else 1

        pixel_size = g[L.G_PIXEL]
        subpixel = g[L.G_SUBPIXEL]
        distance = g[L.G_DISTANCE]
        close_distance = g[L.G_CLOSE]
        thickstep = g[L.G_THICKSTEP]
        mu = g[L.G_MU]
        na = g[L.G_NA]
        nb = g[L.G_NB]
        nc = g[L.G_NC]
        fudge = g[L.G_FUDGE]
        default_F = g[L.G_DEFAULT_F]
        dmin = g[L.G_DMIN]
        water = g[L.G_WATER]
        kahn = g[L.G_KAHN]
        fx, fy, fz = g[L.G_FDET], g[L.G_FDET + 1], g[L.G_FDET + 2]
        sx, sy, sz = g[L.G_SDET], g[L.G_SDET + 1], g[L.G_SDET + 2]
        ox, oy, oz = g[L.G_ODET], g[L.G_ODET + 1], g[L.G_ODET + 2]
        px, py, pz = g[L.G_PIX0], g[L.G_PIX0 + 1], g[L.G_PIX0 + 2]
        h_min = ip[L.I_H_MIN]
        k_min = ip[L.I_K_MIN]
        l_min = ip[L.I_L_MIN]
        table = ip[L.I_HKLS] != 0
        plain = not (tracing or os_thick or os_polar or os_omega or (K_INTERPOLATE and ip[L.I_INTERPOLATE] != 0))
        h_span = ip[L.I_H_MAX] - h_min if table else -1
        k_span = ip[L.I_K_MAX] - k_min if table else -1
        l_span = ip[L.I_L_MAX] - l_min if table else -1

        for p in range(width):
            state[L.P_I, p] = g[L.G_I_BG]
            state[L.P_POLAR, p] = R(1.0) if ip[L.I_NOPOLAR] != 0 else R(0.0)
            state[L.P_OMEGA, p] = R(0.0)
            state[L.P_CAPTURE, p] = R(0.0)
            interpolate = K_INTERPOLATE and ip[L.I_INTERPOLATE] != 0 and scan0 + p <= ip[L.I_INTERP_UNTIL]
            state[L.P_INTERPOLATE, p] = R(1.0) if interpolate else R(0.0)
            tally[L.T_OMEGA_SUM, p] = 0.0
            tally[L.T_LEFT_TABLE, p] = 0.0
            tally[L.T_RAN_PHI, p] = 0.0
        ix = R(0.0)
        iy = R(0.0)
        iz = R(0.0)

        for thick_tic in range(thicksteps):
            odet = R(thick_tic) * thickstep
            for p in range(width):
                state[L.P_CAPTURE, p] = R(1.0) if g[L.G_THICK] == R(0.0) else R(0.0)
            for sub_s in range(oversample):
                for sub_f in range(oversample):
                    sdet = subpixel * R(spixel * oversample + sub_s) + subpixel / R(2.0)
                    for p in range(width):
                        fdet = subpixel * R((fpixel0 + p) * oversample + sub_f) + subpixel / R(2.0)
                        state[L.P_X, p] = fdet * fx + sdet * sx + odet * ox + px
                        state[L.P_Y, p] = fdet * fy + sdet * sy + odet * oy + py
                        state[L.P_Z, p] = fdet * fz + sdet * sz + odet * oz + pz
                    if curved:
                        bx = distance * g[L.G_BEAM]
                        by = distance * g[L.G_BEAM + 1]
                        bz = distance * g[L.G_BEAM + 2]
                        for p in range(width):
                            nx, ny, nz = rotate_axis3(bx, by, bz, sx, sy, sz, state[L.P_Y, p] / distance)
                            state[L.P_X, p], state[L.P_Y, p], state[L.P_Z, p] = rotate_axis3(
                                nx, ny, nz, fx, fy, fz, state[L.P_Z, p] / distance)
                    # the loops below hold no branch that stops the CPU running pixels side by
                    # side: what the reference computes once per pixel is kept by a select
                    for p in range(width):
                        airpath, dx, dy, dz = unitize3(state[L.P_X, p], state[L.P_Y, p], state[L.P_Z, p])
                        state[L.P_R, p] = airpath
                        state[L.P_DX, p] = dx
                        state[L.P_DY, p] = dy
                        state[L.P_DZ, p] = dz
                        omega = state[L.P_OMEGA, p]
                        fresh = solid_angle(pixel_size, close_distance, airpath, point_pixel)
                        omega = fresh if omega == R(0.0) or os_omega else omega
                        state[L.P_OMEGA, p] = omega
                        tally[L.T_OMEGA_SUM, p] += omega
                    if tracing:
                        trace_row(trace, L.TR_POS, state[L.P_X, 0], state[L.P_Y, 0], state[L.P_Z, 0],
                                  state[L.P_R, 0], state[L.P_OMEGA, 0])
                        trace_row(trace, L.TR_DIFFRACTED, state[L.P_DX, 0], state[L.P_DY, 0], state[L.P_DZ, 0],
                                  0.0, 0.0)

                    for p in range(width):
                        if state[L.P_CAPTURE, p] == R(0.0) or os_thick:
                            parallax = dot3(state[L.P_DX, p], state[L.P_DY, p], state[L.P_DZ, p], ox, oy, oz)
                            state[L.P_CAPTURE, p] = (
                                math.exp(R(-thick_tic) * thickstep * mu / parallax)
                                - math.exp(R(-(thick_tic + 1)) * thickstep * mu / parallax))

                    for source in range(nsources):
                        ix = -sources[source, 0]
                        iy = -sources[source, 1]
                        iz = -sources[source, 2]
                        lam = sources[source, 3]
                        bx, by, bz = sources[source, 4], sources[source, 5], sources[source, 6]
                        ex, ey, ez = sources[source, 7], sources[source, 8], sources[source, 9]
                        first = tracing and source == 0
                        kept = 0
                        for p in range(width):
                            dx = state[L.P_DX, p]
                            dy = state[L.P_DY, p]
                            dz = state[L.P_DZ, p]
                            qx = (dx - ix) / lam
                            qy = (dy - iy) / lam
                            qz = (dz - iz) / lam
                            state[L.P_QX, p] = qx
                            state[L.P_QY, p] = qy
                            state[L.P_QZ, p] = qz
                            stol = R(0.5) * math.sqrt(qx * qx + qy * qy + qz * qz)
                            keep = not (dmin > R(0.0) and stol > R(0.0) and dmin > R(0.5) / stol)
                            state[L.P_KEEP, p] = R(1.0) if keep else R(0.0)
                            kept += 1 if keep else 0
                            polar = state[L.P_POLAR, p]
                            fresh = polarization_factor(kahn, ix, iy, iz, dx, dy, dz, bx, by, bz, ex, ey, ez)
                            state[L.P_POLAR, p] = fresh if keep and (polar == R(0.0) or os_polar) else polar
                        if tracing:
                            trace_last(trace, L.TL_Q, state[L.P_QX, 0], state[L.P_QY, 0], state[L.P_QZ, 0], 0.0, 0.0)
                        if first:
                            trace_row(trace, L.TR_INCIDENT, ix, iy, iz, lam, 0.0)
                            trace_row(trace, L.TR_SCATTERING, state[L.P_QX, 0], state[L.P_QY, 0], state[L.P_QZ, 0],
                                      0.0, 0.0)
                        if kept == 0:
                            continue

                        for e in range(evaluations):
                            lattice_strip(lattice, variant, e, state, width, shape, na, nb, nc, fudge, recip,
                                          scratch)
                            phi_tic = e // mosaic if first and e % mosaic == 0 else -1
                            if plain:
                                add_terms(state, tally, scratch, width, lattice, variant, e, phi_tic, Fhkl, ip,
                                          h_min, k_min, l_min, h_span, k_span, l_span, default_F, water, shape,
                                          os_thick, os_polar, os_omega, trace, False, False)
                            else:
                                add_terms(state, tally, scratch, width, lattice, variant, e, phi_tic, Fhkl, ip,
                                          h_min, k_min, l_min, h_span, k_span, l_span, default_F, water, shape,
                                          os_thick, os_polar, os_omega, trace, True, tracing)
                        for p in range(width):
                            if state[L.P_KEEP, p] != R(0.0):
                                tally[L.T_RAN_PHI, p] = 1.0
                        variant = 1

        for p in range(width):
            value = g[L.G_RE2_FLUENCE] * state[L.P_I, p] / g[L.G_STEPS]
            if not os_thick:
                value *= state[L.P_CAPTURE, p]
            if not os_polar:
                value *= state[L.P_POLAR, p]
            if not os_omega:
                value *= state[L.P_OMEGA, p]
            state[L.P_VALUE, p] = value
        if tracing:
            trace_row(trace, L.TR_FINAL, state[L.P_I, 0], state[L.P_CAPTURE, 0], state[L.P_POLAR, 0],
                      state[L.P_OMEGA, 0], dot3(ix, iy, iz, state[L.P_DX, 0], state[L.P_DY, 0], state[L.P_DZ, 0]))

    return SimpleNamespace(
        dot3=dot3, cross3=cross3, unitize3=unitize3, rotate_axis3=rotate_axis3, rotate_xyz3=rotate_xyz3,
        sin_halfpi=sin_halfpi, sincg_peeled=sincg_peeled, sinc3=sinc3, polarization_basis=polarization_basis, polarization_factor=polarization_factor,
        polint=polint, interpolate_F=interpolate_F, nearest_F=nearest_F, shape_transform=shape_transform,
        lattice_strip=lattice_strip, render_strip=render_strip, pixel_active=pixel_active, real=real,
        solid_angle=solid_angle,
    )

"""Scattering from an amorphous sample (water, air, ice...), written once for every target.

`make_amorphous(jit, phys)` compiles, for a target, the scalar functions of nonBragg's per-pixel
loop: the cubic interpolation of the sample's F(sin(theta)/lambda) table and the sum over
sub-pixels and sources.  `phys` is the target's `physics.make_physics(...)` namespace: geometry,
curved detector, solid angle and polarization come from there, so the amorphous background and
the Bragg spots share them.  The CPU and CUDA kernels both call these.

The table (`table` below) is the reference's: the file's rows with two sentinel points added at
each end (at +-1e98 and +-1e99 in 1/m, carrying the first and last F), so a four-point window
always exists.  `locate` finds its interval: the largest i with table[0, i] <= stol, which is what
the reference's walk returns from any starting point for a strictly increasing table.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from . import amorphous_layout as A


def make_amorphous(jit, phys):
    R = phys.real
    polint = phys.polint
    rotate_axis3 = phys.rotate_axis3
    unitize3 = phys.unitize3
    solid_angle = phys.solid_angle
    polarization_factor = phys.polarization_factor

    @jit
    def walk(table, stol, start):
        """The interval of `stol`, walking from `start` (cheap when neighbouring pixels ask)."""
        n = table.shape[1]
        i = start
        while i < n - 3 and table[0, i + 1] <= stol:
            i += 1
        while i > 1 and table[0, i] > stol:
            i -= 1
        return i

    @jit
    def locate(table, stol):
        """The interval of `stol` by bisection (no state to carry between threads)."""
        lo = 1
        hi = table.shape[1] - 3
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if table[0, mid] <= stol:
                lo = mid
            else:
                hi = mid - 1
        return lo

    @jit
    def structure_factor(table, stol, i, clamp):
        """F at `stol` from the cubic through points i-1 .. i+2; `clamp` keeps it between the
        two table values around `stol` (the reference's cubic overshoots at a sharp edge)."""
        F = polint(table[0, i - 1], table[0, i], table[0, i + 1], table[0, i + 2],
                   table[1, i - 1], table[1, i], table[1, i + 1], table[1, i + 2], stol)
        if clamp:
            low = min(table[1, i], table[1, i + 1])
            high = max(table[1, i], table[1, i + 1])
            F = min(max(F, low), high)
        return F

    @jit
    def amorphous_pixel(spixel, fpixel, g, ip, sources, table, nearest, walking):
        """The reference's sum for one pixel over sub-pixels and sources.

        Returns the unscaled sum of sign(F) F^2 * polarization * solid angle * weight, the last F
        (what -Fmap shows), the sum of the sub-pixels' solid angles, the range of
        sin(theta)/lambda the pixel saw, and what the reference's loop leaves behind for its
        -img fit: the sin(theta)/lambda and polarization of the last source at the last
        sub-pixel and that sub-pixel's solid angle.  With `walking`, nearest[source] holds each
        source's last interval, the start of its next search (and is updated); without, each
        search bisects.
        """
        oversample = ip[A.I_OVERSAMPLE]
        nsources = ip[A.I_SOURCES]
        curved = ip[A.I_CURVED] != 0
        point_pixel = ip[A.I_POINT_PIXEL] != 0
        nopolar = ip[A.I_NOPOLAR] != 0
        clamp = ip[A.I_FIX_SPLINE] != 0
        subpixel = g[A.G_SUBPIXEL]
        pixel_size = g[A.G_PIXEL]
        distance = g[A.G_DISTANCE]
        close_distance = g[A.G_CLOSE]
        kahn = g[A.G_KAHN]
        fx, fy, fz = g[A.G_FDET], g[A.G_FDET + 1], g[A.G_FDET + 2]
        sx, sy, sz = g[A.G_SDET], g[A.G_SDET + 1], g[A.G_SDET + 2]
        px, py, pz = g[A.G_PIX0], g[A.G_PIX0 + 1], g[A.G_PIX0 + 2]
        bx, by, bz = distance * g[A.G_BEAM], distance * g[A.G_BEAM + 1], distance * g[A.G_BEAM + 2]
        total = R(0.0)
        omega_sum = 0.0
        stol_min = R(math.inf)
        stol_max = R(-math.inf)
        F = R(0.0)
        stol = R(0.0)
        polar = R(1.0)
        omega = R(0.0)
        for sub_s in range(oversample):
            sdet = subpixel * R(spixel * oversample + sub_s) + subpixel / R(2.0)
            for sub_f in range(oversample):
                fdet = subpixel * R(fpixel * oversample + sub_f) + subpixel / R(2.0)
                x = fdet * fx + sdet * sx + px
                y = fdet * fy + sdet * sy + py
                z = fdet * fz + sdet * sz + pz
                if curved:
                    nx, ny, nz = rotate_axis3(bx, by, bz, sx, sy, sz, y / distance)
                    x, y, z = rotate_axis3(nx, ny, nz, fx, fy, fz, z / distance)
                airpath, dx, dy, dz = unitize3(x, y, z)
                omega = solid_angle(pixel_size, close_distance, airpath, point_pixel)
                omega_sum += omega
                for source in range(nsources):
                    ix = -sources[source, A.S_DIR]
                    iy = -sources[source, A.S_DIR + 1]
                    iz = -sources[source, A.S_DIR + 2]
                    lam = sources[source, A.S_LAMBDA]
                    qx = (dx - ix) / lam
                    qy = (dy - iy) / lam
                    qz = (dz - iz) / lam
                    stol = R(0.5) * math.sqrt(qx * qx + qy * qy + qz * qz)
                    stol_min = min(stol_min, stol)
                    stol_max = max(stol_max, stol)
                    if walking:
                        i = walk(table, stol, nearest[source])
                        nearest[source] = i
                    else:
                        i = locate(table, stol)
                    F = structure_factor(table, stol, i, clamp)
                    sign = R(-1.0) if F < R(0.0) else R(1.0)
                    polar = R(1.0)
                    if not nopolar:
                        polar = polarization_factor(
                            kahn, ix, iy, iz, dx, dy, dz,
                            sources[source, A.S_B], sources[source, A.S_B + 1], sources[source, A.S_B + 2],
                            sources[source, A.S_E], sources[source, A.S_E + 1], sources[source, A.S_E + 2])
                    total += sign * F * F * polar * omega * sources[source, A.S_WEIGHT]
        return total, F, omega_sum, stol_min, stol_max, stol, polar, omega

    @jit
    def pixel_value(spixel, fpixel, g, ip, sources, table, nearest, walking):
        """The pixel's photons, scaled in the reference's order of operations (or its F under
        -Fmap), with its solid-angle sum, sin(theta)/lambda range and last sin(theta)/lambda,
        polarization and solid angle (`amorphous_pixel`)."""
        total, F, omega_sum, stol_min, stol_max, stol, polar, omega = amorphous_pixel(
            spixel, fpixel, g, ip, sources, table, nearest, walking)
        value = total * g[A.G_RE2] * g[A.G_FLUENCE] * g[A.G_MOLECULES] / g[A.G_STEPS]
        if ip[A.I_FMAP] != 0:
            value = F
        return value, omega_sum, stol_min, stol_max, stol, polar, omega

    @jit
    def roi_pixel(spixel, fpixel, ip):
        """Inside the (inclusive) region of interest."""
        return not (fpixel < ip[A.I_ROI_XMIN] or fpixel > ip[A.I_ROI_XMAX]
                    or spixel < ip[A.I_ROI_YMIN] or spixel > ip[A.I_ROI_YMAX])

    return SimpleNamespace(walk=walk, locate=locate, structure_factor=structure_factor,
                           amorphous_pixel=amorphous_pixel, pixel_value=pixel_value, roi_pixel=roi_pixel,
                           real=R)

"""One pixel's value and its tangents along K directions of the model, in one pass (forward mode).

`tangent_pixel` walks the reference's per-pixel loop (layer, sub-pixel, source, phi step, mosaic
domain) exactly as `pixel.render_strip` does, calling the same scalar functions for every value
(`unitize3`, `solid_angle`, `capture_fraction`, `polarization_factor`, `sincg_peeled`,
`shape_transform`, `interpolate_F`, `nearest_F`), in the same order, so its value is the render's
bit for bit.  Beside each call it applies that function's derivative rule (the `*_tangent`,
`*_gradient` or `*_partials` function in the same module) to carry K tangents along.

A direction of the model is given as tangents of the kernel's inputs: `dg` (the real parameters:
detector origin and axes, distances, Na Nb Nc, fluence), `dsources` (wavelengths), `dbase` (the
base axes a0, b0, c0, which every phi step and mosaic domain turns alike: a = M a0 with M from
`frames`), `drecip` (the unrotated reciprocal axes) and, for the few directions that turn each
lattice its own way (mosaic), `dlattice` (indices `generic`).  The host turns each named parameter
into one (nbnumba.derivatives).  What is per-pixel (position, path, solid angle, capture,
polarization, scattering vector) carries K tangents; what is per term (thousands per pixel) does
not: each term adds its partial derivatives to a few shares of the pixel (d I / d base axes,
reciprocal axes, Na Nb Nc, and the current scattering vector), which are turned into the K
tangents once per source (the scattering vector's) or once per pixel.  So K directions cost a few
multiply-adds per term, not K times as many.

Per-pixel tangent rows live in `work` (N_W rows x K columns), which the caller provides: a
CUDA device function can only have a local array of a size fixed when it is compiled, so the
kernels allocate it (K is a constant of each derivative kernel).

With `scatter`, each term also adds weight * (dI/dF) into `Fgrad` (float64, the HKL table's
shape) at its nearest reflection, or at the 64 it interpolates: the reduced gradient of the
structure factors.  The pixel's
final factors (solid angle, polarization, capture fraction) must then be known when the term is
added, which holds without the -oversample_* switches and with one sensor layer; the host refuses
the other cases.
"""

from __future__ import annotations

import math

import numpy as np

from . import layout as L

# rows of the per-pixel tangent work array
W_X, W_Y, W_Z, W_R, W_DX, W_DY, W_DZ, W_OMEGA, W_CAPTURE, W_POLAR, W_QX, W_QY, W_QZ, W_I, W_VALUE = range(15)
N_W = 15


def make_tangent_pixel(jit, R, features, ceil, accumulate, vectors, detector, lattice_transform, structure_factors):
    """`tangent_pixel` compiled with `jit`; `features` and `ceil` as `make_physics`'s.
    `accumulate(table, h, k, l, value)` adds into the structure-factor gradient: None for a plain
    addition (each CPU thread has its own table), an atomic one on the GPU."""
    if accumulate is None:
        @jit
        def accumulate(table, hi, ki, li, value):
            table[hi, ki, li] += value

    FIXED = features is not None
    K_INTERPOLATE = bool(features.interpolate) if FIXED else True
    K_CURVED = bool(features.curved) if FIXED else False
    K_SIMPLE = bool(features.simple) if FIXED else False
    K_SHAPE = int(features.shape) if FIXED else 0
    K_OS_THICK = bool(features.oversample_thick) if FIXED else False
    K_OS_POLAR = bool(features.oversample_polar) if FIXED else False
    K_OS_OMEGA = bool(features.oversample_omega) if FIXED else False
    dot3, unitize3, unitize3_tangent = vectors.dot3, vectors.unitize3, vectors.unitize3_tangent
    rotate_axis3, rotate_axis3_tangent = vectors.rotate_axis3, vectors.rotate_axis3_tangent
    polarization_factor = detector.polarization_factor
    polarization_factor_gradient = detector.polarization_factor_gradient
    solid_angle, solid_angle_tangent = detector.solid_angle, detector.solid_angle_tangent
    capture_fraction, capture_fraction_tangent = detector.capture_fraction, detector.capture_fraction_tangent
    sincg_peeled, sincg_tangent = lattice_transform.sincg_peeled, lattice_transform.sincg_tangent
    shape_transform = lattice_transform.shape_transform
    shape_transform_partials = lattice_transform.shape_transform_partials
    interpolate_F, interpolate_F_gradient = structure_factors.interpolate_F, structure_factors.interpolate_F_gradient
    nearest_F, lagrange_weights = structure_factors.nearest_F, structure_factors.lagrange_weights
    interpolation_leaves_table = structure_factors.interpolation_leaves_table

    @jit
    def tangent_pixel(spixel, fpixel, g, ip, sources, lattice, recip, Fhkl, frames, dg, dsources, dbase, dlattice,
                      generic, drecip, work, use_base, use_q, scatter, weight, Fgrad):
        """(value, left the table, ran a phi pass) of pixel (spixel, fpixel); its K tangents (K, the
        rows of dg) land in work[W_VALUE].  The first rendered pixel (ip[I_FIRST_PIXEL]) starts from the unrotated
        lattice, as in `render_strip`."""
        nt = dg.shape[0]
        # whether any direction moves a term's h, k, l or lattice transform (scale and the sub-step
        # factors alone do not: then the terms need no partial derivatives)
        per_term = use_base or use_q or generic.shape[0] > 0 or K_SHAPE != 0 or (not FIXED and ip[L.I_SHAPE] != 0)
        fpixels = ip[L.I_FPIXELS]
        oversample = 1 if K_SIMPLE else ip[L.I_OVERSAMPLE]
        thicksteps = 1 if K_SIMPLE else ip[L.I_THICKSTEPS]
        nsources = 1 if K_SIMPLE else ip[L.I_SOURCES]
        evaluations = ip[L.I_PHISTEPS] * ip[L.I_MOSAIC]
        shape = K_SHAPE if FIXED else ip[L.I_SHAPE]
        os_thick = K_OS_THICK if FIXED else ip[L.I_OVERSAMPLE_THICK] != 0
        os_polar = K_OS_POLAR if FIXED else ip[L.I_OVERSAMPLE_POLAR] != 0
        os_omega = K_OS_OMEGA if FIXED else ip[L.I_OVERSAMPLE_OMEGA] != 0
        curved = K_CURVED if FIXED else ip[L.I_CURVED] != 0
        point_pixel = ip[L.I_POINT_PIXEL] != 0
        scan = spixel * fpixels + fpixel
        variant = 0 if scan == ip[L.I_FIRST_PIXEL] else 1

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
        h_span = ip[L.I_H_MAX] - h_min if table else -1
        k_span = ip[L.I_K_MAX] - k_min if table else -1
        l_span = ip[L.I_L_MAX] - l_min if table else -1
        post = g[L.G_RE2_FLUENCE] / g[L.G_STEPS] * weight  # the scattered term's factor (see module)

        I = g[L.G_I_BG]
        polar = R(1.0) if ip[L.I_NOPOLAR] != 0 else R(0.0)
        omega = R(0.0)
        capture = R(0.0)
        for j in range(nt):
            work[W_I, j] = dg[j, L.G_I_BG]
            work[W_POLAR, j] = R(0.0)
            work[W_OMEGA, j] = R(0.0)
            work[W_CAPTURE, j] = R(0.0)
        # the pixel's shares of the derivative, turned into tangents by the directions: d I / d of
        # the base axes a0, b0, c0 (G*), of the unrotated reciprocal axes (S*), of the current
        # sub-pixel and source's scattering vector (Q*) and of Na, Nb, Nc (N*)
        G0 = G1 = G2 = G3 = G4 = G5 = G6 = G7 = G8 = R(0.0)
        S0 = S1 = S2 = S3 = S4 = S5 = S6 = S7 = S8 = R(0.0)
        Q0 = Q1 = Q2 = R(0.0)
        N0 = N1 = N2 = R(0.0)
        interpolate = K_INTERPOLATE and ip[L.I_INTERPOLATE] != 0 and scan <= ip[L.I_INTERP_UNTIL]
        left_table = False
        ran_phi = False

        for thick_tic in range(thicksteps):
            odet = R(thick_tic) * thickstep
            capture = R(1.0) if g[L.G_THICK] == R(0.0) else R(0.0)
            for j in range(nt):
                work[W_CAPTURE, j] = R(0.0)
            for sub_s in range(oversample):
                for sub_f in range(oversample):
                    sdet = subpixel * R(spixel * oversample + sub_s) + subpixel / R(2.0)
                    fdet = subpixel * R(fpixel * oversample + sub_f) + subpixel / R(2.0)
                    x = fdet * fx + sdet * sx + odet * ox + px
                    y = fdet * fy + sdet * sy + odet * oy + py
                    z = fdet * fz + sdet * sz + odet * oz + pz
                    flat_y = y
                    flat_z = z
                    bx = by = bz = nx = ny = nz = R(0.0)
                    if curved:
                        bx = distance * g[L.G_BEAM]
                        by = distance * g[L.G_BEAM + 1]
                        bz = distance * g[L.G_BEAM + 2]
                        nx, ny, nz = rotate_axis3(bx, by, bz, sx, sy, sz, y / distance)
                        x, y, z = rotate_axis3(nx, ny, nz, fx, fy, fz, z / distance)
                    for j in range(nt):
                        tx = fdet * dg[j, L.G_FDET] + sdet * dg[j, L.G_SDET] + odet * dg[j, L.G_ODET] + dg[j, L.G_PIX0]
                        ty = (fdet * dg[j, L.G_FDET + 1] + sdet * dg[j, L.G_SDET + 1] + odet * dg[j, L.G_ODET + 1]
                              + dg[j, L.G_PIX0 + 1])
                        tz = (fdet * dg[j, L.G_FDET + 2] + sdet * dg[j, L.G_SDET + 2] + odet * dg[j, L.G_ODET + 2]
                              + dg[j, L.G_PIX0 + 2])
                        if curved:
                            # the flat position's y and z turn the beam point about s and f
                            td = dg[j, L.G_DISTANCE]
                            tnx, tny, tnz = rotate_axis3_tangent(
                                bx, by, bz, sx, sy, sz, flat_y / distance, td * g[L.G_BEAM], td * g[L.G_BEAM + 1],
                                td * g[L.G_BEAM + 2], dg[j, L.G_SDET], dg[j, L.G_SDET + 1], dg[j, L.G_SDET + 2],
                                (ty * distance - flat_y * td) / (distance * distance))
                            tx, ty, tz = rotate_axis3_tangent(
                                nx, ny, nz, fx, fy, fz, flat_z / distance, tnx, tny, tnz, dg[j, L.G_FDET],
                                dg[j, L.G_FDET + 1], dg[j, L.G_FDET + 2],
                                (tz * distance - flat_z * td) / (distance * distance))
                        work[W_X, j] = tx
                        work[W_Y, j] = ty
                        work[W_Z, j] = tz
                    airpath, dx, dy, dz = unitize3(x, y, z)
                    for j in range(nt):
                        work[W_R, j], work[W_DX, j], work[W_DY, j], work[W_DZ, j] = unitize3_tangent(
                            airpath, dx, dy, dz, work[W_X, j], work[W_Y, j], work[W_Z, j])
                    if omega == R(0.0) or os_omega:
                        omega = solid_angle(pixel_size, close_distance, airpath, point_pixel)
                        for j in range(nt):
                            work[W_OMEGA, j] = solid_angle_tangent(omega, close_distance, airpath, point_pixel,
                                                                   dg[j, L.G_CLOSE], work[W_R, j])
                    if capture == R(0.0) or os_thick:
                        parallax = dot3(dx, dy, dz, ox, oy, oz)
                        capture = capture_fraction(thick_tic, thickstep, mu, parallax)
                        for j in range(nt):
                            tparallax = (dot3(work[W_DX, j], work[W_DY, j], work[W_DZ, j], ox, oy, oz)
                                         + dot3(dx, dy, dz, dg[j, L.G_ODET], dg[j, L.G_ODET + 1],
                                                dg[j, L.G_ODET + 2]))
                            work[W_CAPTURE, j] = capture_fraction_tangent(thick_tic, thickstep, mu, parallax,
                                                                          tparallax)

                    for source in range(nsources):
                        ix = -sources[source, 0]
                        iy = -sources[source, 1]
                        iz = -sources[source, 2]
                        lam = sources[source, 3]
                        bx, by, bz = sources[source, 4], sources[source, 5], sources[source, 6]
                        ex, ey, ez = sources[source, 7], sources[source, 8], sources[source, 9]
                        qx = (dx - ix) / lam
                        qy = (dy - iy) / lam
                        qz = (dz - iz) / lam
                        for j in range(nt):
                            tlam = dsources[j, source, 3]
                            work[W_QX, j] = (work[W_DX, j] + dsources[j, source, 0] - qx * tlam) / lam
                            work[W_QY, j] = (work[W_DY, j] + dsources[j, source, 1] - qy * tlam) / lam
                            work[W_QZ, j] = (work[W_DZ, j] + dsources[j, source, 2] - qz * tlam) / lam
                        stol = R(0.5) * math.sqrt(qx * qx + qy * qy + qz * qz)
                        keep = not (dmin > R(0.0) and stol > R(0.0) and dmin > R(0.5) / stol)
                        if not keep:
                            continue
                        if polar == R(0.0) or os_polar:
                            polar = polarization_factor(kahn, ix, iy, iz, dx, dy, dz, bx, by, bz, ex, ey, ez)
                            if nt > 0:
                                gpx, gpy, gpz = polarization_factor_gradient(kahn, ix, iy, iz, dx, dy, dz, bx, by, bz,
                                                                             ex, ey, ez)
                                for j in range(nt):
                                    work[W_POLAR, j] = gpx * work[W_DX, j] + gpy * work[W_DY, j] + gpz * work[W_DZ, j]
                        factor = post
                        if not os_thick:
                            factor *= capture
                        if not os_polar:
                            factor *= polar
                        if not os_omega:
                            factor *= omega

                        for e in range(evaluations):
                            a0, a1, a2 = lattice[variant, e, 0], lattice[variant, e, 1], lattice[variant, e, 2]
                            b0, b1, b2 = lattice[variant, e, 3], lattice[variant, e, 4], lattice[variant, e, 5]
                            c0, c1, c2 = lattice[variant, e, 6], lattice[variant, e, 7], lattice[variant, e, 8]
                            h = a0 * qx + a1 * qy + a2 * qz
                            k = b0 * qx + b1 * qy + b2 * qz
                            l = c0 * qx + c1 * qy + c2 * qz
                            h0 = ceil(h - R(0.5))
                            k0 = ceil(k - R(0.5))
                            l0 = ceil(l - R(0.5))
                            f_a = R(1.0)
                            f_b = R(1.0)
                            f_c = R(1.0)
                            if shape == 0:
                                if na > R(1.0):
                                    f_a = sincg_peeled(h, h0, na)
                                if nb > R(1.0):
                                    f_b = sincg_peeled(k, k0, nb)
                                if nc > R(1.0):
                                    f_c = sincg_peeled(l, l0, nc)
                                F_latt = f_a * f_b * f_c
                            else:
                                F_latt = shape_transform(shape, h, k, l, h0, k0, l0, na, nb, nc, fudge, recip)
                            if F_latt == R(0.0) and water == R(0.0):
                                continue
                            if interpolate and interpolation_leaves_table(h, k, l, ip):
                                interpolate = False
                                left_table = True
                            gh = R(0.0)
                            gk = R(0.0)
                            gl = R(0.0)
                            inside = False
                            hi = int(h0) - h_min
                            ki = int(k0) - k_min
                            li = int(l0) - l_min
                            hf = kf = lf = 0
                            if interpolate:
                                hf = int(math.floor(np.float64(h)))
                                kf = int(math.floor(np.float64(k)))
                                lf = int(math.floor(np.float64(l)))
                                F_cell = interpolate_F(Fhkl, h, k, l, hf, kf, lf, h_min, k_min, l_min)
                                gh, gk, gl = interpolate_F_gradient(Fhkl, h, k, l, hf, kf, lf, h_min, k_min, l_min)
                            else:
                                F_cell = nearest_F(Fhkl, hi, ki, li, h_span, k_span, l_span, default_F)
                                inside = 0 <= hi <= h_span and 0 <= ki <= k_span and 0 <= li <= l_span
                            term = F_cell * F_cell * F_latt * F_latt
                            if scatter and inside:
                                accumulate(Fgrad, hi, ki, li, factor * R(2.0) * F_cell * F_latt * F_latt)
                            elif scatter and interpolate:
                                # the tricubic is the 4x4x4 structure factors weighted by products
                                # of polint's weights: each gets its share of the term
                                wh, _ = lagrange_weights(R(hf - 1), h)
                                wk, _ = lagrange_weights(R(kf - 1), k)
                                wl, _ = lagrange_weights(R(lf - 1), l)
                                share = factor * R(2.0) * F_cell * F_latt * F_latt
                                for a in range(4):
                                    for b in range(4):
                                        for c in range(4):
                                            accumulate(Fgrad, hf - 1 - h_min + a, kf - 1 - k_min + b,
                                                       lf - 1 - l_min + c, share * wh[a] * wk[b] * wl[c])
                            I_sum = I + term
                            if nt > 0 and per_term:
                                # d term / d(h, k, l), d(Na, Nb, Nc) and the reciprocal axes' factor
                                gF = R(2.0) * F_cell * F_cell * F_latt  # d term / d F_latt
                                if shape == 0:
                                    lh = sincg_tangent(h, h0, na, f_a) * f_b * f_c if na > R(1.0) else R(0.0)
                                    lk = f_a * sincg_tangent(k, k0, nb, f_b) * f_c if nb > R(1.0) else R(0.0)
                                    ll = f_a * f_b * sincg_tangent(l, l0, nc, f_c) if nc > R(1.0) else R(0.0)
                                    lna = R(0.0)
                                    lnb = R(0.0)
                                    lnc = R(0.0)
                                    lrad = R(0.0)
                                    rx = R(0.0)
                                    ry = R(0.0)
                                    rz = R(0.0)
                                else:
                                    lh, lk, ll, lna, lnb, lnc, lrad, rx, ry, rz = shape_transform_partials(
                                        shape, h, k, l, h0, k0, l0, na, nb, nc, fudge, recip, F_latt)
                                gC = R(2.0) * F_cell * F_latt * F_latt  # d term / d F_cell
                                g_h = gF * lh + gC * gh
                                g_k = gF * lk + gC * gk
                                g_l = gF * ll + gC * gl
                                if use_base:
                                    # h = a0 . (M^T q) with a_e = M a0: the base axes' share, summed
                                    # over the pixel and turned into tangents once at its end
                                    m0, m1, m2 = frames[variant, e, 0], frames[variant, e, 1], frames[variant, e, 2]
                                    m3, m4, m5 = frames[variant, e, 3], frames[variant, e, 4], frames[variant, e, 5]
                                    m6, m7, m8 = frames[variant, e, 6], frames[variant, e, 7], frames[variant, e, 8]
                                    p0 = m0 * qx + m3 * qy + m6 * qz
                                    p1 = m1 * qx + m4 * qy + m7 * qz
                                    p2 = m2 * qx + m5 * qy + m8 * qz
                                    G0 += g_h * p0
                                    G1 += g_h * p1
                                    G2 += g_h * p2
                                    G3 += g_k * p0
                                    G4 += g_k * p1
                                    G5 += g_k * p2
                                    G6 += g_l * p0
                                    G7 += g_l * p1
                                    G8 += g_l * p2
                                if use_q:
                                    # h = a_e . q: the scattering vector's share, for this sub-pixel and source
                                    Q0 += g_h * a0 + g_k * b0 + g_l * c0
                                    Q1 += g_h * a1 + g_k * b1 + g_l * c1
                                    Q2 += g_h * a2 + g_k * b2 + g_l * c2
                                if shape != 0:
                                    N0 += gF * lna
                                    N1 += gF * lnb
                                    N2 += gF * lnc
                                    if shape == 2:
                                        sh = gF * lrad * (h - h0)
                                        sk = gF * lrad * (k - k0)
                                        sl = gF * lrad * (l - l0)
                                        S0 += sh * rx
                                        S1 += sh * ry
                                        S2 += sh * rz
                                        S3 += sk * rx
                                        S4 += sk * ry
                                        S5 += sk * rz
                                        S6 += sl * rx
                                        S7 += sl * ry
                                        S8 += sl * rz
                                for jg in range(generic.shape[0]):
                                    # a direction that turns each lattice its own way (mosaic)
                                    j = generic[jg]
                                    th = (dlattice[jg, variant, e, 0] * qx + dlattice[jg, variant, e, 1] * qy
                                          + dlattice[jg, variant, e, 2] * qz)
                                    tk = (dlattice[jg, variant, e, 3] * qx + dlattice[jg, variant, e, 4] * qy
                                          + dlattice[jg, variant, e, 5] * qz)
                                    tl = (dlattice[jg, variant, e, 6] * qx + dlattice[jg, variant, e, 7] * qy
                                          + dlattice[jg, variant, e, 8] * qz)
                                    work[W_I, j] += g_h * th + g_k * tk + g_l * tl
                            if nt > 0 and (os_thick or os_polar or os_omega):
                                # the reference multiplies the running sum by each factor: so are
                                # the tangents and the shares gathered so far
                                factor_os = R(1.0)
                                for j in range(nt):
                                    running = I_sum
                                    tI = work[W_I, j]
                                    if os_thick:
                                        tI = tI * capture + running * work[W_CAPTURE, j]
                                        running *= capture
                                    if os_polar:
                                        tI = tI * polar + running * work[W_POLAR, j]
                                        running *= polar
                                    if os_omega:
                                        tI = tI * omega + running * work[W_OMEGA, j]
                                    work[W_I, j] = tI
                                if os_thick:
                                    factor_os *= capture
                                if os_polar:
                                    factor_os *= polar
                                if os_omega:
                                    factor_os *= omega
                                G0, G1, G2 = G0 * factor_os, G1 * factor_os, G2 * factor_os
                                G3, G4, G5 = G3 * factor_os, G4 * factor_os, G5 * factor_os
                                G6, G7, G8 = G6 * factor_os, G7 * factor_os, G8 * factor_os
                                S0, S1, S2 = S0 * factor_os, S1 * factor_os, S2 * factor_os
                                S3, S4, S5 = S3 * factor_os, S4 * factor_os, S5 * factor_os
                                S6, S7, S8 = S6 * factor_os, S7 * factor_os, S8 * factor_os
                                Q0, Q1, Q2 = Q0 * factor_os, Q1 * factor_os, Q2 * factor_os
                                N0, N1, N2 = N0 * factor_os, N1 * factor_os, N2 * factor_os
                            if os_thick:
                                I_sum *= capture
                            if os_polar:
                                I_sum *= polar
                            if os_omega:
                                I_sum *= omega
                            I = I_sum
                        if use_q:
                            for j in range(nt):
                                work[W_I, j] += Q0 * work[W_QX, j] + Q1 * work[W_QY, j] + Q2 * work[W_QZ, j]
                            Q0 = Q1 = Q2 = R(0.0)
                        ran_phi = True
                        variant = 1

        for j in range(nt):
            work[W_I, j] += (N0 * dg[j, L.G_NA] + N1 * dg[j, L.G_NB] + N2 * dg[j, L.G_NC]
                             + G0 * dbase[j, 0] + G1 * dbase[j, 1] + G2 * dbase[j, 2] + G3 * dbase[j, 3]
                             + G4 * dbase[j, 4] + G5 * dbase[j, 5] + G6 * dbase[j, 6] + G7 * dbase[j, 7]
                             + G8 * dbase[j, 8] + S0 * drecip[j, 0] + S1 * drecip[j, 1] + S2 * drecip[j, 2]
                             + S3 * drecip[j, 3] + S4 * drecip[j, 4] + S5 * drecip[j, 5] + S6 * drecip[j, 6]
                             + S7 * drecip[j, 7] + S8 * drecip[j, 8])
        value = g[L.G_RE2_FLUENCE] * I / g[L.G_STEPS]
        for j in range(nt):
            work[W_VALUE, j] = (dg[j, L.G_RE2_FLUENCE] * I + g[L.G_RE2_FLUENCE] * work[W_I, j]) / g[L.G_STEPS]
        if not os_thick:
            for j in range(nt):
                work[W_VALUE, j] = work[W_VALUE, j] * capture + value * work[W_CAPTURE, j]
            value *= capture
        if not os_polar:
            for j in range(nt):
                work[W_VALUE, j] = work[W_VALUE, j] * polar + value * work[W_POLAR, j]
            value *= polar
        if not os_omega:
            for j in range(nt):
                work[W_VALUE, j] = work[W_VALUE, j] * omega + value * work[W_OMEGA, j]
            value *= omega
        return value, left_table, ran_phi

    return tangent_pixel

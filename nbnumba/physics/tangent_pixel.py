"""A strip of pixels' values and their tangents along K directions of the model, in one pass
(forward mode).

`tangent_strip` walks the reference's per-pixel loop (layer, sub-pixel, source, phi step, mosaic
domain) for a strip of neighbouring pixels of one row, as `pixel.render_strip` does: each loop
level runs across the strip's pixels, so the CPU runs several pixels per instruction, and each
pixel still adds up its terms in the reference's order.  It calls the render's scalar functions
for every value (`unitize3`, `solid_angle`, `capture_fraction`, `polarization_factor`,
`lattice_strip` in its variant that keeps the sincg slopes) and the render's own `add_terms` for
the structure factors and the sums, in the same order, so its values are the render's bit for
bit.  Beside each call it applies that function's derivative rule (the
`*_tangent`, `*_gradient` or `*_partials` function in the same module) to carry K tangents along.
The CUDA kernel hands it one pixel, as the render kernel hands `render_strip` one.

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

A direction that moves no pixel, no source and no lattice of its own (rotations, cell, N) has
the tangent R_CLOSE x (its base, reciprocal and N tangents . the shares, rows 0 to
N_SHARE_COLUMNS - 1): a caller that wants only the weighted sum of a pixel list's tangents may
contract those shares itself, once per strip, and leave such directions out of `dg` (keeping
`use_shares` true so that the shares are gathered); `derivatives.directions` marks them.

The caller provides the strip's arrays: `state`, `tally` and `scratch` as `render_strip`'s, and
two flat ones whose rows are `strip` long (a constant of the compiled code), `part` (N_PART rows:
the shares and each term's by-products, row r of pixel p at r * strip + p) and `work` (K
directions x N_W rows: the per-pixel tangents, at (j * N_W + row) * strip + p).  Rows a constant
apart let the CPU run a loop over pixels that reads one row and writes another side by side; with
a run-time row stride the compiler cannot rule out their overlap and keeps it scalar.  A CUDA
device function can only have local arrays of a size fixed when it is compiled, so the kernels
allocate them (K is a constant of each derivative kernel).

With `scatter`, each term also adds its pixel's weight (row R_WEIGHT) * (dI/dF) into `Fgrad` (float64, the HKL
table's shape) at its nearest reflection, or at the 64 it interpolates: the reduced gradient of
the structure factors.  The pixel's final factors (solid angle, polarization, capture fraction)
must then be known when the term is added, which holds without the -oversample_* switches and
with one sensor layer; the host refuses the other cases.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from . import layout as L

# rows of the per-pixel tangents of each direction (work)
W_X, W_Y, W_Z, W_R, W_DX, W_DY, W_DZ, W_OMEGA, W_CAPTURE, W_POLAR, W_QX, W_QY, W_QZ, W_I, W_VALUE = range(15)
N_W = 15

# rows of a strip's shares and per-term by-products (part)
R_G = 0  # 9: d I / d base axes a0, b0, c0
R_S = 9  # 9: d I / d unrotated reciprocal axes
R_N = 18  # 3: d I / d Na, Nb, Nc
N_SHARE_COLUMNS = 21  # rows 0-20: the shares of the parameters that move no pixel (see `contracted`)
R_Q = 21  # 3: d I / d scattering vector of the current sub-pixel and source
N_SHARES = 24
R_DF = 24  # 3: the interpolated structure factor's d / d(h, k, l) (0 for the nearest)
N_ZEROED = 27  # rows 0-26 start each strip at zero
R_DH = 27  # 3: d term / d(h, k, l)
R_SUM = 30  # the sum with the current term, before any per-sub-step factor
R_WEIGHT = 31  # the pixel's weight (the structure factors' gradient)
R_FACTOR = 32  # the pixel's final factor times its weight (the structure factors' gradient)
R_FRESH = 33  # 1 when the current sub-pixel or source computed a fresh factor
R_TMP = 34  # 3: a factor's gradient
R_CLOSE = 37  # the pixel's closing factor: its value is R_CLOSE x I, its shares' tangents R_CLOSE x share
N_PART = 38

# pixels per strip of the CPU derivative kernel: its tangent rows (K x N_W x strip) stay in the cache
TANGENT_STRIP = 128


def make_tangent_strip(jit, small, R, features, ceil, fma, accumulate, strip, vectors, detector,
                       lattice_transform, structure_factors, pixel):
    """`tangent_strip` and `plain_tangent_strip` (see `make_strip`) compiled with `jit` for strips of
    at most `strip` pixels; `features`, `ceil` and `fma` as `make_physics`'s (the arithmetic only
    derivatives use is fused: the reference's rounding binds the values alone).
    `accumulate(table, h, k, l, value)` adds into the structure-factor gradient: None for a plain
    addition (each CPU thread has its own table), an atomic one on the GPU."""
    S = strip
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
    lattice_strip = lattice_transform.lattice_strip_slopes
    shape_transform_partials = lattice_transform.shape_transform_partials
    interpolate_F_gradient = structure_factors.interpolate_F_gradient
    lagrange_weights = structure_factors.lagrange_weights
    in_table = structure_factors.in_table
    add_terms = pixel.add_terms
    # Numba guards a signed array index against negative values on every access, which keeps the
    # CPU's loops over a strip's pixels from running them side by side (the pass was 25-35 %
    # slower); a GPU thread's one pixel compiles to fewer registers with the plain index
    index = np.uint64 if S > 1 else np.int64

    @small
    def at(row, p):
        """Index of pixel p's entry in row `row` of `part`."""
        return index(row * S + p)

    @small
    def tw(j, row, p):
        """Index of pixel p's entry in row `row` of direction j's tangents in `work`.  Written as a
        sum with the direction's start: the compiler then sees that rows lie a constant apart
        ((j * N_W + row) * S hides it, and the loops stay scalar)."""
        return index(j * (N_W * S) + row * S + p)

    @small
    def moves_pixels(dg, j):
        """Whether direction j moves the detector's pixels (origin, axes, distances): the others
        leave every per-pixel factor and the diffracted ray as they are."""
        moved = dg[j, L.G_DISTANCE] != R(0.0) or dg[j, L.G_CLOSE] != R(0.0)
        for slot in range(L.G_PIX0, L.G_BEAM + 3):
            moved = moved or dg[j, slot] != R(0.0)
        return moved

    @small
    def moves_q(dg, dsources, j, source):
        """Whether direction j moves the scattering vector of `source` (its pixels or the source)."""
        moved = moves_pixels(dg, j)
        for c in range(4):
            moved = moved or dsources[j, source, c] != R(0.0)
        return moved

    @small
    def moves_any(table, j):
        """Whether row j of `table` is not all zero."""
        moved = False
        for c in range(table.shape[1]):
            moved = moved or table[j, c] != R(0.0)
        return moved

    @small
    def added(state, scratch, p, water):
        """Whether `add_terms` added the current term to pixel p (a kept source, and a non-zero
        lattice transform or water)."""
        return state[L.P_KEEP, p] != R(0.0) and not (scratch[L.S_FLATT, p] == R(0.0) and water == R(0.0))

    @small
    def term_extras(state, scratch, part, width, Fhkl, h_min, k_min, l_min, h_span, k_span, l_span, water,
                    interpolating, sums, scatter, Fgrad):
        """What the derivative rules need of the term `add_terms` has just added to each pixel:
        with `interpolating` the interpolated structure factor's gradient (rows R_DF; they stay 0
        otherwise), with `sums` the pixel's sum with the term before any per-sub-step factor
        (R_SUM, which held the sum before it) and with `scatter` the term's share of the structure
        factors' gradient."""
        if sums:
            for p in range(width):
                F_cell = scratch[L.S_FCELL, p]
                F_latt = scratch[L.S_FLATT, p]
                part[at(R_SUM, p)] = part[at(R_SUM, p)] + F_cell * F_cell * F_latt * F_latt
        if not (interpolating or scatter):
            return
        for p in range(width):
            if not added(state, scratch, p, water):
                continue
            F_cell = scratch[L.S_FCELL, p]
            F_latt = scratch[L.S_FLATT, p]
            h = scratch[L.S_H, p]
            k = scratch[L.S_K, p]
            l = scratch[L.S_L, p]
            # still on after `add_terms`: this term was interpolated
            interpolated = interpolating and state[L.P_INTERPOLATE, p] != R(0.0)
            hf = int(math.floor(np.float64(h)))
            kf = int(math.floor(np.float64(k)))
            lf = int(math.floor(np.float64(l)))
            if interpolating:
                gh = R(0.0)
                gk = R(0.0)
                gl = R(0.0)
                if interpolated:
                    gh, gk, gl = interpolate_F_gradient(Fhkl, h, k, l, hf, kf, lf, h_min, k_min, l_min)
                part[at(R_DF, p)] = gh
                part[at(R_DF + 1, p)] = gk
                part[at(R_DF + 2, p)] = gl
            if scatter:
                share = part[at(R_FACTOR, p)] * R(2.0) * F_cell * F_latt * F_latt
                if interpolated:
                    # the tricubic is the 4x4x4 structure factors weighted by products of
                    # polint's weights: each gets its share of the term
                    wh, _ = lagrange_weights(R(hf - 1), h)
                    wk, _ = lagrange_weights(R(kf - 1), k)
                    wl, _ = lagrange_weights(R(lf - 1), l)
                    for a in range(4):
                        for b in range(4):
                            for c in range(4):
                                accumulate(Fgrad, hf - 1 - h_min + a, kf - 1 - k_min + b, lf - 1 - l_min + c,
                                           share * wh[a] * wk[b] * wl[c])
                else:
                    hi = int(scratch[L.S_H0, p]) - h_min
                    ki = int(scratch[L.S_K0, p]) - k_min
                    li = int(scratch[L.S_L0, p]) - l_min
                    if in_table(hi, ki, li, h_span, k_span, l_span):
                        accumulate(Fgrad, hi, ki, li, share)

    @small
    def add_outer(part, row, p, s0, s1, s2, v0, v1, v2):
        """Adds the outer product s v (row-major, nine rows from `row`) into pixel p's shares."""
        part[at(row, p)] = fma(s0, v0, part[at(row, p)])
        part[at(row + 1, p)] = fma(s0, v1, part[at(row + 1, p)])
        part[at(row + 2, p)] = fma(s0, v2, part[at(row + 2, p)])
        part[at(row + 3, p)] = fma(s1, v0, part[at(row + 3, p)])
        part[at(row + 4, p)] = fma(s1, v1, part[at(row + 4, p)])
        part[at(row + 5, p)] = fma(s1, v2, part[at(row + 5, p)])
        part[at(row + 6, p)] = fma(s2, v0, part[at(row + 6, p)])
        part[at(row + 7, p)] = fma(s2, v1, part[at(row + 7, p)])
        part[at(row + 8, p)] = fma(s2, v2, part[at(row + 8, p)])

    @small
    def add_axes_shares(part, state, p, g_h, g_k, g_l, frame, axes):
        """A term's shares of the base axes and of the scattering vector: h = a0 . (M^T q) with
        a_e = M a0 (the base axes' share, summed over the pixel and turned into tangents once at
        its end) and h = a_e . q (the scattering vector's, for this sub-pixel and source).  Both
        are gathered whichever the directions need (a share no direction reads is never turned
        into tangents): the loop over pixels then holds no branch.  In a loop of its own: with the
        partial derivatives' loop it reads and writes too many rows for the compiler to prove
        they do not overlap, and runs one pixel at a time."""
        qx = state[L.P_QX, p]
        qy = state[L.P_QY, p]
        qz = state[L.P_QZ, p]
        p0 = fma(frame[0], qx, fma(frame[3], qy, frame[6] * qz))
        p1 = fma(frame[1], qx, fma(frame[4], qy, frame[7] * qz))
        p2 = fma(frame[2], qx, fma(frame[5], qy, frame[8] * qz))
        add_outer(part, R_G, p, g_h, g_k, g_l, p0, p1, p2)
        part[at(R_Q, p)] = fma(g_h, axes[0], fma(g_k, axes[3], fma(g_l, axes[6], part[at(R_Q, p)])))
        part[at(R_Q + 1, p)] = fma(g_h, axes[1], fma(g_k, axes[4], fma(g_l, axes[7], part[at(R_Q + 1, p)])))
        part[at(R_Q + 2, p)] = fma(g_h, axes[2], fma(g_k, axes[5], fma(g_l, axes[8], part[at(R_Q + 2, p)])))

    @small
    def add_shares(scratch, part, width, lattice, frames, variant, e, state, shape, na, nb, nc, fudge, recip,
                   water):
        """Each live term's partial derivatives into its pixel's shares, d term / d(h, k, l) kept in
        rows R_DH.  The parallelepiped's loop runs across the strip's pixels with no branch that
        stops the CPU running them side by side: a term not added contributes a selected zero."""
        frame = (frames[variant, e, 0], frames[variant, e, 1], frames[variant, e, 2], frames[variant, e, 3],
                 frames[variant, e, 4], frames[variant, e, 5], frames[variant, e, 6], frames[variant, e, 7],
                 frames[variant, e, 8])
        axes = (lattice[variant, e, 0], lattice[variant, e, 1], lattice[variant, e, 2], lattice[variant, e, 3],
                lattice[variant, e, 4], lattice[variant, e, 5], lattice[variant, e, 6], lattice[variant, e, 7],
                lattice[variant, e, 8])
        if shape == 0:
            for p in range(width):
                F_cell = scratch[L.S_FCELL, p]
                F_latt = scratch[L.S_FLATT, p]
                f_a = scratch[L.S_FA, p]
                f_b = scratch[L.S_FB, p]
                f_c = scratch[L.S_FC, p]
                gF = R(2.0) * F_cell * F_cell * F_latt  # d term / d F_latt
                gC = R(2.0) * F_cell * F_latt * F_latt  # d term / d F_cell
                lh = scratch[L.S_SA, p] * f_b * f_c
                lk = f_a * scratch[L.S_SB, p] * f_c
                ll = f_a * f_b * scratch[L.S_SC, p]
                live = added(state, scratch, p, water)
                g_h = fma(gF, lh, gC * part[at(R_DF, p)]) if live else R(0.0)
                g_k = fma(gF, lk, gC * part[at(R_DF + 1, p)]) if live else R(0.0)
                g_l = fma(gF, ll, gC * part[at(R_DF + 2, p)]) if live else R(0.0)
                part[at(R_DH, p)] = g_h
                part[at(R_DH + 1, p)] = g_k
                part[at(R_DH + 2, p)] = g_l
        else:
            for p in range(width):
                if not added(state, scratch, p, water):
                    part[at(R_DH, p)] = R(0.0)
                    part[at(R_DH + 1, p)] = R(0.0)
                    part[at(R_DH + 2, p)] = R(0.0)
                    continue
                F_cell = scratch[L.S_FCELL, p]
                F_latt = scratch[L.S_FLATT, p]
                h = scratch[L.S_H, p]
                k = scratch[L.S_K, p]
                l = scratch[L.S_L, p]
                h0 = scratch[L.S_H0, p]
                k0 = scratch[L.S_K0, p]
                l0 = scratch[L.S_L0, p]
                gF = R(2.0) * F_cell * F_cell * F_latt
                gC = R(2.0) * F_cell * F_latt * F_latt
                lh, lk, ll, lna, lnb, lnc, lrad, rx, ry, rz = shape_transform_partials(
                    shape, h, k, l, h0, k0, l0, na, nb, nc, fudge, recip, F_latt)
                g_h = gF * lh + gC * part[at(R_DF, p)]
                g_k = gF * lk + gC * part[at(R_DF + 1, p)]
                g_l = gF * ll + gC * part[at(R_DF + 2, p)]
                part[at(R_DH, p)] = g_h
                part[at(R_DH + 1, p)] = g_k
                part[at(R_DH + 2, p)] = g_l
                part[at(R_N, p)] += gF * lna
                part[at(R_N + 1, p)] += gF * lnb
                part[at(R_N + 2, p)] += gF * lnc
                if shape == 2:
                    sh = gF * lrad * (h - h0)
                    sk = gF * lrad * (k - k0)
                    sl = gF * lrad * (l - l0)
                    add_outer(part, R_S, p, sh, sk, sl, rx, ry, rz)
        for p in range(width):
            add_axes_shares(part, state, p, part[at(R_DH, p)], part[at(R_DH + 1, p)], part[at(R_DH + 2, p)], frame,
                            axes)

    @small
    def add_generic(state, part, work, width, dlattice, jg, j, variant, e):
        """Direction j, which turns each lattice its own way (mosaic): its tangent of the terms' h,
        k, l times their partial derivatives, straight into the pixels' tangents."""
        d0, d1, d2 = dlattice[jg, variant, e, 0], dlattice[jg, variant, e, 1], dlattice[jg, variant, e, 2]
        d3, d4, d5 = dlattice[jg, variant, e, 3], dlattice[jg, variant, e, 4], dlattice[jg, variant, e, 5]
        d6, d7, d8 = dlattice[jg, variant, e, 6], dlattice[jg, variant, e, 7], dlattice[jg, variant, e, 8]
        for p in range(width):
            qx = state[L.P_QX, p]
            qy = state[L.P_QY, p]
            qz = state[L.P_QZ, p]
            work[tw(j, W_I, p)] += (part[at(R_DH, p)] * (d0 * qx + d1 * qy + d2 * qz)
                                + part[at(R_DH + 1, p)] * (d3 * qx + d4 * qy + d5 * qz)
                                + part[at(R_DH + 2, p)] * (d6 * qx + d7 * qy + d8 * qz))

    @small
    def scale_by_sub_step_factors(state, scratch, part, work, width, nt, os_thick, os_polar, os_omega, water):
        """The reference multiplies the running sum by each per-sub-step factor after each term: so
        are the tangents and the shares gathered so far."""
        for p in range(width):
            if not added(state, scratch, p, water):
                continue
            capture = state[L.P_CAPTURE, p]
            polar = state[L.P_POLAR, p]
            omega = state[L.P_OMEGA, p]
            for j in range(nt):
                running = part[at(R_SUM, p)]
                tI = work[tw(j, W_I, p)]
                if os_thick:
                    tI = tI * capture + running * work[tw(j, W_CAPTURE, p)]
                    running *= capture
                if os_polar:
                    tI = tI * polar + running * work[tw(j, W_POLAR, p)]
                    running *= polar
                if os_omega:
                    tI = tI * omega + running * work[tw(j, W_OMEGA, p)]
                work[tw(j, W_I, p)] = tI
            factor = R(1.0)
            if os_thick:
                factor *= capture
            if os_polar:
                factor *= polar
            if os_omega:
                factor *= omega
            for r in range(N_SHARES):
                part[at(r, p)] *= factor

    def make_strip(general):
        """`tangent_strip`; without `general` (a constant of the compiled code) for a plain render
        alone (`Features.plain`), as `pixel.make_render_strip`'s: its first compile takes a third
        less."""

        @jit
        def tangent_strip(spixel, fpixel0, width, g, ip, sources, lattice, recip, Fhkl, frames, dg, dsources, dbase,
                          dlattice, generic, drecip, state, tally, scratch, part, work, use_shares, use_q, scatter, Fgrad):
            """The `width` pixels of row `spixel` from column `fpixel0`: values into state[P_VALUE], K
            tangents (K, the rows of dg) into rows W_VALUE of `work`, tallies T_LEFT_TABLE and T_RAN_PHI into
            `tally`; row R_WEIGHT of `part` holds each pixel's weight (with `scatter`).  A strip holding the first
            rendered pixel (ip[I_FIRST_PIXEL]) must hold it alone, as `render_strip`'s."""
            nt = dg.shape[0]
            fpixels = ip[L.I_FPIXELS]
            oversample = 1 if K_SIMPLE else ip[L.I_OVERSAMPLE]
            thicksteps = 1 if K_SIMPLE else ip[L.I_THICKSTEPS]
            nsources = 1 if K_SIMPLE else ip[L.I_SOURCES]
            evaluations = ip[L.I_PHISTEPS] * ip[L.I_MOSAIC]
            if general:
                shape = K_SHAPE if FIXED else ip[L.I_SHAPE]
                os_thick = K_OS_THICK if FIXED else ip[L.I_OVERSAMPLE_THICK] != 0
                os_polar = K_OS_POLAR if FIXED else ip[L.I_OVERSAMPLE_POLAR] != 0
                os_omega = K_OS_OMEGA if FIXED else ip[L.I_OVERSAMPLE_OMEGA] != 0
                curved = K_CURVED if FIXED else ip[L.I_CURVED] != 0
                interpolating = K_INTERPOLATE and ip[L.I_INTERPOLATE] != 0
            else:  # a plain render's: constants, whose branches Numba drops (in inlined code too)
                shape = 0
                os_thick = False
                os_polar = False
                os_omega = False
                curved = False
                interpolating = False
            point_pixel = ip[L.I_POINT_PIXEL] != 0
            scan0 = spixel * fpixels + fpixel0
            variant = 0 if scan0 == ip[L.I_FIRST_PIXEL] else 1
            # whether the terms' partial derivatives are needed: for the shares (which a caller may
            # contract itself, with no direction here), a moving scattering vector or a generic
            # direction (scale and the sub-step factors alone need none)
            per_term = use_shares or (nt > 0 and (use_q or generic.shape[0] > 0))

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
            h_span = ip[L.I_H_SPAN]
            k_span = ip[L.I_K_SPAN]
            l_span = ip[L.I_L_SPAN]
            post = g[L.G_RE2_FLUENCE] / g[L.G_STEPS]  # the scattered term's factor (see module)
            plain = not (os_thick or os_polar or os_omega or interpolating)
            # the sum before each per-sub-step factor, which the factors' tangents need
            sums = (nt > 0 or use_shares) and (os_thick or os_polar or os_omega)

            for p in range(width):
                state[L.P_I, p] = g[L.G_I_BG]
                state[L.P_POLAR, p] = R(1.0) if ip[L.I_NOPOLAR] != 0 else R(0.0)
                state[L.P_OMEGA, p] = R(0.0)
                state[L.P_CAPTURE, p] = R(0.0)
                interpolate = K_INTERPOLATE and ip[L.I_INTERPOLATE] != 0 and scan0 + p <= ip[L.I_INTERP_UNTIL]
                state[L.P_INTERPOLATE, p] = R(1.0) if interpolate else R(0.0)
                tally[L.T_LEFT_TABLE, p] = 0.0
                tally[L.T_RAN_PHI, p] = 0.0
            for r in range(N_ZEROED):
                for p in range(width):
                    part[at(r, p)] = R(0.0)
            # a direction that moves no pixel keeps these at zero throughout (see moves_pixels)
            for j in range(nt):
                for p in range(width):
                    work[tw(j, W_I, p)] = dg[j, L.G_I_BG]
                    work[tw(j, W_POLAR, p)] = R(0.0)
                    work[tw(j, W_OMEGA, p)] = R(0.0)
                    work[tw(j, W_DX, p)] = R(0.0)
                    work[tw(j, W_DY, p)] = R(0.0)
                    work[tw(j, W_DZ, p)] = R(0.0)

            for thick_tic in range(thicksteps):
                odet = R(thick_tic) * thickstep
                for p in range(width):
                    state[L.P_CAPTURE, p] = R(1.0) if g[L.G_THICK] == R(0.0) else R(0.0)
                for j in range(nt):
                    for p in range(width):
                        work[tw(j, W_CAPTURE, p)] = R(0.0)
                for sub_s in range(oversample):
                    for sub_f in range(oversample):
                        sdet = subpixel * R(spixel * oversample + sub_s) + subpixel / R(2.0)
                        for p in range(width):
                            fdet = subpixel * R((fpixel0 + p) * oversample + sub_f) + subpixel / R(2.0)
                            state[L.P_X, p] = fdet * fx + sdet * sx + odet * ox + px
                            state[L.P_Y, p] = fdet * fy + sdet * sy + odet * oy + py
                            state[L.P_Z, p] = fdet * fz + sdet * sz + odet * oz + pz
                        for j in range(nt):
                            if not moves_pixels(dg, j):
                                continue
                            tfx, tfy, tfz = dg[j, L.G_FDET], dg[j, L.G_FDET + 1], dg[j, L.G_FDET + 2]
                            tsx, tsy, tsz = dg[j, L.G_SDET], dg[j, L.G_SDET + 1], dg[j, L.G_SDET + 2]
                            tox, toy, toz = dg[j, L.G_ODET], dg[j, L.G_ODET + 1], dg[j, L.G_ODET + 2]
                            tpx, tpy, tpz = dg[j, L.G_PIX0], dg[j, L.G_PIX0 + 1], dg[j, L.G_PIX0 + 2]
                            for p in range(width):
                                fdet = subpixel * R((fpixel0 + p) * oversample + sub_f) + subpixel / R(2.0)
                                work[tw(j, W_X, p)] = fdet * tfx + sdet * tsx + odet * tox + tpx
                                work[tw(j, W_Y, p)] = fdet * tfy + sdet * tsy + odet * toy + tpy
                                work[tw(j, W_Z, p)] = fdet * tfz + sdet * tsz + odet * toz + tpz
                        if curved:
                            bx = distance * g[L.G_BEAM]
                            by = distance * g[L.G_BEAM + 1]
                            bz = distance * g[L.G_BEAM + 2]
                            for p in range(width):
                                flat_y = state[L.P_Y, p]
                                flat_z = state[L.P_Z, p]
                                nx, ny, nz = rotate_axis3(bx, by, bz, sx, sy, sz, flat_y / distance)
                                state[L.P_X, p], state[L.P_Y, p], state[L.P_Z, p] = rotate_axis3(
                                    nx, ny, nz, fx, fy, fz, flat_z / distance)
                                for j in range(nt):
                                    if not moves_pixels(dg, j):
                                        continue
                                    # the flat position's y and z turn the beam point about s and f
                                    td = dg[j, L.G_DISTANCE]
                                    tnx, tny, tnz = rotate_axis3_tangent(
                                        bx, by, bz, sx, sy, sz, flat_y / distance, td * g[L.G_BEAM],
                                        td * g[L.G_BEAM + 1], td * g[L.G_BEAM + 2], dg[j, L.G_SDET],
                                        dg[j, L.G_SDET + 1], dg[j, L.G_SDET + 2],
                                        (work[tw(j, W_Y, p)] * distance - flat_y * td) / (distance * distance))
                                    work[tw(j, W_X, p)], work[tw(j, W_Y, p)], work[tw(j, W_Z, p)] = rotate_axis3_tangent(
                                        nx, ny, nz, fx, fy, fz, flat_z / distance, tnx, tny, tnz, dg[j, L.G_FDET],
                                        dg[j, L.G_FDET + 1], dg[j, L.G_FDET + 2],
                                        (work[tw(j, W_Z, p)] * distance - flat_z * td) / (distance * distance))
                        fresh_omegas = 0
                        for p in range(width):
                            airpath, dx, dy, dz = unitize3(state[L.P_X, p], state[L.P_Y, p], state[L.P_Z, p])
                            state[L.P_R, p] = airpath
                            state[L.P_DX, p] = dx
                            state[L.P_DY, p] = dy
                            state[L.P_DZ, p] = dz
                            omega = state[L.P_OMEGA, p]
                            fresh = omega == R(0.0) or os_omega
                            fresh_omegas += 1 if fresh else 0
                            part[at(R_FRESH, p)] = R(1.0) if fresh else R(0.0)
                            new = solid_angle(pixel_size, close_distance, airpath, point_pixel)
                            state[L.P_OMEGA, p] = new if fresh else omega
                        for j in range(nt):
                            if not moves_pixels(dg, j):
                                continue
                            tclose = dg[j, L.G_CLOSE]
                            for p in range(width):
                                tr, tdx, tdy, tdz = unitize3_tangent(
                                    state[L.P_R, p], state[L.P_DX, p], state[L.P_DY, p], state[L.P_DZ, p],
                                    work[tw(j, W_X, p)], work[tw(j, W_Y, p)], work[tw(j, W_Z, p)])
                                work[tw(j, W_R, p)] = tr
                                work[tw(j, W_DX, p)] = tdx
                                work[tw(j, W_DY, p)] = tdy
                                work[tw(j, W_DZ, p)] = tdz
                            if fresh_omegas > 0:
                                for p in range(width):
                                    fresh = solid_angle_tangent(state[L.P_OMEGA, p], close_distance, state[L.P_R, p],
                                                                point_pixel, tclose, work[tw(j, W_R, p)])
                                    previous = work[tw(j, W_OMEGA, p)]
                                    work[tw(j, W_OMEGA, p)] = fresh if part[at(R_FRESH, p)] != R(0.0) else previous
                        fresh_captures = 0
                        for p in range(width):
                            if state[L.P_CAPTURE, p] == R(0.0) or os_thick:
                                fresh_captures += 1
                                part[at(R_FRESH, p)] = R(1.0)
                                parallax = dot3(state[L.P_DX, p], state[L.P_DY, p], state[L.P_DZ, p], ox, oy, oz)
                                state[L.P_CAPTURE, p] = capture_fraction(thick_tic, thickstep, mu, parallax)
                            else:
                                part[at(R_FRESH, p)] = R(0.0)
                        if fresh_captures > 0:
                            for j in range(nt):
                                if not moves_pixels(dg, j):
                                    continue
                                for p in range(width):
                                    if part[at(R_FRESH, p)] != R(0.0):
                                        parallax = dot3(state[L.P_DX, p], state[L.P_DY, p], state[L.P_DZ, p], ox, oy, oz)
                                        tparallax = (dot3(work[tw(j, W_DX, p)], work[tw(j, W_DY, p)], work[tw(j, W_DZ, p)],
                                                          ox, oy, oz)
                                                     + dot3(state[L.P_DX, p], state[L.P_DY, p], state[L.P_DZ, p],
                                                            dg[j, L.G_ODET], dg[j, L.G_ODET + 1], dg[j, L.G_ODET + 2]))
                                        work[tw(j, W_CAPTURE, p)] = capture_fraction_tangent(thick_tic, thickstep, mu,
                                                                                         parallax, tparallax)

                        for source in range(nsources):
                            ix = -sources[source, 0]
                            iy = -sources[source, 1]
                            iz = -sources[source, 2]
                            lam = sources[source, 3]
                            bx, by, bz = sources[source, 4], sources[source, 5], sources[source, 6]
                            ex, ey, ez = sources[source, 7], sources[source, 8], sources[source, 9]
                            kept = 0
                            fresh_polars = 0
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
                                fresh = keep and (polar == R(0.0) or os_polar)
                                fresh_polars += 1 if fresh else 0
                                part[at(R_FRESH, p)] = R(1.0) if fresh else R(0.0)
                                new = polarization_factor(kahn, ix, iy, iz, dx, dy, dz, bx, by, bz, ex, ey, ez)
                                state[L.P_POLAR, p] = new if fresh else polar
                            if kept == 0:
                                continue
                            if nt > 0 and fresh_polars > 0:
                                for p in range(width):
                                    gx, gy, gz = polarization_factor_gradient(kahn, ix, iy, iz, state[L.P_DX, p],
                                                                              state[L.P_DY, p], state[L.P_DZ, p], bx, by,
                                                                              bz, ex, ey, ez)
                                    part[at(R_TMP, p)] = gx
                                    part[at(R_TMP + 1, p)] = gy
                                    part[at(R_TMP + 2, p)] = gz
                                for j in range(nt):
                                    if not moves_pixels(dg, j):
                                        continue
                                    for p in range(width):
                                        fresh = (part[at(R_TMP, p)] * work[tw(j, W_DX, p)]
                                                 + part[at(R_TMP + 1, p)] * work[tw(j, W_DY, p)]
                                                 + part[at(R_TMP + 2, p)] * work[tw(j, W_DZ, p)])
                                        previous = work[tw(j, W_POLAR, p)]
                                        work[tw(j, W_POLAR, p)] = fresh if part[at(R_FRESH, p)] != R(0.0) else previous
                            if use_q:
                                for j in range(nt):
                                    if not moves_q(dg, dsources, j, source):
                                        continue
                                    tix, tiy, tiz = dsources[j, source, 0], dsources[j, source, 1], dsources[j, source, 2]
                                    tlam = dsources[j, source, 3]
                                    per_lam = R(1.0) / lam  # a product per pixel, not a division
                                    for p in range(width):
                                        work[tw(j, W_QX, p)] = ((work[tw(j, W_DX, p)] + tix - state[L.P_QX, p] * tlam)
                                                                 * per_lam)
                                        work[tw(j, W_QY, p)] = ((work[tw(j, W_DY, p)] + tiy - state[L.P_QY, p] * tlam)
                                                                 * per_lam)
                                        work[tw(j, W_QZ, p)] = ((work[tw(j, W_DZ, p)] + tiz - state[L.P_QZ, p] * tlam)
                                                                 * per_lam)
                            if scatter:
                                for p in range(width):
                                    factor = post * part[at(R_WEIGHT, p)]
                                    if not os_thick:
                                        factor *= state[L.P_CAPTURE, p]
                                    if not os_polar:
                                        factor *= state[L.P_POLAR, p]
                                    if not os_omega:
                                        factor *= state[L.P_OMEGA, p]
                                    part[at(R_FACTOR, p)] = factor

                            for e in range(evaluations):
                                lattice_strip(lattice, variant, e, state, width, shape, na, nb, nc, fudge, recip,
                                              scratch)
                                if general and sums:
                                    for p in range(width):
                                        part[at(R_SUM, p)] = state[L.P_I, p]
                                # the render's own addition (the tallies stand in for its trace, which
                                # a phi_tic of -1 and no tracing leave untouched)
                                if not general or plain:
                                    add_terms(state, tally, scratch, width, lattice, variant, e, -1, Fhkl, ip, h_min,
                                              k_min, l_min, h_span, k_span, l_span, default_F, water, shape, os_thick,
                                              os_polar, os_omega, tally, False, False)
                                else:
                                    add_terms(state, tally, scratch, width, lattice, variant, e, -1, Fhkl, ip, h_min,
                                              k_min, l_min, h_span, k_span, l_span, default_F, water, shape, os_thick,
                                              os_polar, os_omega, tally, True, False)
                                term_extras(state, scratch, part, width, Fhkl, h_min, k_min, l_min, h_span, k_span,
                                            l_span, water, interpolating, sums, scatter, Fgrad)
                                if per_term:
                                    add_shares(scratch, part, width, lattice, frames, variant, e, state, shape, na, nb,
                                               nc, fudge, recip, water)
                                    for jg in range(generic.shape[0]):
                                        add_generic(state, part, work, width, dlattice, jg, generic[jg], variant, e)
                                if general and sums:
                                    scale_by_sub_step_factors(state, scratch, part, work, width, nt, os_thick, os_polar,
                                                              os_omega, water)
                            if use_q:
                                for j in range(nt):
                                    if not moves_q(dg, dsources, j, source):
                                        continue
                                    for p in range(width):
                                        work[tw(j, W_I, p)] += (part[at(R_Q, p)] * work[tw(j, W_QX, p)]
                                                            + part[at(R_Q + 1, p)] * work[tw(j, W_QY, p)]
                                                            + part[at(R_Q + 2, p)] * work[tw(j, W_QZ, p)])
                                for p in range(width):
                                    part[at(R_Q, p)] = R(0.0)
                                    part[at(R_Q + 1, p)] = R(0.0)
                                    part[at(R_Q + 2, p)] = R(0.0)
                            for p in range(width):
                                if state[L.P_KEEP, p] != R(0.0):
                                    tally[L.T_RAN_PHI, p] = 1.0
                            variant = 1

            for j in range(nt):
                if use_shares and moves_any(dbase, j):
                    for p in range(width):
                        work[tw(j, W_I, p)] += (part[at(R_G, p)] * dbase[j, 0] + part[at(R_G + 1, p)] * dbase[j, 1]
                                            + part[at(R_G + 2, p)] * dbase[j, 2] + part[at(R_G + 3, p)] * dbase[j, 3]
                                            + part[at(R_G + 4, p)] * dbase[j, 4] + part[at(R_G + 5, p)] * dbase[j, 5]
                                            + part[at(R_G + 6, p)] * dbase[j, 6] + part[at(R_G + 7, p)] * dbase[j, 7]
                                            + part[at(R_G + 8, p)] * dbase[j, 8])
                if shape != 0:
                    for p in range(width):
                        work[tw(j, W_I, p)] += (part[at(R_N, p)] * dg[j, L.G_NA] + part[at(R_N + 1, p)] * dg[j, L.G_NB]
                                            + part[at(R_N + 2, p)] * dg[j, L.G_NC]
                                            + part[at(R_S, p)] * drecip[j, 0] + part[at(R_S + 1, p)] * drecip[j, 1]
                                            + part[at(R_S + 2, p)] * drecip[j, 2] + part[at(R_S + 3, p)] * drecip[j, 3]
                                            + part[at(R_S + 4, p)] * drecip[j, 4] + part[at(R_S + 5, p)] * drecip[j, 5]
                                            + part[at(R_S + 6, p)] * drecip[j, 6] + part[at(R_S + 7, p)] * drecip[j, 7]
                                            + part[at(R_S + 8, p)] * drecip[j, 8])
                tfluence = dg[j, L.G_RE2_FLUENCE]
                for p in range(width):
                    I = state[L.P_I, p]
                    value = g[L.G_RE2_FLUENCE] * I / g[L.G_STEPS]
                    tvalue = (tfluence * I + g[L.G_RE2_FLUENCE] * work[tw(j, W_I, p)]) / g[L.G_STEPS]
                    if not os_thick:
                        tvalue = tvalue * state[L.P_CAPTURE, p] + value * work[tw(j, W_CAPTURE, p)]
                        value *= state[L.P_CAPTURE, p]
                    if not os_polar:
                        tvalue = tvalue * state[L.P_POLAR, p] + value * work[tw(j, W_POLAR, p)]
                        value *= state[L.P_POLAR, p]
                    if not os_omega:
                        tvalue = tvalue * state[L.P_OMEGA, p] + value * work[tw(j, W_OMEGA, p)]
                    work[tw(j, W_VALUE, p)] = tvalue
            for p in range(width):
                value = g[L.G_RE2_FLUENCE] * state[L.P_I, p] / g[L.G_STEPS]
                close = g[L.G_RE2_FLUENCE] / g[L.G_STEPS]
                if not os_thick:
                    value *= state[L.P_CAPTURE, p]
                    close *= state[L.P_CAPTURE, p]
                if not os_polar:
                    value *= state[L.P_POLAR, p]
                    close *= state[L.P_POLAR, p]
                if not os_omega:
                    value *= state[L.P_OMEGA, p]
                    close *= state[L.P_OMEGA, p]
                state[L.P_VALUE, p] = value
                part[at(R_CLOSE, p)] = close

        return tangent_strip

    return SimpleNamespace(tangent_strip=make_strip(True), plain_tangent_strip=make_strip(False))

"""The reference's per-pixel loop, composing the physics of the other modules.

`render_strip` runs it for a strip of neighbouring pixels at once: the CPU kernel hands it up to
`layout.STRIP` pixels, so the innermost loops run across pixels and vectorise; the GPU kernel and
the trace hand it one pixel.  Each pixel still adds up its terms in the reference's order, so the
strip width never changes an image.  Rounding a Miller index to an integer goes through float64
(exact for a float32) because Numba calls the C library for a float32 floor, which costs more than
the conversion.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from . import layout as L


def make_pixel(jit, small, R, features, side_by_side, vectors, detector, lattice_transform, structure_factors, tracer):
    """`render_strip` and its per-pair `add_terms` (which the derivative strip calls too);
    `features` as `make_physics`'s; `side_by_side`: strips of several pixels."""
    # constants of the compiled code; with no key they leave every run-time choice in place
    FIXED = features is not None
    K_INTERPOLATE = bool(features.interpolate) if FIXED else True
    K_CURVED = bool(features.curved) if FIXED else False
    K_SIMPLE = bool(features.simple) if FIXED else False
    K_SHAPE = int(features.shape) if FIXED else 0
    K_OS_THICK = bool(features.oversample_thick) if FIXED else False
    K_OS_POLAR = bool(features.oversample_polar) if FIXED else False
    K_OS_OMEGA = bool(features.oversample_omega) if FIXED else False
    # the compiled functions close over the functions themselves: Numba cannot type a namespace
    dot3, unitize3, rotate_axis3 = vectors.dot3, vectors.unitize3, vectors.rotate_axis3
    polarization_factor, solid_angle = detector.polarization_factor, detector.solid_angle
    capture_fraction = detector.capture_fraction
    lattice_strip = lattice_transform.lattice_strip
    interpolate_F, in_table = structure_factors.interpolate_F, structure_factors.in_table
    interpolation_leaves_table = structure_factors.interpolation_leaves_table
    trace_row, trace_last, trace_evaluation = tracer.trace_row, tracer.trace_last, tracer.trace_evaluation

    @small
    def nearest_F(Fhkl, h0, k0, l0, h_min, k_min, l_min, h_span, k_span, l_span, default_F):
        """The structure factor of the reflection h0, k0, l0 (integral reals): the table's entry,
        or default_F outside it."""
        hi = int(h0) - h_min
        ki = int(k0) - k_min
        li = int(l0) - l_min
        return Fhkl[hi, ki, li] if in_table(hi, ki, li, h_span, k_span, l_span) else default_F

    @small
    def add_term(state, p, F_cell, F_latt, water):
        """Add one term to pixel p's sum, unless its source is cut or there is nothing to add; a
        select, not a branch, so that a loop of these runs pixels side by side."""
        I = state[L.P_I, p]
        added = state[L.P_KEEP, p] != R(0.0) and not (F_latt == R(0.0) and water == R(0.0))
        state[L.P_I, p] = I + F_cell * F_cell * F_latt * F_latt if added else I

    @small
    def add_terms(state, tally, scratch, width, lattice, variant, e, phi_tic, Fhkl, ip, h_min, k_min, l_min,
                  h_span, k_span, l_span, default_F, water, shape, os_thick, os_polar, os_omega, trace, general,
                  tracing):
        """Add pair `e`'s term to each kept pixel's sum (its structure factor kept in S_FCELL).
        `general` is a constant at each call: the plain case (no interpolation, no trace, no
        per-sub-step factors) compiles to lean loops."""
        if side_by_side and not general and h_span < 0:
            # no table: every structure factor is default_F, which no pixel has to look up
            for p in range(width):
                scratch[L.S_FCELL, p] = default_F
                add_term(state, p, default_F, scratch[L.S_FLATT, p], water)
            return
        if side_by_side and not general:
            # the structure factors first, in loops of their own: which pixels start a new
            # reflection, side by side (1 in their S_FCELL), then a lookup for those alone, the
            # others taking their left neighbour's (the compares and branches, in the loop that
            # adds the terms, kept it from running several pixels per instruction)
            scratch[L.S_FCELL, 0] = R(1.0)
            for p in range(1, width):
                same = (scratch[L.S_H0, p] == scratch[L.S_H0, p - 1] and scratch[L.S_K0, p] == scratch[L.S_K0, p - 1]
                        and scratch[L.S_L0, p] == scratch[L.S_L0, p - 1])
                scratch[L.S_FCELL, p] = R(0.0) if same else R(1.0)
            F_cell = default_F
            for p in range(width):
                if scratch[L.S_FCELL, p] != R(0.0):
                    F_cell = nearest_F(Fhkl, scratch[L.S_H0, p], scratch[L.S_K0, p], scratch[L.S_L0, p], h_min, k_min,
                                       l_min, h_span, k_span, l_span, default_F)
                scratch[L.S_FCELL, p] = F_cell
            for p in range(width):
                add_term(state, p, scratch[L.S_FCELL, p], scratch[L.S_FLATT, p], water)
            return
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
                F_cell = nearest_F(Fhkl, last_h0, last_k0, last_l0, h_min, k_min, l_min, h_span, k_span, l_span,
                                   default_F)
                last_F = F_cell
            scratch[L.S_FCELL, p] = F_cell
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

    def make_render_strip(general):
        """`render_strip`; without `general` (a constant of the compiled code) it renders a plain
        render alone (`Features.plain`: a flat detector, a parallelepiped crystal, nearest structure
        factors, one factor per pixel), with `add_terms`' plain path and no trace: the other paths
        are most of what Numba types and inlines, and seconds of a first compile.  Numba drops the
        branches on the constant before it inlines, so each test of `general` comes first
        (`not general` is a jump the other way)."""

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
            if general:
                shape = K_SHAPE if FIXED else ip[L.I_SHAPE]
                os_thick = K_OS_THICK if FIXED else ip[L.I_OVERSAMPLE_THICK] != 0
                os_polar = K_OS_POLAR if FIXED else ip[L.I_OVERSAMPLE_POLAR] != 0
                os_omega = K_OS_OMEGA if FIXED else ip[L.I_OVERSAMPLE_OMEGA] != 0
                curved = K_CURVED if FIXED else ip[L.I_CURVED] != 0
            else:  # a plain render's: constants, whose branches Numba drops (in inlined code too)
                shape = 0
                os_thick = False
                os_polar = False
                os_omega = False
                curved = False
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
            plain = not (tracing or os_thick or os_polar or os_omega or (K_INTERPOLATE and ip[L.I_INTERPOLATE] != 0))
            h_span = ip[L.I_H_SPAN]
            k_span = ip[L.I_K_SPAN]
            l_span = ip[L.I_L_SPAN]

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
                        if general and tracing:
                            trace_row(trace, L.TR_POS, state[L.P_X, 0], state[L.P_Y, 0], state[L.P_Z, 0],
                                      state[L.P_R, 0], state[L.P_OMEGA, 0])
                            trace_row(trace, L.TR_DIFFRACTED, state[L.P_DX, 0], state[L.P_DY, 0], state[L.P_DZ, 0],
                                      0.0, 0.0)

                        for p in range(width):
                            if state[L.P_CAPTURE, p] == R(0.0) or os_thick:
                                parallax = dot3(state[L.P_DX, p], state[L.P_DY, p], state[L.P_DZ, p], ox, oy, oz)
                                state[L.P_CAPTURE, p] = capture_fraction(thick_tic, thickstep, mu, parallax)

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
                            if general and tracing:
                                trace_last(trace, L.TL_Q, state[L.P_QX, 0], state[L.P_QY, 0], state[L.P_QZ, 0], 0.0, 0.0)
                            if general and first:
                                trace_row(trace, L.TR_INCIDENT, ix, iy, iz, lam, 0.0)
                                trace_row(trace, L.TR_SCATTERING, state[L.P_QX, 0], state[L.P_QY, 0], state[L.P_QZ, 0],
                                          0.0, 0.0)
                            if kept == 0:
                                continue

                            for e in range(evaluations):
                                lattice_strip(lattice, variant, e, state, width, shape, na, nb, nc, fudge, recip,
                                              scratch)
                                phi_tic = e // mosaic if first and e % mosaic == 0 else -1
                                if not general or plain:
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
            if general and tracing:
                trace_row(trace, L.TR_FINAL, state[L.P_I, 0], state[L.P_CAPTURE, 0], state[L.P_POLAR, 0],
                          state[L.P_OMEGA, 0], dot3(ix, iy, iz, state[L.P_DX, 0], state[L.P_DY, 0], state[L.P_DZ, 0]))

        return render_strip

    return SimpleNamespace(render_strip=make_render_strip(True), plain_render_strip=make_render_strip(False),
                           add_terms=add_terms)

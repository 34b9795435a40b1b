"""What a pixel makes of the rays that reach it: whether it is rendered at all (ROI and mask),
its solid angle, the fraction of a ray a sensor layer captures and the polarization factor of a
diffracted ray.  Each `*_tangent` (`*_gradient`) function is the derivative rule of the function it follows (see
`vectors`): the tangent of that function's value for tangents of its inputs (its gradient)."""

from __future__ import annotations

import math
from types import SimpleNamespace

from . import layout as L


def make_detector(jit, small, R, vectors):
    dot3, cross3, unitize3 = vectors.dot3, vectors.cross3, vectors.unitize3

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

    @jit
    def polarization_factor_gradient(kahn, ix, iy, iz, dx, dy, dz, bx, by, bz, ex, ey, ez):
        """d `polarization_factor` / d(dx, dy, dz), the diffracted unit vector (the incident vector
        and its basis belong to the source, which no parameter turns)."""
        cos2theta = dot3(ix, iy, iz, dx, dy, dz)
        sin2theta_sqr = R(1.0) - cos2theta * cos2theta
        cos2psi = R(1.0)
        along_e = R(0.0)
        along_b = R(0.0)
        if kahn != R(0.0):
            b_out = dot3(dx, dy, dz, bx, by, bz)
            e_out = dot3(dx, dy, dz, ex, ey, ez)
            norm = e_out * e_out + b_out * b_out
            if norm > R(0.0):
                cos2psi = (e_out * e_out - b_out * b_out) / norm
                # d cos2psi = 4 b e (b de - e db) / norm^2
                twist = R(-2.0) * kahn * sin2theta_sqr * b_out * e_out / (norm * norm)
                along_e = twist * b_out
                along_b = -twist * e_out
        along_i = cos2theta * (R(1.0) + kahn * cos2psi)
        return (along_i * ix + along_e * ex + along_b * bx, along_i * iy + along_e * ey + along_b * by,
                along_i * iz + along_e * ez + along_b * bz)

    @small
    def capture_fraction(thick_tic, thickstep, mu, parallax):
        """Fraction of the rays along a path of obliquity `parallax` that sensor layer
        `thick_tic` absorbs."""
        return (math.exp(R(-thick_tic) * thickstep * mu / parallax)
                - math.exp(R(-(thick_tic + 1)) * thickstep * mu / parallax))

    @jit
    def capture_fraction_tangent(thick_tic, thickstep, mu, parallax, tparallax):
        near = R(-thick_tic) * thickstep * mu
        far = R(-(thick_tic + 1)) * thickstep * mu
        return ((far * math.exp(far / parallax) - near * math.exp(near / parallax)) / (parallax * parallax)
                * tparallax)

    @small
    def solid_angle(pixel_size, close_distance, airpath, point_pixel):
        """Solid angle of a pixel (or sub-pixel) at distance `airpath`, with the obliquity of a
        flat detector; a point pixel is 1/R^2."""
        if point_pixel:
            return R(1.0) / airpath / airpath
        return pixel_size * pixel_size / airpath / airpath * close_distance / airpath

    @jit
    def solid_angle_tangent(omega, close_distance, airpath, point_pixel, tclose_distance, tairpath):
        """Tangent of `solid_angle` (value `omega`) for tangents of the close distance and the path.
        Both kinds of pixel are computed and one selected: a loop over pixels then holds no branch."""
        point = R(-2.0) * omega * tairpath / airpath
        flat = omega * (tclose_distance / close_distance - R(3.0) * tairpath / airpath)
        return point if point_pixel else flat

    @small
    def pixel_active(spixel, fpixel, ip, mask):
        """Inside the (inclusive) ROI and not masked out."""
        if (fpixel < ip[L.I_ROI_XMIN] or fpixel > ip[L.I_ROI_XMAX]
                or spixel < ip[L.I_ROI_YMIN] or spixel > ip[L.I_ROI_YMAX]):
            return False
        return ip[L.I_HAS_MASK] == 0 or mask[spixel, fpixel] != 0

    return SimpleNamespace(polarization_basis=polarization_basis, polarization_factor=polarization_factor,
                           polarization_factor_gradient=polarization_factor_gradient,
                           capture_fraction=capture_fraction, capture_fraction_tangent=capture_fraction_tangent,
                           solid_angle=solid_angle, solid_angle_tangent=solid_angle_tangent,
                           pixel_active=pixel_active)

"""Three-vectors as scalar triples: what the detector geometry, the curved detector and the
polarization are built from (and, through their Python originals, the host-side set-up)."""

from __future__ import annotations

import math
from types import SimpleNamespace


def make_vectors(jit, R):
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

    return SimpleNamespace(dot3=dot3, cross3=cross3, unitize3=unitize3, rotate_axis3=rotate_axis3,
                           rotate_xyz3=rotate_xyz3)

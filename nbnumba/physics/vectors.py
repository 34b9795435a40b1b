"""Three-vectors as scalar triples: what the detector geometry, the curved detector and the
polarization are built from (and, through their Python originals, the host-side set-up).

A `*_tangent` function beside a scalar function is its derivative rule (forward mode): it takes
the function's inputs and outputs, already computed by the function itself, and the tangents of
its inputs, and returns the tangents of its outputs.  It never recomputes the value."""

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
    def unitize3_tangent(mag, ux, uy, uz, tx, ty, tz):
        """Tangents of `unitize3`'s magnitude and unit vector for a tangent t of (x, y, z).  No
        branch (a zero vector's are selected zeros), so a loop over pixels runs them side by side."""
        tmag = ux * tx + uy * ty + uz * tz
        per_mag = R(1.0) / mag  # one division, not three
        tux = (tx - ux * tmag) * per_mag
        tuy = (ty - uy * tmag) * per_mag
        tuz = (tz - uz * tmag) * per_mag
        zero = mag == R(0.0)
        return (R(0.0) if zero else tmag, R(0.0) if zero else tux, R(0.0) if zero else tuy,
                R(0.0) if zero else tuz)

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
    def rotate_axis3_tangent(vx, vy, vz, ax, ay, az, phi, tvx, tvy, tvz, tax, tay, taz, tphi):
        """Tangent of `rotate_axis3` for tangents of v, of the axis a and of the angle phi."""
        sinphi = math.sin(phi)
        cosphi = math.cos(phi)
        along = ax * vx + ay * vy + az * vz
        talong = tax * vx + tay * vy + taz * vz + ax * tvx + ay * tvy + az * tvz
        turn = (R(1.0) - cosphi)
        cx, cy, cz = -az * vy + ay * vz, az * vx - ax * vz, -ay * vx + ax * vy
        tcx = -taz * vy - az * tvy + tay * vz + ay * tvz
        tcy = taz * vx + az * tvx - tax * vz - ax * tvz
        tcz = -tay * vx - ay * tvx + tax * vy + ax * tvy
        return ((tax * along + ax * talong) * turn + ax * along * sinphi * tphi + tvx * cosphi - vx * sinphi * tphi
                + tcx * sinphi + cx * cosphi * tphi,
                (tay * along + ay * talong) * turn + ay * along * sinphi * tphi + tvy * cosphi - vy * sinphi * tphi
                + tcy * sinphi + cy * cosphi * tphi,
                (taz * along + az * talong) * turn + az * along * sinphi * tphi + tvz * cosphi - vz * sinphi * tphi
                + tcz * sinphi + cz * cosphi * tphi)

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

    return SimpleNamespace(dot3=dot3, cross3=cross3, unitize3=unitize3, unitize3_tangent=unitize3_tangent,
                           rotate_axis3=rotate_axis3, rotate_axis3_tangent=rotate_axis3_tangent,
                           rotate_xyz3=rotate_xyz3)

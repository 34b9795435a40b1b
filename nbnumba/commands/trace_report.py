"""Trace one pixel and print its story as `TRACE_PY:` lines in the reference's keys and formats."""

from __future__ import annotations

import math

import numpy as np

from ..kernels.render import first_active_pixel, kernel_arrays
from ..model.simulation import R_E_SQR, Simulation
from ..physics import layout as L

RTD = 180.0 * (1.0 / math.pi)
CAPACITY = 200000


def _v(values) -> str:
    return " ".join(f"{float(v):.15g}" for v in values)


def trace_pixel(sim: Simulation, spixel: int, fpixel: int, precision: str = "double") -> tuple[float, np.ndarray]:
    """Run the scalar single-pixel kernel; returns (pixel value, trace rows)."""
    value, rows, _ = next(trace_pixels(sim, [(spixel, fpixel)], precision))
    return value, rows


def trace_pixels(sim: Simulation, pixels, precision: str = "double"):
    """(pixel value, trace rows, {layout.TL_* slot: values the pixel left there}) of each (slow,
    fast) pixel in turn, with the kernel's tables built once; the rows are a view into one
    buffer, valid until the next pixel."""
    from ..errors import UserError
    from ..kernels.trace import trace_pixel as kernel

    spixels, fpixels = sim.shape
    arrays = kernel_arrays(sim, precision)
    arrays["ints"][L.I_FIRST_PIXEL] = first_active_pixel(sim)
    rows = np.zeros((CAPACITY, L.TRACE_WIDTH))
    for spixel, fpixel in pixels:
        if not (0 <= spixel < spixels and 0 <= fpixel < fpixels):
            raise UserError(f"pixel (slow {spixel}, fast {fpixel}) is outside the {spixels}x{fpixels} detector")
        rows[0, 0] = 0.0
        rows[-L.TRACE_LAST:] = 0.0
        value = kernel(spixel, fpixel, arrays["geo"], arrays["ints"], arrays["sources"], arrays["lattice"],
                       arrays["recip"], arrays["Fhkl"], rows)
        last = {int(row[0]): row[1:] for row in rows[-L.TRACE_LAST:] if row[0] != 0.0}
        yield float(value), rows[1:int(rows[0, 0]) + 1], last


def trace_lines(sim: Simulation, value: float, rows: np.ndarray, prefix: str = "TRACE_PY") -> list[str]:
    det = sim.detector
    cr = sim.crystal
    p = sim.params
    out = []

    def line(key, *values):
        out.append(f"{prefix}: {key} {_v(values)}")

    for row in rows:
        code, v = int(row[0]), row[1:]
        if code == L.TR_POS:
            line("pix0_vector_meters", *det.pix0)
            line("fdet_vec", *det.fdet)
            line("sdet_vec", *det.sdet)
            line("pixel_pos_meters", *v[:3])
            line("R_distance_meters", v[3])
            line("omega_pixel_sr", v[4])
            line("close_distance_meters", det.close_distance)
            line("obliquity_factor", det.close_distance / v[3])
        elif code == L.TR_DIFFRACTED:
            line("diffracted_vec", *v[:3])
        elif code == L.TR_INCIDENT:
            line("incident_vec", *v[:3])
            line("lambda_meters", v[3])
            line("lambda_angstroms", v[3] * 1e10)
        elif code == L.TR_SCATTERING:
            line("scattering_vec_A_inv", *v[:3])
        elif code in (L.TR_A, L.TR_B, L.TR_C):
            line(f"rot_{'abc'[code - L.TR_A]}_angstroms", *(x * 1e10 for x in v[:3]))
            if code == L.TR_C:
                line("rot_a_star_A_inv", *cr.a_star)
                line("rot_b_star_A_inv", *cr.b_star)
                line("rot_c_star_A_inv", *cr.c_star)
        elif code == L.TR_HKL:
            line("hkl_frac", *v[:3])
        elif code == L.TR_HKL0:
            out.append(f"{prefix}: hkl_rounded {int(v[0])} {int(v[1])} {int(v[2])}")
        elif code == L.TR_FLATT:
            for name, x in zip(("F_latt_a", "F_latt_b", "F_latt_c", "F_latt"), v[:4]):
                line(name, x)
        elif code == L.TR_PHI:
            tic = int(v[0])
            phi = sim.phi0 + sim.phistep * tic
            out.append(f"{prefix}_PHI phi_tic={tic} phi_deg={phi * RTD:.15g} k_frac={v[2]:.15g} "
                       f"F_latt_b={v[3]:.15g} F_latt={v[4]:.15g}")
        elif code == L.TR_FCELL:
            line("F_cell", v[0])
        elif code == L.TR_FINAL:
            line("I_before_scaling", v[0])
            line("r_e_meters", math.sqrt(R_E_SQR))
            line("r_e_sqr", R_E_SQR)
            line("fluence_photons_per_m2", sim.fluence)
            out.append(f"{prefix}: steps {sim.steps}")
            out.append(f"{prefix}: oversample_thick {int(p.oversample_thick)}")
            out.append(f"{prefix}: oversample_polar {int(p.oversample_polar)}")
            out.append(f"{prefix}: oversample_omega {int(p.oversample_omega)}")
            line("capture_fraction", v[1])
            line("polar", v[2])
            line("omega_pixel", v[3])
            line("cos_2theta", v[4])
            line("I_pixel_final", value)
            line("floatimage_accumulated", np.float32(value))
    return out

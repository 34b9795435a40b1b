"""The trace: the reference's printed story of one pixel, recorded into a buffer of rows."""

from __future__ import annotations

from types import SimpleNamespace

from . import layout as L


def make_tracing(jit):
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

    return SimpleNamespace(trace_row=trace_row, trace_last=trace_last, trace_evaluation=trace_evaluation)

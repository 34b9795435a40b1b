"""Feature keys: the run-time choices a compiled `render_strip` can take as constants.

A GPU thread's registers are sized for the heaviest path its kernel holds, so the CUDA backend
compiles one kernel per feature key (without it, the tricubic interpolation alone costs ~80
registers where no pixel interpolates).  The CPU kernel takes one choice alone, whether the
render is plain (`Features.plain`), which takes seconds off the first compile of most runs;
everything else stays a run-time value there, and in the trace.
"""

from __future__ import annotations

from typing import NamedTuple

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

    @property
    def plain(self) -> bool:
        """A flat detector, a parallelepiped crystal, nearest structure factors and one factor per
        pixel: `plain_render_strip` renders it (the strip compiled for these alone; a trace takes
        the general strip, in the trace kernel)."""
        return not (self.interpolate or self.curved or self.shape != 0 or self.oversample_thick
                    or self.oversample_polar or self.oversample_omega)


def features_of(ints) -> Features:
    """The feature key of a render described by the integer parameters `ints`."""
    return Features(
        interpolate=bool(ints[L.I_INTERPOLATE] != 0), curved=bool(ints[L.I_CURVED] != 0),
        simple=bool(ints[L.I_SOURCES] == 1 and ints[L.I_THICKSTEPS] == 1 and ints[L.I_OVERSAMPLE] == 1),
        shape=int(ints[L.I_SHAPE]), oversample_thick=bool(ints[L.I_OVERSAMPLE_THICK] != 0),
        oversample_polar=bool(ints[L.I_OVERSAMPLE_POLAR] != 0),
        oversample_omega=bool(ints[L.I_OVERSAMPLE_OMEGA] != 0))

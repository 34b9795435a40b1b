"""The CPU renders strips of neighbouring pixels together; every pixel of a strip must come out
exactly as that pixel rendered alone (the trace kernel renders strips of one pixel)."""

from __future__ import annotations

import numpy as np
import pytest
from golden import CASES, case_dir

from nbnumba import api
from nbnumba.commands.trace_report import trace_pixel
from nbnumba.physics import layout as L

# every per-pixel switch of the loop: sub-pixel factors, curved detector, interpolation, mask,
# ROI, resolution cut, sensor layers, several sources, crystal shape, water, point pixel, mosaic
STRIP_CASES = ["oversample_3_flags", "curved_det", "hkl_interpolate", "mask_header", "roi", "dmin",
               "absorption", "sourcefile", "xtal_round", "water", "point_pixel", "mosaic_seeded",
               "polar_kahn", "supervisor_roi"]


def sample_pixels(sim, count: int, seed: int) -> list[tuple[int, int]]:
    """Pixels spread over the rendered region: its corners, the first rendered pixel, a strip's
    last and next pixel, and random ones."""
    xmin, xmax, ymin, ymax = sim.detector.roi
    spixels, fpixels = sim.shape
    x0, x1, y0, y1 = max(xmin, 0), min(xmax, fpixels - 1), max(ymin, 0), min(ymax, spixels - 1)
    picks = [(y0, x0), (y0, x1), (y1, x0), (y1, x1), (y0, min(x0 + 1, x1)),
             (y0, min(x0 + L.STRIP - 1, x1)), (y0, min(x0 + L.STRIP, x1))]
    rng = np.random.default_rng(seed)
    picks += [(int(rng.integers(y0, y1 + 1)), int(rng.integers(x0, x1 + 1))) for _ in range(count)]
    if sim.mask is not None:
        picks = [(s, f) for s, f in picks if sim.mask[s, f] != 0]
    return picks


@pytest.mark.parametrize("precision", ["double", "single"])
@pytest.mark.parametrize("name", STRIP_CASES)
def test_a_strip_renders_each_pixel_as_alone(name, precision, tmp_path, monkeypatch):
    monkeypatch.chdir(case_dir(tmp_path))
    sim = api.simulation(CASES[name]["args"])
    image = api.render(sim, precision=precision).image
    picks = sample_pixels(sim, 12, seed=len(name))
    assert len(picks) >= 8
    alone = np.array([trace_pixel(sim, s, f, precision)[0] for s, f in picks], dtype=np.float32)
    strip = np.array([image[s, f] for s, f in picks])
    assert np.array_equal(alone, strip), (picks, alone, strip)
    assert strip.max() > 0

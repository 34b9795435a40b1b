"""One geometry per image: the -bg_ group's background is rendered on the spots' detector, so its
rings are centred on the spots' direct beam in every convention, with a rotated detector, two-theta
and either pivot.

The background's sample here scatters with F proportional to sin(theta)/lambda, so its image is
zero where the direct beam meets the detector and grows as the square of the distance from it
(times a solid angle and a polarization that vary slowly): the minimum of a quadratic fitted
around the darkest pixel is the ring centre, to a small fraction of a pixel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nbnumba import api
from nbnumba.amorphous.chain import add_background
from golden import invoke

PIXEL = 0.5  # mm
PIXELS = 48
DISTANCE = 50.0  # mm
SPOTS = ["-cell", "50", "60", "70", "90", "90", "90", "-default_F", "1", "-N", "1", "-lambda", "1",
         "-distance", str(DISTANCE), "-detpixels", str(PIXELS), "-pixel", str(PIXEL), "-oversample", "1",
         "-fluence", "1e24"]


@pytest.fixture(scope="module")
def linear_table(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("table") / "linear.stol"
    path.write_text("".join(f"{s:g} {100 * s:g}\n" for s in np.linspace(0.0, 1.0, 21)))
    return str(path)


def ring_centre(image: np.ndarray) -> tuple[float, float]:
    """(slow, fast) in pixels from the detector's corner (pixel i spans i to i + 1) of the
    minimum of a quadratic fitted to the 5 x 5 pixels around the darkest one."""
    s0, f0 = np.unravel_index(np.argmin(image), image.shape)
    assert 2 <= s0 < image.shape[0] - 2 and 2 <= f0 < image.shape[1] - 2, "the beam is off the detector"
    ds, df = (a.ravel() for a in np.mgrid[-2:3, -2:3])
    values = image[s0 - 2:s0 + 3, f0 - 2:f0 + 3].astype(np.float64).ravel()
    design = np.stack([np.ones_like(ds), ds, df, ds * ds, ds * df, df * df], axis=1).astype(np.float64)
    _, bs, bf, css, csf, cff = np.linalg.lstsq(design, values, rcond=None)[0]
    slow, fast = np.linalg.solve([[2 * css, csf], [csf, 2 * cff]], [-bs, -bf])
    return s0 + 0.5 + slow, f0 + 0.5 + fast


def background(flags: list[str], table: str) -> tuple[np.ndarray, object]:
    sim = api.simulation([*SPOTS, *flags, "-bg_stol", table, "-bg_thick", "0.1"])
    zeros = np.zeros((sim.detector.spixels, sim.detector.fpixels), dtype=np.float32)
    return add_background(sim, zeros), sim.detector


def beam_on_detector(det) -> tuple[float, float]:
    """(slow, fast) pixels from the corner where the spots' direct beam meets their detector plane:
    the line through the sample along the beam, cut with the plane through pix0 normal to odet."""
    pix0, beam, odet = (np.array(v) for v in (det.pix0, det.beam, det.odet))
    hit = beam * (pix0 @ odet) / (beam @ odet) - pix0
    return hit @ np.array(det.sdet) / det.pixel_size, hit @ np.array(det.fdet) / det.pixel_size


SIZE = PIXELS * PIXEL  # mm
# each convention with a beam centre off the detector's diagonal, and where its own rule puts the
# beam, (slow, fast) in pixels from the corner
CONVENTIONS = {
    "MOSFLM": (["-mosflm", "-Xbeam", "9", "-Ybeam", "15"], ((9 + PIXEL / 2) / PIXEL, (15 + PIXEL / 2) / PIXEL)),
    "DENZO": (["-denzo", "-Xbeam", "9", "-Ybeam", "15"], (9 / PIXEL, 15 / PIXEL)),
    "ADXV": (["-adxv", "-Xbeam", "9", "-Ybeam", "13"], ((SIZE - 13) / PIXEL, 9 / PIXEL)),
    "XDS": (["-xds", "-ORGX", "18.5", "-ORGY", "30.5"], (30.0, 18.0)),
    "DIALS": (["-dials", "-ORGX", "18.5", "-ORGY", "30.5"], (30.0, 18.0)),
    # custom axes: fast along +y, slow along +z, the beam along x
    "CUSTOM": (["-fdet_vector", "0", "1", "0", "-sdet_vector", "0", "0", "1", "-odet_vector", "1", "0", "0",
                "-beam_vector", "1", "0", "0", "-Xbeam", "9", "-Ybeam", "15"], (15 / PIXEL, 9 / PIXEL)),
}


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_ring_centre_is_the_beam_centre_in_every_convention(convention, linear_table):
    flags, expected = CONVENTIONS[convention]
    image, det = background(flags, linear_table)
    assert det.convention == convention
    assert expected[0] != expected[1]
    centre = ring_centre(image)
    assert beam_on_detector(det) == pytest.approx(expected, abs=1e-9)
    assert centre == pytest.approx(expected, abs=0.5), (centre, expected)
    assert centre == pytest.approx(expected, abs=0.05)  # the fit's own accuracy, far inside half a pixel


@pytest.mark.parametrize("flags", [
    ["-mosflm", "-Xbeam", "9", "-Ybeam", "15", "-detector_rotx", "4", "-detector_roty", "-3", "-detector_rotz", "7"],
    ["-mosflm", "-Xbeam", "9", "-Ybeam", "15", "-twotheta", "5"],
    [*CONVENTIONS["CUSTOM"][0], "-detector_rotz", "7", "-twotheta", "5", "-pivot", "sample"],
    ["-xds", "-ORGX", "18.5", "-ORGY", "30.5", "-detector_rotx", "3", "-detector_roty", "4"],
    ["-dials", "-ORGX", "18.5", "-ORGY", "30.5", "-twotheta", "4"],
    ["-adxv", "-Xbeam", "9", "-Ybeam", "13", "-detector_roty", "5"],
    ["-denzo", "-Xbeam", "9", "-Ybeam", "15", "-detector_rotx", "6"],
], ids=["mosflm-rot", "mosflm-twotheta", "custom-sample-pivot", "xds-rot", "dials-twotheta", "adxv-rot", "denzo-rot"])
def test_ring_centre_follows_a_rotated_detector(flags, linear_table):
    """Rotations move the beam on the detector only about the sample pivot (XDS, DIALS, or -pivot
    sample with custom axes; MOSFLM, DENZO and ADXV pivot about the beam); wherever it lands, the
    background's centre is there."""
    image, det = background(flags, linear_table)
    expected = beam_on_detector(det)
    centre = ring_centre(image)
    assert centre == pytest.approx(expected, abs=0.05), (centre, expected)


def test_rotation_about_the_sample_moves_the_beam(linear_table):
    """The rotated cases above are not the unrotated ones: about the sample, the beam moves by
    many pixels, and the background moves with it."""
    plain = ring_centre(background(CONVENTIONS["XDS"][0], linear_table)[0])
    turned = ring_centre(background([*CONVENTIONS["XDS"][0], "-detector_roty", "5"], linear_table)[0])
    assert math.dist(plain, turned) > 5


def test_run_writes_the_water_ring_around_the_spots_beam(tmp_path, linear_table):
    """The issue's case: `run` with Xbeam != Ybeam writes a background centred on the spots' beam
    (slow 100.5, fast 175.5 pixels for -Xbeam 20 -Ybeam 35 at 0.2 mm), not on the transposed
    point nonBragg's reading of the same flags gives (slow 175, fast 100)."""
    flags = ["-cell", "50", "60", "70", "90", "90", "90", "-default_F", "1e-30", "-lambda", "1", "-N", "5",
             "-distance", "100", "-detpixels", "256", "-pixel", "0.2", "-Xbeam", "20", "-Ybeam", "35",
             "-oversample", "1", "-bg_stol", linear_table, "-bg_thick", "0.1", "-floatfile", "bg.bin",
             "-nonoise", "-nopgm", "-noprogress"]
    result = invoke("run", flags, tmp_path)
    assert result.exit_code == 0, result.output
    image = np.fromfile(tmp_path / "bg.bin", dtype="<f4").reshape(256, 256)
    assert ring_centre(image) == pytest.approx((100.5, 175.5), abs=0.05)

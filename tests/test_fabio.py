"""fabio, a reader written independently of nbnumba and nanoBragg, opens nbnumba's SMV images."""

from __future__ import annotations

import numpy as np
import pytest
from golden import CASES, GOLDEN, case_dir, invoke

from nbnumba.io.smv import read_smv

fabio = pytest.importorskip("fabio")

OUTPUTS = ["-floatfile", "float.bin", "-intfile", "int.img", "-noisefile", "noise.img", "-nopgm", "-noprogress"]


def render(name: str, tmp_path, args=None):
    cwd = case_dir(tmp_path)
    result = invoke("run", [*(CASES[name]["args"] if args is None else args), *OUTPUTS], cwd)
    assert result.exit_code == 0, result.output
    return cwd


def header_number(image, key: str) -> float:
    return float(str(image.header[key]).rstrip(";"))


@pytest.mark.parametrize("name", ["simple_cubic", "rect_detector"])
def test_fabio_reads_int_and_noise_images(name, tmp_path):
    cwd = render(name, tmp_path)
    slow, fast = CASES[name]["shape"]
    for output in ("int.img", "noise.img"):
        ours = read_smv(cwd / output)
        theirs = fabio.open(str(cwd / output))
        assert theirs.data.shape == (slow, fast)
        assert theirs.data.dtype == np.uint16
        assert np.array_equal(theirs.data, ours.data), output
    # The reference's own int image, read by the same independent reader, has the same pixels.
    reference = fabio.open(str(GOLDEN / "cases" / name / "int.img"))
    assert np.array_equal(fabio.open(str(cwd / "int.img")).data, reference.data)
    assert fabio.open(str(cwd / "int.img")).data.any()  # not trivially equal because all zero


def test_fabio_parses_header_values(tmp_path):
    cwd = render("rect_detector", tmp_path)  # -distance 100 -detpixels_x 160 -detpixels_y 96 -pixel 0.1
    image = fabio.open(str(cwd / "int.img"))
    expected = {"HEADER_BYTES": 512, "SIZE1": 160, "SIZE2": 96, "PIXEL_SIZE": 0.1, "DISTANCE": 100.0,
                "WAVELENGTH": 6.2, "OSC_RANGE": 0.0,
                # MOSFLM convention: the beam centre is the detector's centre plus half a pixel.
                "BEAM_CENTER_X": 96 * 0.1 / 2 + 0.05, "BEAM_CENTER_Y": 160 * 0.1 / 2 + 0.05}
    for key, value in expected.items():
        assert header_number(image, key) == pytest.approx(value, rel=1e-6), key
    # Every key fabio sees agrees with the reference's header for the same case.
    reference = fabio.open(str(GOLDEN / "cases" / "rect_detector" / "int.img"))
    assert dict(image.header) == dict(reference.header)


def test_fabio_reads_a_1024_byte_header(tmp_path):
    # The supervisor geometry's header values need 518 bytes; -roi keeps the render small.
    name = "supervisor_roi"
    cwd = render(name, tmp_path)
    ours = read_smv(cwd / "int.img")
    assert ours.header_size == 1024
    image = fabio.open(str(cwd / "int.img"))
    assert header_number(image, "HEADER_BYTES") == 1024
    assert image.data.shape == (2527, 2463)
    assert np.array_equal(image.data, ours.data)
    # A reader that took the pixels from byte 512 would shift them by 256 pixels; the lit ones
    # must stay inside the -roi (fast 620..749, slow 980..1099).
    slow, fast = np.nonzero(image.data)
    assert slow.size and slow.min() >= 980 and slow.max() <= 1099 and fast.min() >= 620 and fast.max() <= 749
    expected = {"SIZE1": 2463, "SIZE2": 2527, "PIXEL_SIZE": 0.172, "DISTANCE": 231.275, "WAVELENGTH": 0.9768,
                "OSC_RANGE": 0.1, "BEAM_CENTER_X": 217.742, "BEAM_CENTER_Y": 213.907}
    for key, value in expected.items():
        assert header_number(image, key) == pytest.approx(value, rel=1e-6), key
    noise = fabio.open(str(cwd / "noise.img"))
    assert np.array_equal(noise.data, read_smv(cwd / "noise.img").data)

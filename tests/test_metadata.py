"""The files say what a processing program needs: the NXmx fields of polarization, exposure,
trusted range and ADC offset from the run's flags, and with -fix_smv_keys the SMV keys dxtbx's
readers take the ADC offset and exposure from (DIALS reads them back in test_dials.py)."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from golden import invoke

from nbnumba.io.nexus import stokes
from nbnumba.io.smv import read_smv, smv_value

FLAGS = ("-cell 100 100 100 90 90 90 -default_F 100 -lambda 1 -N 3 -distance 100 -detpixels 16 -pixel 0.1 "
         "-nopgm -noprogress -seed 3 -floatfile f.bin").split()


@pytest.mark.parametrize("vector, expected", [([], (1.0, 0.8, 0.0, 0.0)),
                                               (["-polar_vector", "0", "1", "0"], (1.0, -0.8, 0.0, 0.0))],
                         ids=["default-axis", "vertical-axis"])
def test_nxmx_says_the_polarization_exposure_trusted_range_and_offset(tmp_path, vector, expected):
    result = invoke("run", [*FLAGS, "-polar", "0.8", *vector, "-exposure", "2.5", "-adc", "25",
                            "-intfile", "i.img", "-noisefile", "n.img", "-nexus", "a.nxs"], tmp_path)
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "a.nxs", "r") as f:
        beam, det = f["entry/instrument/beam"], f["entry/instrument/detector"]
        # nanoBragg's default E-vector is its lab z, NeXus's -x: the polarization is horizontal
        assert beam["incident_polarisation_stokes"][()] == pytest.approx(expected, abs=1e-12)
        assert det["count_time"][()] == det["frame_time"][()] == 2.5
        assert det["count_time"].attrs["units"] == "s"
        assert (det["underload_value"][()], det["saturation_value"][()]) == (0, 65535)
        assert det["adc_offset"][()] == 25.0
        noise = f["entry/data/data"][0]
    # the offset the file declares is the one in its pixels: the noise image's dark pixels
    assert np.array_equal(noise, read_smv(tmp_path / "n.img").data) and noise.min() >= 25


def test_stokes_vector_of_an_axis_at_an_angle():
    angle = math.radians(30.0)
    assert stokes(0.5, (math.cos(angle), math.sin(angle), 0.0)) == pytest.approx(
        (1.0, 0.5 * math.cos(2 * angle), 0.5 * math.sin(2 * angle), 0.0))
    assert stokes(0.0, (1.0, 0.0, 0.0)) == (1.0, 0.0, 0.0, 0.0)  # nanoBragg's unpolarized default


def test_smv_keys_switch_adds_the_offset_and_exposure_and_nothing_else(tmp_path):
    base = [*FLAGS, "-adc", "25", "-exposure", "2.5", "-nonoise"]
    assert invoke("run", [*base, "-intfile", "plain.img"], tmp_path).exit_code == 0
    assert invoke("run", [*base, "-intfile", "keys.img", "-fix_smv_keys"], tmp_path).exit_code == 0
    plain, keys = read_smv(tmp_path / "plain.img"), read_smv(tmp_path / "keys.img")
    assert np.array_equal(plain.data, keys.data)
    assert "ADC_OFFSET" not in plain.header and "TIME" not in plain.header  # nanoBragg's header by default
    assert [smv_value(keys.header, k) for k in ("ADC_OFFSET", "IMAGE_PEDESTAL", "TIME")] == [25.0, 25.0, 2.5]
    extra = [line for line in keys.header.splitlines() if line not in plain.header.splitlines() and line.strip()]
    assert extra == ["ADC_OFFSET=25;", "IMAGE_PEDESTAL=25;", "TIME=2.5;"]
    assert "BEAMLINE=fake;" in keys.header  # still read as nanoBragg's images

"""`nbnumba noisify` against the reference's recorded outputs (../shared/suite/noisify) and the
pipeline's last step (../shared/suite/pipeline); bad inputs; the fixing switches."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from golden import invoke

from nbnumba.response import ResponseParams, apply_detector_response

SUITE = Path(__file__).resolve().parents[1].parent / "shared" / "suite"
MANIFEST = json.loads((SUITE / "manifest.json").read_text())["cases"] if SUITE.exists() else {}
CASES = sorted(name for name, case in MANIFEST.items() if case["program"] == "noisify")
needs_suite = pytest.mark.skipif(not SUITE.exists(), reason="corpus ../shared/suite not present")


def suite_dir(tmp_path: Path) -> Path:
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    return tmp_path


def output_flags(files: dict) -> list[str]:
    """The runner's output flags (suite README): where no int image was recorded it went to
    the reference's default name."""
    flags = ["-intfile", "int.img"] if "int" in files else []
    flags += ["-noisefile", "noise.img"] if "noise" in files else ["-nonoise"]
    flags += ["-pgmfile", "image.pgm"] if "pgm" in files else ["-nopgm"]
    return flags


def smv(path: Path) -> tuple[bytes, np.ndarray]:
    raw = path.read_bytes()
    header = raw[:512]
    dtype = "<u4" if b"TYPE=long_integer" in header else "<u2"
    return header, np.frombuffer(raw[512:], dtype=dtype)


def stdout_lines(text: str) -> list[str]:
    # the reference's default seed is the time, so that line differs
    return [line for line in text.splitlines() if not line.startswith("  seed: ")]


@needs_suite
@pytest.mark.parametrize("name", CASES)
def test_noisify_case(name, tmp_path):
    case = MANIFEST[name]
    ref = SUITE / name
    cwd = suite_dir(tmp_path)
    result = invoke("noisify", [*case["args"], *output_flags(case["files"])], cwd)
    assert result.exit_code == 0, result.output
    assert stdout_lines(result.output) == stdout_lines((ref / "stdout.txt").read_text())
    for kind in ("int", "noise"):
        if kind not in case["files"]:
            continue
        ref_header, ref_pixels = smv(ref / case["files"][kind])
        header, pixels = smv(cwd / case["files"][kind])
        assert header == ref_header
        if kind == "noise":
            assert np.array_equal(pixels, ref_pixels)
        else:
            assert np.abs(pixels.astype(np.int64) - ref_pixels).max() <= 1
    if "pgm" in case["files"]:
        assert (cwd / "image.pgm").read_bytes() == (ref / "image.pgm").read_bytes()


@needs_suite
def test_pipeline_noisify_step(tmp_path):
    """The pipeline's last step on its recorded float sum gives its int and noise images exactly."""
    pipeline = json.loads((SUITE / "pipeline" / "pipeline.json").read_text())
    step = next(s for s in pipeline["steps"] if s["program"] == "noisify")
    (tmp_path / "sum.bin").write_bytes(gzip.decompress((SUITE / "pipeline" / "sum.bin.gz").read_bytes()))
    result = invoke("noisify", step["args"], tmp_path)
    assert result.exit_code == 0, result.output
    for name in ("int.img", "noise.img"):
        assert (tmp_path / name).read_bytes() == (SUITE / "pipeline" / name).read_bytes()


@needs_suite
def test_pipeline_through_the_api():
    """The same step through apply_detector_response, as a render's detector effects will use it."""
    image = np.frombuffer(gzip.decompress((SUITE / "pipeline" / "sum.bin.gz").read_bytes()), "<f4")
    params = ResponseParams(pixel_size=0.2e-3, readout_noise=2, flicker_noise=0.01, calibration_noise=0.02,
                            calib_seed=-7, psf="gauss", psf_fwhm=100e-6, seed=-5)
    result = apply_detector_response(image.reshape(128, 128), params)
    assert np.array_equal(result.noise_image.reshape(-1), smv(SUITE / "pipeline" / "noise.img")[1])
    assert np.array_equal(result.int_image.reshape(-1), smv(SUITE / "pipeline" / "int.img")[1])

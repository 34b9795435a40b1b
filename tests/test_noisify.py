"""`nbnumba noisify` against the reference's recorded outputs (data/suite/noisify) and the
pipeline's last step (data/suite/pipeline); bad inputs; the fixing switches."""

from __future__ import annotations

import gzip
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from golden import invoke

from nbnumba.response.model import ResponseParams, apply_detector_response

SUITE = Path(__file__).resolve().parent / "data" / "suite"
MANIFEST = json.loads((SUITE / "manifest.json").read_text())["cases"]
CASES = sorted(name for name, case in MANIFEST.items() if case["program"] == "noisify")


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
    # the reference's default seed is the time, so that line differs; nbnumba names itself
    return [line for line in text.splitlines() if not line.startswith(("  seed: ", "nbnumba "))]


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


def test_pipeline_noisify_step(tmp_path):
    """The pipeline's last step on its recorded float sum gives its int and noise images exactly."""
    pipeline = json.loads((SUITE / "pipeline" / "pipeline.json").read_text())
    step = next(s for s in pipeline["steps"] if s["program"] == "noisify")
    (tmp_path / "sum.bin").write_bytes(gzip.decompress((SUITE / "pipeline" / "sum.bin.gz").read_bytes()))
    result = invoke("noisify", step["args"], tmp_path)
    assert result.exit_code == 0, result.output
    for name in ("int.img", "noise.img"):
        assert (tmp_path / name).read_bytes() == (SUITE / "pipeline" / name).read_bytes()


def test_pipeline_through_the_api():
    """The same step through apply_detector_response, as a render's detector effects will use it."""
    image = np.frombuffer(gzip.decompress((SUITE / "pipeline" / "sum.bin.gz").read_bytes()), "<f4")
    params = ResponseParams(pixel_size=0.2e-3, readout_noise=2, flicker_noise=0.01, calibration_noise=0.02,
                            calib_seed=-7, psf="gauss", psf_fwhm=100e-6, seed=-5)
    result = apply_detector_response(image.reshape(128, 128), params)
    assert np.array_equal(result.noise_image.reshape(-1), smv(SUITE / "pipeline" / "noise.img")[1])
    assert np.array_equal(result.int_image.reshape(-1), smv(SUITE / "pipeline" / "int.img")[1])


# --- the PSF against a plain transcription of the reference's loop -------------------------------

def loop_psf(image, kind, fwhm, user_radius=0, wraps=True):
    """The reference's scatter, source by source in scan order (dx outer, dy inner), in plain
    Python: radius per source, lost light added back evenly, float32 after every addition."""
    from nbnumba.response.psf import GAUSS, auto_radius, kernel

    height, width = image.shape
    src = image.reshape(-1)
    g = fwhm * 0.652383013252053
    biggest = max(width, height)
    radius = user_radius if user_radius > 0 else auto_radius(kind, fwhm, float(src.max()))
    radius = min(max(radius, 1), biggest)
    weights = kernel(kind, fwhm, radius)
    out = np.zeros(src.size, np.float32)
    lost_total = 0.0
    for i, v in enumerate(src.astype(np.float64)):
        if v <= 0:
            continue
        if user_radius:
            r = user_radius
        elif kind == GAUSS:
            reach = -math.log(math.sqrt(v) / 10.0 / v) / math.log(16)
            r = 1 + math.ceil(math.sqrt(reach) * fwhm) if reach >= 0 else 1
        else:
            r = 1 + math.ceil(g * (v / (math.sqrt(v) / 10.0)))
        r = min(max(r, 1), biggest)
        lost_total += (v * math.exp(-math.log(16) * (r / fwhm) ** 2) if kind == GAUSS
                       else v * g / math.sqrt(g * g + r * r))
        x0, y0 = i % width, i // width
        for dx in range(-r, r + 1):
            for dy in range(-r, r + 1):
                if dx * dx + dy * dy > r * r or abs(dx) > radius or abs(dy) > radius:
                    continue
                w = weights[radius + dy, radius + dx]
                x, y = x0 + dx, y0 + dy
                if w == 0 or x < 0 or x > (width if wraps else width - 1) or y < 0:
                    continue
                j = y * width + x
                if j < src.size:
                    out[j] = np.float32(np.float64(out[j]) + v * w)
    out = (out.astype(np.float64) + lost_total / src.size).astype(np.float32)
    return out.reshape(height, width), lost_total


PSF_CASES = {
    # counts with zeros, the automatic Gaussian radius
    "counts_gauss_auto": (lambda r: r.poisson(3.0, (9, 11)).astype(np.float32), "gauss", 1.3, 0),
    # faint pixels (< 0.01 photons), on which the reference crashes: radius 1 here
    "faint_gauss_auto": (lambda r: (r.random((8, 10)) ** 4 * 50).astype(np.float32), "gauss", 1.0, 0),
    "fiber_radius": (lambda r: (r.random((7, 12)) * 100).astype(np.float32), "fiber", 0.8, 3),
    # circles wider than the image: two offsets of one source land on one target
    "wide_gauss": (lambda r: (r.random((4, 5)) * 10).astype(np.float32), "gauss", 2.5, 6),
    "wide_fiber": (lambda r: (r.random((5, 3)) * 10).astype(np.float32), "fiber", 1.5, 4),
}


@pytest.mark.parametrize("name", sorted(PSF_CASES))
@pytest.mark.parametrize("wraps", [True, False], ids=["reference_edge", "fix_psf_edge"])
def test_psf_equals_the_reference_loop(name, wraps):
    from nbnumba.response.psf import KINDS, apply_psf

    make, kind, fwhm, radius = PSF_CASES[name]
    image = make(np.random.default_rng(len(name)))
    ours, report = apply_psf(image, KINDS[kind], fwhm, radius, fix_edge=not wraps)
    expected, lost = loop_psf(image, KINDS[kind], fwhm, radius, wraps)
    assert np.array_equal(ours, expected)
    assert report.lost == pytest.approx(lost, rel=1e-12)


def test_psf_light_past_the_right_edge_wraps_to_the_next_row():
    from nbnumba.response.psf import GAUSS, apply_psf, kernel

    image = np.zeros((8, 16), np.float32)
    image[3, 15] = 1e6
    wrapped, _ = apply_psf(image, GAUSS, 1.0, 2)
    fixed, report = apply_psf(image, GAUSS, 1.0, 2, fix_edge=True)
    spill = np.float32(1e6 * kernel(GAUSS, 1.0, 2)[2, 3])  # dx = +1, dy = 0
    even = report.lost / image.size
    assert wrapped[4, 0] == np.float32(np.float64(spill) + even)
    assert fixed[4, 0] == np.float32(even)
    assert np.array_equal(np.delete(wrapped.reshape(-1), [3 * 16 + 16 + k * 16 for k in (-1, 0, 1)]),
                          np.delete(fixed.reshape(-1), [3 * 16 + 16 + k * 16 for k in (-1, 0, 1)]))


# --- the reference's defects: reproduced by default, each with its switch ------------------------

def run_noisify(tmp_path: Path, image: np.ndarray, *flags: str):
    image.astype("<f4").tofile(tmp_path / "in.bin")
    height, width = image.shape
    args = ["-floatfile", "in.bin", "-detpixels_x", str(width), "-detpixels_y", str(height), "-nopgm",
            "-intfile", "int.img", "-noisefile", "noise.img", *flags]
    result = invoke("noisify", args, tmp_path)
    assert result.exit_code == 0, result.output
    return result


def test_int32_image_clips_at_65535_unless_fixed(tmp_path):
    image = np.full((4, 4), 1e8)
    run_noisify(tmp_path, image, "-bits", "32", "-nonoise", "-seed", "1")
    assert set(smv(tmp_path / "int.img")[1]) == {65535}
    run_noisify(tmp_path, image, "-bits", "32", "-nonoise", "-seed", "1", "-fix_int32_clip")
    assert set(smv(tmp_path / "int.img")[1]) == {100000040}


def calibration_pattern(seed: int, fix: bool) -> np.ndarray:
    # 1e5 photons: Poisson noise of 0.3 %, well under the 3 % calibration error
    params = ResponseParams(photon_scale=1e5, bits=32, seed=-seed, adc_offset=0.0, fix_calib_stream=fix)
    noise = apply_detector_response(np.ones((48, 48), np.float32), params).noise_image
    return noise.reshape(-1) / 1e5 - 1


def test_calibration_error_follows_the_noise_seed_unless_fixed():
    """The reference shares one ran1 table between the two seeds, so its 'static' calibration
    error changes with -seed; with -fix_calib_stream it is the same for every seed."""
    shared = np.corrcoef(calibration_pattern(1, False), calibration_pattern(2, False))[0, 1]
    own = np.corrcoef(calibration_pattern(1, True), calibration_pattern(2, True))[0, 1]
    assert abs(shared) < 0.2
    assert own > 0.98  # all but the Poisson part: 0.03² / (0.03² + 1e-5)
    assert np.std(calibration_pattern(1, True)) == pytest.approx(0.03, rel=0.1)


def test_imported_header_keeps_its_type_unless_fixed(tmp_path):
    cwd = suite_dir(tmp_path)
    args = MANIFEST["noisify/header_import"]["args"] + ["-bits", "32", "-nopgm", "-intfile", "int.img",
                                                         "-noisefile", "noise.img"]
    assert invoke("noisify", args, cwd).exit_code == 0
    copied = (cwd / "noise.img").read_bytes()
    assert copied[:512] == (SUITE / "inputs" / "header.img").read_bytes()[:512]
    assert invoke("noisify", [*args, "-fix_header_type"], cwd).exit_code == 0
    fixed = (cwd / "noise.img").read_bytes()
    assert len(fixed) == 512 + 4 * 128 * 96
    assert b"TYPE=long_integer;" in fixed[:512] and b"unsigned_short" not in fixed[:512]
    assert fixed[512:] == copied[512:]


# --- bad inputs: one line, exit 2, nothing written -----------------------------------------------

GOOD = ["-floatfile", "in.bin", "-detpixels", "8", "-nopgm", "-intfile", "int.img", "-noisefile", "noise.img",
        "-seed", "1"]


def test_good_command_writes_its_files(tmp_path):
    np.ones((8, 8), "<f4").tofile(tmp_path / "in.bin")
    result = invoke("noisify", GOOD, tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ["in.bin", "int.img", "noise.img"]


def edit(args: list[str], flag: str, *values: str) -> list[str]:
    """GOOD with ``flag``'s value replaced (no values: removed), or appended when absent."""
    if flag not in args:
        return [*args, flag, *values]
    i = args.index(flag)
    return args[:i] + ([flag, *values] if values else []) + args[i + 2:]


BAD = {
    "no_input": (edit(GOOD, "-floatfile"), "-floatfile"),
    "missing_input": (edit(GOOD, "-floatfile", "nope.bin"), "nope.bin"),
    "unknown_flag": ([*GOOD, "-readot", "3"], "-readout"),
    "stray_argument": ([*GOOD, "extra"], "extra"),
    "missing_value": ([*GOOD, "-readout"], "-readout"),
    "not_a_number": ([*GOOD, "-gain", "two"], "-gain"),
    "infinite": ([*GOOD, "-scale", "inf"], "-scale"),
    "bits": ([*GOOD, "-bits", "8"], "-bits"),
    "psf_type": ([*GOOD, "-psf", "lorentz"], "-psf"),
    "psf_fwhm": ([*GOOD, "-psf", "gauss", "-psf_fwhm", "-50"], "-psf_fwhm"),
    "psf_radius": ([*GOOD, "-psf", "gauss", "-psf_radius", "-1"], "-psf_radius"),
    "psf_radius_fraction": ([*GOOD, "-psf_radius", "2.5"], "-psf_radius"),
    "negative_readout": ([*GOOD, "-readout", "-3"], "-readout"),
    "pixel": ([*GOOD, "-pixel", "0"], "-pixel"),
    "detpixels": (edit(GOOD, "-detpixels", "0"), "-detpixels"),
    "too_few_floats": (edit(GOOD, "-detpixels", "9"), "in.bin"),
    "seed_range": (edit(GOOD, "-seed", "3000000000"), "-seed"),
    "header_not_smv": ([*GOOD, "-header", "in.bin"], "in.bin"),
    "missing_header": ([*GOOD, "-header", "nope.img"], "nope.img"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input(name, tmp_path):
    args, mention = BAD[name]
    np.ones((8, 8), "<f4").tofile(tmp_path / "in.bin")
    result = invoke("noisify", args, tmp_path)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("nbnumba: error: ") and mention in lines[0], result.output
    assert os.listdir(tmp_path) == ["in.bin"]


def test_header_without_size(tmp_path):
    header = b"{\nHEADER_BYTES=512;\nDIM=2;\n}\f".ljust(512, b" ")
    (tmp_path / "h.img").write_bytes(header)
    np.ones((8, 8), "<f4").tofile(tmp_path / "in.bin")
    result = invoke("noisify", [*GOOD, "-header", "h.img"], tmp_path)
    assert result.exit_code == 2 and "SIZE1" in result.output
    assert sorted(os.listdir(tmp_path)) == ["h.img", "in.bin"]


def test_nan_pixel_under_the_psf(tmp_path):
    image = np.ones((8, 8), "<f4")
    image[2, 3] = np.nan
    image.tofile(tmp_path / "in.bin")
    result = invoke("noisify", [*GOOD, "-psf", "gauss", "-psf_fwhm", "100"], tmp_path)
    assert result.exit_code == 2 and "not finite" in result.output
    assert os.listdir(tmp_path) == ["in.bin"]


def test_unwritable_output(tmp_path):
    np.ones((8, 8), "<f4").tofile(tmp_path / "in.bin")
    result = invoke("noisify", edit(GOOD, "-noisefile", "no/such/dir/noise.img"), tmp_path)
    assert result.exit_code == 1 and "no/such/dir" in result.output
    assert os.listdir(tmp_path) == ["in.bin"]


def test_synonyms_and_the_positional_input(tmp_path):
    """The reference's spellings: -psf_sigma/-psf_width, -readnoise, -floatimage, -noiseimage, and
    a bare argument naming floatimage.bin."""
    cwd = suite_dir(tmp_path)
    os.symlink(SUITE / "inputs" / "spots_128.bin", cwd / "floatimage.bin")
    common = ["-detpixels", "128", "-scale", "10", "-psf", "gauss", "-seed", "7", "-nopgm", "-intfile", "int.img"]
    assert invoke("noisify", [*common, "-floatfile", "inputs/spots_128.bin", "-psf_fwhm", "150", "-readout", "2",
                              "-noisefile", "a.img"], cwd).exit_code == 0
    assert invoke("noisify", [*common, "floatimage.bin", "-psf_width", "150", "-readnoise", "2",
                              "-noiseimage", "b.img"], cwd).exit_code == 0
    assert invoke("noisify", [*common, "-floatimage", "floatimage.bin", "-psf_sigma", "150", "-readnoise", "2",
                              "-noiseimage", "c.img"], cwd).exit_code == 0
    assert (cwd / "a.img").read_bytes() == (cwd / "b.img").read_bytes() == (cwd / "c.img").read_bytes()

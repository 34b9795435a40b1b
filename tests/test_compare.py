"""`nbnumba compare` and the PNG writer: metrics on images whose answers are known."""

from __future__ import annotations

import gzip
import json
import re
import struct
import zlib

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from golden import CASES, GOLDEN, case_dir, invoke, output_flags

from nbnumba.cli import main
from nbnumba.commands.compare import compare_images, local_maxima, match_peaks
from nbnumba.io.png import SIGNATURE, colorize, png_bytes, write_png
from nbnumba.io.smv import SMVFields, write_smv

SHAPE = (64, 80)  # (slow, fast): not square, so a swapped axis would show
# (slow, fast, height) of well separated spots with distinct heights, so the top-N order is fixed.
SPOTS = [(10, 12, 100.0), (12, 60, 90.0), (30, 30, 80.0), (50, 15, 70.0), (52, 66, 60.0), (25, 50, 50.0)]


def spot_image(shift=(0, 0)) -> np.ndarray:
    slow, fast = np.mgrid[0:SHAPE[0], 0:SHAPE[1]].astype(np.float64)
    image = np.zeros(SHAPE)
    for s, f, height in SPOTS:
        image += height * np.exp(-((slow - s - shift[0]) ** 2 + (fast - f - shift[1]) ** 2) / (2 * 1.5**2))
    return image.astype(np.float32)


def save(path, image: np.ndarray):
    np.ascontiguousarray(image, dtype="<f4").tofile(path)
    return str(path)


def run_compare(*args):
    return CliRunner().invoke(main, ["compare", *map(str, args)])


def shape_args():
    return ["--shape", SHAPE[0], SHAPE[1]]


def parse_png(data: bytes) -> dict:
    """Decode our PNGs by hand, checking every structural rule a reader relies on."""
    assert data[:8] == SIGNATURE
    at, chunks = 8, []
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        at += 12 + length
    assert at == len(data)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height, depth, color, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, compression, filtering, interlace) == (8, 0, 0, 0)
    channels = {0: 1, 2: 3}[color]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + width * channels)
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + width * channels)
    assert not rows[:, 0].any()  # filter type 0 on every scanline, so the bytes are the pixels
    return {"width": width, "height": height, "channels": channels,
            "pixels": rows[:, 1:].reshape(height, width, channels)}


# --- PNG writer ---------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
def test_png_round_trip(channels):
    rng = np.random.default_rng(0)
    shape = (7, 13) if channels == 1 else (7, 13, 3)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    decoded = parse_png(png_bytes(pixels))
    assert (decoded["width"], decoded["height"], decoded["channels"]) == (13, 7, channels)
    assert np.array_equal(decoded["pixels"].reshape(shape), pixels)


def test_png_readable_by_pillow(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    pixels = colorize(spot_image(), "grey")
    write_png(tmp_path / "x.png", pixels)
    with image_module.open(tmp_path / "x.png") as im:
        assert im.size == (SHAPE[1], SHAPE[0]) and im.mode == "RGB"
        assert np.array_equal(np.asarray(im), pixels)


def test_png_rejects_bad_pixels():
    with pytest.raises(TypeError):
        png_bytes(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError):
        png_bytes(np.zeros((2, 2, 4), dtype=np.uint8))


def test_colormaps():
    grey = colorize(np.array([[0.0, 5.0, 10.0, 20.0]]), "grey", vmin=0.0, vmax=10.0)
    assert grey[0, :, 0].tolist() == [0, 128, 255, 255] and (grey[..., 0] == grey[..., 2]).all()
    div = colorize(np.array([[-2.0, 0.0, 2.0]]), "diverging", vmax=2.0)
    assert div[0].tolist() == [[0, 0, 255], [255, 255, 255], [255, 0, 0]]


# --- metrics ------------------------------------------------------------------------------------

def test_identical_images(tmp_path):
    a = save(tmp_path / "a.bin", spot_image())
    result = run_compare(a, a, *shape_args(), "--peaks", len(SPOTS), "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "s.json").read_text())["metrics"]
    assert (m["correlation"], m["rmse"], m["max_abs_diff"], m["ratio"]) == (1.0, 0.0, 0.0, 1.0)
    assert m["peaks"]["found_a"] == len(SPOTS) and m["peaks"]["max_distance"] == 0.0
    assert "correlation" in result.output and "PASS" in result.output


def test_scaled_copy(tmp_path):
    image = spot_image()
    # A power of two scales every float exactly, so the ratio of the sums is exact too.
    a, b = save(tmp_path / "a.bin", image), save(tmp_path / "b.bin", image * 4)
    result = run_compare(a, b, *shape_args(), "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "s.json").read_text())["metrics"]
    assert m["ratio"] == 4.0
    assert m["correlation"] == pytest.approx(1.0, abs=1e-12)
    assert m["peaks"]["within_1px"] == 1.0 and m["peaks"]["mean_distance"] == 0.0


def test_shifted_copy_matches_peaks_at_one_pixel():
    m = compare_images(spot_image().astype(np.float64), spot_image(shift=(0, 1)).astype(np.float64),
                       peaks=len(SPOTS))
    p = m["peaks"]
    assert p["matched"] == len(SPOTS)
    assert p["mean_distance"] == 1.0 and p["max_distance"] == 1.0 and p["within_1px"] == 1.0
    assert all(pair["b"] == [pair["a"][0], pair["a"][1] + 1] for pair in p["pairs"])


def test_noise_against_peaks_fails(tmp_path):
    noise = np.random.default_rng(1).uniform(0, 100, SHAPE)
    a, b = save(tmp_path / "a.bin", spot_image()), save(tmp_path / "b.bin", noise)
    result = run_compare(a, b, *shape_args(), "--threshold", "0.999")
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output


def test_roi_restricts(tmp_path):
    image = spot_image()
    other = image.copy()
    other[:, 40:] = np.random.default_rng(2).uniform(0, 100, (SHAPE[0], SHAPE[1] - 40))
    a, b = save(tmp_path / "a.bin", image), save(tmp_path / "b.bin", other)
    assert run_compare(a, b, *shape_args()).exit_code == 1
    result = run_compare(a, b, *shape_args(), "--roi", 0, 39, 5, 60, "--peaks", 3, "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["roi"] == [0, 39, 5, 60]
    assert summary["metrics"]["pixels"] == 40 * 56
    assert summary["metrics"]["correlation"] == 1.0
    # Peaks are reported in whole-image coordinates, and only those inside the ROI count.
    inside = sorted([s, f] for s, f, _ in SPOTS if f <= 39 and 5 <= s <= 60)
    assert sorted(pair["a"] for pair in summary["metrics"]["peaks"]["pairs"]) == inside


def test_formats_agree(tmp_path):
    """The same pixels as raw .bin (square, shape inferred), .bin.gz, TIFF and SMV."""
    pixels = np.arange(48 * 48, dtype=np.float32).reshape(48, 48) % 1000
    raw = save(tmp_path / "a.bin", pixels)
    (tmp_path / "a.bin.gz").write_bytes(gzip.compress(pixels.astype("<f4").tobytes()))
    tifffile.imwrite(tmp_path / "a.tif", pixels)
    fields = {name: 0.0 for name in SMVFields.__dataclass_fields__} | {"dials_origin_mm": (0.0, 0.0, 0.0)}
    write_smv(tmp_path / "a.img", pixels.astype(np.uint16), fields)
    for other in ("a.bin.gz", "a.tif", "a.img"):
        result = run_compare(raw, tmp_path / other, "--threshold", "1")
        assert result.exit_code == 0, (other, result.output)
        assert re.search(r"^rmse\s+0$", result.output, re.MULTILINE), result.output


def test_png_previews_and_json(tmp_path):
    a, b = save(tmp_path / "a.bin", spot_image()), save(tmp_path / "b.bin", spot_image(shift=(1, 0)))
    result = run_compare(a, b, *shape_args(), "--png-dir", tmp_path / "png", "--json", tmp_path / "s.json")
    assert result.exit_code == 1  # a one-pixel shift of sharp spots is far from correlation 0.999
    summary = json.loads((tmp_path / "s.json").read_text())
    assert set(summary["previews"]["files"]) == {"a", "b", "diff"}
    for name in ("a", "b", "diff"):
        decoded = parse_png((tmp_path / "png" / f"{name}.png").read_bytes())
        assert (decoded["height"], decoded["width"]) == SHAPE
    a_png = parse_png((tmp_path / "png" / "a.png").read_bytes())["pixels"]
    assert a_png.max() == 255 and a_png.min() == 0
    diff = parse_png((tmp_path / "png" / "diff.png").read_bytes())["pixels"]
    # B - A has both signs: red (B brighter) and blue (A brighter) pixels are both there.
    assert ((diff[..., 0] == 255) & (diff[..., 2] < 128)).any()
    assert ((diff[..., 2] == 255) & (diff[..., 0] < 128)).any()


def test_local_maxima_and_matching():
    peaks = local_maxima(spot_image().astype(np.float64), 3)
    assert peaks.tolist() == [[s, f] for s, f, _ in SPOTS[:3]]
    assert local_maxima(np.zeros((5, 5)), 10).shape == (0, 2)  # a flat image has no peaks
    pairs = match_peaks(np.array([[0, 0], [10, 10]]), np.array([[10, 11], [0, 2], [50, 50]]))
    assert sorted(pairs) == [(0, 1, 2.0), (1, 0, 1.0)]


# --- bad input ----------------------------------------------------------------------------------

def one_line_error(result):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbnumba: error:"), result.stderr
    return lines[0]


def test_bad_inputs(tmp_path):
    a = save(tmp_path / "a.bin", spot_image())
    assert "cannot read" in one_line_error(run_compare(tmp_path / "missing.bin", a, *shape_args()))
    assert "--shape" in one_line_error(run_compare(a, a))  # 64x80 is not square
    (tmp_path / "short.bin").write_bytes(b"\0" * 100)
    assert "bytes" in one_line_error(run_compare(a, tmp_path / "short.bin", *shape_args()))
    (tmp_path / "junk.img").write_bytes(b"not an image" * 100)
    assert "SMV" in one_line_error(run_compare(tmp_path / "junk.img", a))
    assert "--roi" in one_line_error(run_compare(a, a, *shape_args(), "--roi", 0, 80, 0, 10))
    square = save(tmp_path / "sq.bin", np.zeros((8, 8), np.float32))
    assert "differ in shape" in one_line_error(run_compare(square, tmp_path / "short.bin"))  # 8x8 vs 5x5


# --- against the reference ----------------------------------------------------------------------

def test_golden_reference_against_own_render(tmp_path):
    name = "simple_cubic"
    cwd = case_dir(tmp_path)
    assert invoke("run", [*CASES[name]["args"], *output_flags(name)], cwd).exit_code == 0
    slow, fast = CASES[name]["shape"]
    result = run_compare(GOLDEN / "cases" / name / "float.bin.gz", cwd / "float.bin", "--shape", slow, fast,
                         "--threshold", "0.999999", "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "s.json").read_text())["metrics"]
    assert m["correlation"] >= 0.999999
    assert m["ratio"] == pytest.approx(1.0, rel=1e-6)
    assert m["peaks"]["within_1px"] == 1.0

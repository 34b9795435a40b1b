"""`nbnumba nonbragg -img`: fitting the -stol table's rows to an SMV image.

Against nonBragg's recorded outputs (tests/data/nonbragg_img/reference, command lines in its
README), against an independent numpy computation of the pixels' F, bins and statistics, and
bad inputs."""

from __future__ import annotations

import math
import shlex
import shutil
from pathlib import Path

import golden
import numpy as np
import pytest

from nbnumba.amorphous.rejection import mean_with_rejection, median_with_rejection, reference_mean

DATA = Path(__file__).parent / "data" / "nonbragg_img"
INPUTS = ["water_coarse.stol", "water_coarse.4stol", "water64.img", "tilted48x40.img"]
SAMPLE = ["-thickness", "0.1", "-density", "1", "-MW", "18", "-flux", "1e12", "-exposure", "1", "-beamsize", "0.1",
          "-seed", "5", "-noprogress", "-nonoise", "-nopgm", "-floatfile", "float.bin", "-intfile", "int.img"]
WATER64 = ["-stol", "water_coarse.stol", "-img", "water64.img", *SAMPLE]
R_E_SQR = 7.94079248018965e-30
MOLECULES = 1e-4 ** 3 * 1e6 * 6.02214179e23 / 18.0
FLUENCE = 1e12 / 1e-4 / 1e-4


def reference_commands() -> dict[str, list[str]]:
    """The nonBragg command lines the README of the data folder gives for each recorded case."""
    commands = {}
    for line in (DATA / "README.md").read_text().splitlines():
        if line.startswith("reference/"):
            name, command = line.split(":", 1)
            words = shlex.split(command)
            if words[0] == "nonBragg":
                commands[name.split("/", 1)[1]] = words[1:]
    return commands


@pytest.fixture
def folder(tmp_path):
    for name in INPUTS:
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


def invoke(args: list[str], cwd: Path):
    return golden.invoke("nonbragg", args, cwd)


def read_table(path: Path) -> np.ndarray:
    """stol, mean, rmsd, median, mad, n per line."""
    return np.array([[float(v) for v in line.split()] for line in path.read_text().splitlines()]).reshape(-1, 6)


@pytest.mark.parametrize("name", ["water64", "tilted"])
def test_matches_nonbragg(folder, name):
    args = reference_commands()[name]
    result = invoke(args, folder)
    assert result.exit_code == 0, result.output
    recorded = DATA / "reference" / name
    table = next(recorded.glob("*.stol")).name
    assert (folder / table).read_bytes() == (recorded / table).read_bytes()
    expected = [line for line in (recorded / "stdout.txt").read_text().splitlines()
                if not line.startswith("writing image.pgm")]
    printed = [line for line in result.stdout.splitlines() if not line.startswith("nbnumba ")]
    assert printed == expected
    assert f"wrote {table} as {len((recorded / table).read_text().splitlines())} lines of text" in printed


# --- an independent computation of the fit of water64.img (flat detector, one source, no oversampling)

def header(path: Path) -> dict[str, float]:
    text = path.read_bytes()[:512].decode("latin-1")
    return {k: float(v) for k, v in (item.strip().split("=") for item in text[2:text.index("}")].split(";")[:-1])
            if k not in ("BYTE_ORDER", "TYPE", "BEAMLINE")}


def pixel_F(path: Path, image: np.ndarray, at: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's F (rounded to float, as nonBragg keeps it) and sin(theta)/lambda (1/A) by the
    textbook geometry from the header, at the point `at` pixels along both axes."""
    h = header(path)
    pixel, wavelength = h["PIXEL_SIZE"] / 1000, h["WAVELENGTH"] * 1e-10
    spixels = image.shape[0]
    xbeam, ybeam = h["BEAM_CENTER_X"] / 1000, spixels * pixel - h["BEAM_CENTER_Y"] / 1000
    distance = h["CLOSE_DISTANCE"] / 1000
    s, f = np.indices(image.shape)
    # beam along +x, fast axis +z, slow axis -y; pivot on the beam spot
    x = np.full(image.shape, distance)
    y = ybeam - (s + at) * pixel
    z = (f + at) * pixel - xbeam
    r = np.sqrt(x * x + y * y + z * z)
    cos2theta = x / r
    stol = 0.5 * np.sqrt((x / r - 1) ** 2 + (y / r) ** 2 + (z / r) ** 2) / wavelength
    omega = pixel * pixel / r ** 2 * distance / r
    polar = 0.5 * (1 + cos2theta ** 2)
    photons = (image.astype(np.float64) - 40.0) / 1.0
    F = np.sign(photons) * np.sqrt(np.abs(photons) / polar / omega / FLUENCE / R_E_SQR / MOLECULES)
    return F.astype(np.float32).astype(np.float64), stol / 1e10


def rows_of(table: Path) -> np.ndarray:
    return np.loadtxt(table)[:, 0]


def binned(F: np.ndarray, stol: np.ndarray, rows: np.ndarray, valid: np.ndarray) -> list[np.ndarray]:
    """The values of each table row, each pixel in the row nearest its sin(theta)/lambda."""
    nearest = np.abs(stol[valid][:, None] - rows[None, :]).argmin(axis=1)
    return [F[valid][nearest == k] for k in range(len(rows))]


def naive_median(values) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) + 1) // 2 - 1]


def naive_median_rejection(values, sigma):
    kept = list(values)
    while True:
        m = naive_median(kept)
        mad = naive_median([abs(v - m) for v in kept])
        survivors = [v for v in kept if abs(v - m) <= sigma * mad]
        if len(survivors) == len(kept):
            return m, mad, kept
        kept = survivors


def naive_mean_rejection(values, sigma):
    kept = list(values)
    start = len(kept)
    while True:
        avg = sum(kept) / len(kept)
        rmsd = math.sqrt(sum((v - avg) ** 2 for v in kept) / len(kept))
        worst = max(range(len(kept)), key=lambda i: abs(kept[i] - avg))
        if len(kept) <= start / 2 or abs(kept[worst] - avg) <= sigma * rmsd:
            return avg, rmsd, kept
        del kept[worst]


def hot_image(folder: Path) -> np.ndarray:
    """water64.img with 40 hot pixels (60000 ADU) and 20 dead ones (the ADC offset: F = 0)."""
    raw = bytearray((folder / "water64.img").read_bytes())
    image = np.frombuffer(bytes(raw[512:]), dtype="<u2").reshape(64, 64).copy()
    rng = np.random.default_rng(3)
    spots = rng.choice(image.size, 60, replace=False)
    image.ravel()[spots[:40]] = 60000
    image.ravel()[spots[40:]] = 40
    (folder / "hot.img").write_bytes(bytes(raw[:512]) + image.astype("<u2").tobytes())
    return image


def test_fit_against_numpy(folder):
    """nonBragg's default: every pixel of a row kept, mean and rmsd; the median and MAD it never
    computes print as 0; rows of at most 100 pixels are warnings."""
    image = hot_image(folder)
    result = invoke(["-stol", "water_coarse.stol", "-img", "hot.img", *SAMPLE[:-4], "-floatfile", "f.bin",
                     "-intfile", "i.img", "-stolout", "fit.stol"], folder)
    assert result.exit_code == 0, result.output
    F, stol = pixel_F(folder / "hot.img", image)
    rows = rows_of(folder / "water_coarse.stol")
    bins = binned(F, stol, rows, np.ones(image.shape, bool))
    fitted = read_table(folder / "fit.stol")
    expected = []
    for k, values in enumerate(bins):
        if len(values) > 100:
            expected.append([rows[k], values.mean(), values.std(), 0.0, 0.0, len(values)])
        else:
            assert f"bin= {k + 2} n={len(values)} " in result.stdout
    expected = np.array(expected)
    assert len(fitted) == len(expected) >= 5
    assert np.array_equal(fitted[:, [0, 3, 4, 5]], expected[:, [0, 3, 4, 5]])
    assert np.allclose(fitted[:, 1:3], expected[:, 1:3], rtol=2e-5, atol=0)
    assert (fitted[:, 2] > 0.3).sum() >= len(fitted) - 1  # the hot pixels are in (rejected below: < 0.35)
    # nonBragg's mean and rms then divide by the last row's count (0 here: the sum itself)
    floats = np.fromfile(folder / "f.bin", dtype="<f4").astype(np.float64)
    assert f"mean= {floats.sum():g} " in result.stdout


def test_fix_reject_against_numpy(folder):
    image = hot_image(folder)
    args = ["-stol", "water_coarse.stol", "-img", "hot.img", *SAMPLE, "-stolout", "fit.stol", "-fix_reject",
            "-roi", "2", "61", "3", "60", "-fix_roi", "-ignore", str(int(image[30, 30])), "-fix_stats"]
    result = invoke(args, folder)
    assert result.exit_code == 0, result.output
    F, stol = pixel_F(folder / "hot.img", image)
    valid = np.zeros(image.shape, bool)
    valid[3:61, 2:62] = True
    valid &= image != image[30, 30]
    rows = rows_of(folder / "water_coarse.stol")
    fitted = read_table(folder / "fit.stol")
    expected = []
    for k, values in enumerate(binned(F, stol, rows, valid)):
        if not len(values):
            continue
        m, mad, kept = naive_median_rejection(values, 6.0)
        avg, rmsd, kept = naive_mean_rejection(kept, 6.0)
        if len(kept) > 100:
            expected.append([rows[k], avg, rmsd, m, mad, len(kept)])
    expected = np.array(expected)
    assert len(fitted) == len(expected) >= 5
    assert np.array_equal(fitted[:, [0, 5]], expected[:, [0, 5]])
    assert np.allclose(fitted[:, 1:5], expected[:, 1:5], rtol=2e-5, atol=0)
    assert (fitted[:, 2] < 0.35).all() and (fitted[:, 4] > 0).all()  # outliers gone, MADs computed
    # image minus model after rejection: median and MAD, then mean, rms and rmsd (4 sigma)
    model = np.fromfile(folder / "float.bin", dtype="<f4").reshape(image.shape)
    diff = (image.astype(np.float32) - model)[valid].astype(np.float64)
    m, mad, kept = naive_median_rejection(diff, 6.0)
    avg, rmsd, kept = naive_mean_rejection(kept, 4.0)
    rms = math.sqrt(sum(v * v for v in kept) / len(kept))
    head = "difference from input image after outlier rejection:"
    lines = [line for line in result.stdout.splitlines() if line.startswith(head)]
    assert lines == [f"{head} median= {m:g} mad= {mad:g} ( {len(naive_median_rejection(diff, 6.0)[2])} pixels)",
                     f"{head} mean= {avg:g} rms= {rms:g} rmsd= {rmsd:g} ( {len(kept)} pixels)"]
    # -fix_stats: the mean over the ROI's pixels
    assert f"mean= {model[3:61, 2:62].astype(np.float64).mean():g} " in result.stdout


def test_fix_steps_and_noreject(folder):
    """-oversample 2 gives F sqrt(4) times too large unless -fix_steps; -noreject keeps every pixel."""
    image = np.frombuffer((folder / "water64.img").read_bytes()[512:], dtype="<u2").reshape(64, 64)
    tables = {}
    for extra in ([], ["-fix_steps"]):
        result = invoke([*WATER64, "-oversample", "2", "-stolout", "fit.stol", "-fix_reject", "-noreject", *extra],
                        folder)
        assert result.exit_code == 0, result.output
        assert "difference from input image" not in result.stdout
        tables[bool(extra)] = read_table(folder / "fit.stol")
    assert np.allclose(tables[False][:, 1:5], 2 * tables[True][:, 1:5], rtol=2e-5)
    # the last sub-pixel (3/4 of the way across each pixel) stands for the pixel
    F, stol = pixel_F(folder / "water64.img", image, at=0.75)
    bins = [b for b in binned(F, stol, rows_of(folder / "water_coarse.stol"), np.ones(image.shape, bool))
            if len(b) > 100]
    assert tables[True][:, 5].tolist() == [len(b) for b in bins]  # nothing rejected
    assert np.allclose(tables[True][:, 1], [b.mean() for b in bins], rtol=2e-5, atol=0)
    assert np.allclose(tables[True][:, 2], [b.std() for b in bins], rtol=2e-5, atol=0)
    assert np.allclose(tables[True][:, 3], [naive_median(b) for b in bins], rtol=2e-5, atol=0)


def test_kernel_keeps_the_last_subpixel_and_source():
    """Background.last: the sin(theta)/lambda and polarization of the last wavelength at the last
    sub-pixel, and that sub-pixel's solid angle (nonBragg's loop variables after the loop)."""
    from nbnumba.commands import nonbragg
    from nbnumba.model.nonbragg import build
    from nbnumba.physics import amorphous_layout as A

    nb = build(["-stol", str(DATA / "water_coarse.stol"), "-lambda", "1", "-distance", "60", "-detpixels_x", "6",
                "-detpixels_y", "5", "-pixel", "0.4", "-oversample", "3", "-dispersion", "4", "-dispsteps", "3"])
    last = nonbragg.background(nb, "cpu", last=True).last
    wavelength = nb.source_table[-1, A.S_LAMBDA]
    assert len(nb.source_table) == 3 and wavelength > 1e-10
    det = nb.detector
    s, f = np.indices((5, 6))
    sub = det.pixel_size / 3
    fdet, sdet = sub * (3 * f + 2) + sub / 2, sub * (3 * s + 2) + sub / 2
    pos = np.array(det.pix0)[:, None, None] + fdet * np.array(det.fdet)[:, None, None] \
        + sdet * np.array(det.sdet)[:, None, None]
    r = np.sqrt((pos ** 2).sum(axis=0))
    d = pos / r
    stol = 0.5 * np.sqrt((d[0] - 1) ** 2 + d[1] ** 2 + d[2] ** 2) / wavelength
    assert np.allclose(last[..., 0], stol, rtol=1e-13, atol=0)
    assert np.allclose(last[..., 1], 0.5 * (1 + d[0] ** 2), rtol=1e-13, atol=0)
    assert np.allclose(last[..., 2], det.pixel_size ** 2 / r ** 2 * det.close_distance / r, rtol=1e-13, atol=0)


def test_rejection_functions_against_naive_loops():
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(5.0, 0.1, 300), [9.0, 12.0, -3.0, 5.9]]).astype(np.float32)
    rng.shuffle(values)
    m, mad, kept = median_with_rejection(values, 6.0)
    nm, nmad, nkept = naive_median_rejection(values.astype(np.float64).tolist(), 6.0)
    assert (m, mad, kept.tolist()) == (nm, nmad, nkept)
    assert len(kept) < len(values) and kept.max() < 6.0
    avg, rmsd, kept = mean_with_rejection(values, 3.0)
    navg, nrmsd, nkept = naive_mean_rejection(values.astype(np.float64).tolist(), 3.0)
    assert (avg, rmsd, len(kept)) == pytest.approx((navg, nrmsd, len(nkept)), rel=1e-12)
    assert len(kept) < len(values)
    # nonBragg's own bin mean: float32 sums in order
    total = np.float32(0.0)
    for v in values:
        total = np.float32(total + v)
    mean = np.float32(total / np.float32(len(values)))
    squares = np.float32(0.0)
    for v in values:
        squares = np.float32(squares + np.float32(abs(v - mean)) * np.float32(abs(v - mean)))
    assert reference_mean(values) == (float(mean), float(np.sqrt(np.float32(squares / np.float32(len(values))))))
    assert reference_mean(values[:0]) == (0.0, 0.0)


@pytest.mark.parametrize("extra,message", [
    (["-img", "missing.img"], "cannot read missing.img"),
    (["-img", "water_coarse.stol"], "not an SMV image"),
    (["-img", "big.img"], "BYTE_ORDER=little_endian"),
    (["-img", "short.img"], "truncated SMV image"),
    (["-stolout", "fit.stol"], "-stolout needs -img"),
    (["-img", "water64.img", "-detpixels", "32"], "has 64x64 pixels but the detector has 32x32"),
    (["-img", "water64.img", "-ignore", "-3"], "-ignore expects a pixel value from 0 to 65535"),
    (["-img", "water64.img", "-gain", "0"], "-gain must be a non-zero number"),
    (["-img", "water64.img", "-thickness", "0"], "more than 0 molecules"),
    (["-img", "water64.img", "-roi", "0", "40", "0", "40"], "-roi leaves 2415 pixels outside it"),
], ids=["missing", "not-smv", "big-endian", "truncated", "stolout-alone", "size", "ignore", "gain", "no-sample",
        "roi"])
def test_bad_input_is_one_line_and_no_file(folder, extra, message):
    raw = (folder / "water64.img").read_bytes()
    (folder / "big.img").write_bytes(raw[:512].replace(b"little_endian", b"big_endian___") + raw[512:])
    (folder / "short.img").write_bytes(raw[:4000])
    before = sorted(p.name for p in folder.iterdir())
    args = ["-stol", "water_coarse.stol", *SAMPLE, "-stolout", "fit.stol", *extra]
    result = invoke(args, folder)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbnumba: error:") and message in lines[0], result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in folder.iterdir()) == before

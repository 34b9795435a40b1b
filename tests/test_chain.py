"""One realistic image in one command: `run` with the amorphous background (-bg_ group) and the
detector response (noisify's flags) gives the three-program chain's images, the background on the
spots' own detector.

The references are tests/data/chain_xbeam_ybeam (README there): nanoBragg with Xbeam != Ybeam,
nonBragg told the beam centre that puts its beam where nanoBragg's is, their float32 sum, noisify;
and tests/data/chain_xds_twotheta: the same without noisify on a tilted XDS detector.
The suite's recorded pipeline (data/suite/pipeline) gave nonBragg its default beam centre,
1.5 pixels from the spots' beam along fast and 0.5 along slow, so its sum is not one geometry; its
water image alone is still `run`'s background for a beam placed there."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
from golden import invoke, invoke_line

from nbnumba.io.smv import read_smv

SUITE = Path(__file__).resolve().parent / "data" / "suite"
RECORDED = Path(__file__).resolve().parent / "data" / "chain_xbeam_ybeam"
RENAMED = {"-stol": "-bg_stol", "-thickness": "-bg_thick", "-density": "-bg_density", "-MW": "-bg_MW"}
OUTPUTS = ("-floatfile", "-intfile", "-noisefile")


def floats(path: Path) -> np.ndarray:
    return np.frombuffer(gzip.decompress(path.read_bytes()), dtype="<f4")


def one_command(chain: Path = RECORDED / "chain.json") -> list[str]:
    """The chain's three steps as one `run`: nanoBragg's flags, nonBragg's sample under -bg_ names
    (its geometry is the run's), noisify's detector effects and seed."""
    steps = {s["program"]: s["args"] for s in json.loads(chain.read_text())["steps"]}

    def pairs(args):
        groups, i = [], 0
        while i < len(args):
            j = i + 1
            while j < len(args) and not (args[j].startswith("-") and not args[j].lstrip("-")[:1].isdigit()):
                j += 1
            groups.append(args[i:j])
            i = j
        return groups

    spots = [g for g in pairs(steps["nanoBragg"]) if g[0] not in (*OUTPUTS, "-seed", "-nonoise", "-nopgm")]
    sample = [[RENAMED[g[0]], *g[1:]] for g in pairs(steps["nonBragg"]) if g[0] in RENAMED]
    effects = [g for g in pairs(steps.get("noisify", [])) if g[0] in ("-readout", "-flicker", "-calibration",
                                                                      "-calib_seed", "-psf", "-psf_fwhm", "-seed")]
    return [t for g in spots + sample + effects for t in g]


@pytest.fixture(scope="module")
def chained(tmp_path_factory):
    """The one command of the recorded chain, run once: its folder and its output."""
    folder = tmp_path_factory.mktemp("chain")
    os.symlink(SUITE / "inputs", folder / "inputs")
    result = invoke("run", [*one_command(), "-floatfile", "sum.bin", "-intfile", "int.img", "-noisefile", "noise.img",
                            "-nopgm", "-noprogress"], folder)
    assert result.exit_code == 0, result.output
    return folder, result


def test_run_with_background_and_detector_effects_gives_the_chain(chained):
    tmp_path, result = chained
    args = one_command()
    assert "-bg_stol" in args and "-psf" in args
    assert args[args.index("-Xbeam") + 1] != args[args.index("-Ybeam") + 1]
    ours = np.fromfile(tmp_path / "sum.bin", dtype="<f4")
    assert np.array_equal(ours, floats(RECORDED / "sum.bin.gz"))
    # the recorded spots and water are what the sum is made of: both matter in every pixel's value
    spots, water = floats(RECORDED / "spots.bin.gz"), floats(RECORDED / "water.bin.gz")
    assert np.array_equal(ours, spots + water) and water.min() > 30 and spots.max() > 90
    for name in ("int.img", "noise.img"):
        mine, chain = read_smv(tmp_path / name), read_smv(RECORDED / name)
        assert np.array_equal(mine.data, chain.data), name
    assert "photons on noise image before PSF" in result.output and "auto-selected psf_radius" in result.output


def test_a_tilted_xds_detector_gives_the_chain(tmp_path):
    """tests/data/chain_xds_twotheta: spots and water on a 96 x 64 XDS detector pivoting about the
    sample, turned by -detector_rotx and -twotheta; nonBragg was told the same detector in its own
    terms. The one command gives the chain's float image bit for bit."""
    recorded = RECORDED.parent / "chain_xds_twotheta"
    args = one_command(recorded / "chain.json")
    assert {"-xds", "-twotheta", "-detector_rotx", "-bg_stol"} <= set(args)
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    result = invoke("run", [*args, "-floatfile", "sum.bin", "-nonoise", "-nopgm", "-noprogress"], tmp_path)
    assert result.exit_code == 0, result.output
    ours = np.fromfile(tmp_path / "sum.bin", dtype="<f4")
    spots, water = floats(recorded / "spots.bin.gz"), floats(recorded / "water.bin.gz")
    assert np.array_equal(ours, floats(recorded / "sum.bin.gz")) and np.array_equal(ours, spots + water)
    assert water.min() > 10 and spots.max() > 20


def _keys(header: str) -> dict[str, str]:
    return dict(item.strip().split("=", 1) for item in header.strip("{}\n").split(";") if "=" in item)


def test_the_chains_images_carry_runs_header(chained):
    """The one command's int and noise images carry the header `run` writes for its geometry,
    byte for byte; noisify, told only the distance, pixel and wavelength, wrote the same values
    for every key it has except the two it could only default: the beam centre (its detsize/2)
    and OSC_RANGE (its 1 degree, not the run's 0)."""
    tmp_path = chained[0]
    args = one_command()
    spots_only = invoke("run", [*args[:args.index("-bg_stol")], "-intfile", "plain.img", "-nonoise", "-nopgm",
                                "-noprogress"], tmp_path)
    assert spots_only.exit_code == 0, spots_only.output
    header = read_smv(tmp_path / "plain.img").header
    for name in ("int.img", "noise.img"):
        assert read_smv(tmp_path / name).header == header, name
    ours, noisify = _keys(header), _keys(read_smv(RECORDED / "noise.img").header)
    differing = {key for key in noisify if ours.get(key) != noisify[key]}
    assert differing == {"BEAM_CENTER_X", "BEAM_CENTER_Y", "OSC_RANGE"}
    assert (ours["BEAM_CENTER_X"], ours["BEAM_CENTER_Y"], noisify["BEAM_CENTER_X"]) == ("15", "22.6", "19.2")
    assert (noisify["OSC_RANGE"], ours["OSC_RANGE"]) == ("1", "0")


def test_the_background_alone_is_nonbraggs_image(tmp_path):
    """Spots too faint to reach a float32 (F = 1e-30) leave the recorded water image alone, once
    the run's beam is where nonBragg's default put it: fast 12.7 mm, slow 12.9 mm from the corner,
    which MOSFLM's -Ybeam and -Xbeam reach by adding half a pixel (-Ybeam is the decimal whose sum
    lands on nonBragg's (detsize - pixel) / 2 to the last bit)."""
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    spots = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1e-30", "-lambda", "1", "-distance", "100",
             "-detpixels", "128", "-pixel", "0.2", "-Xbeam", "12.8", "-Ybeam", "12.600000000000001", "-fluence", "1e24",
             "-nonoise", "-nopgm", "-noprogress"]
    result = invoke("run", [*spots, "-bg_stol", "inputs/water.stol", "-bg_thick", "0.00002", "-floatfile", "bg.bin"],
                    tmp_path)
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.fromfile(tmp_path / "bg.bin", dtype="<f4"), floats(SUITE / "pipeline" / "water.bin.gz"))


def nonbragg_default_beam(pixels: int, pixel: str, ybeam: str, xbeam: str) -> list[str]:
    """`run`'s flags for a square detector whose MOSFLM beam centre is nonBragg's default (see the
    test above): `ybeam` and `xbeam` are the decimals that land on it to the last bit."""
    return ["-detpixels", str(pixels), "-pixel", pixel, "-Xbeam", xbeam, "-Ybeam", ybeam]


FAINT_SPOTS = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1e-30", "-lambda", "1", "-flux", "1e12",
               "-exposure", "1", "-beamsize", "0.1", "-nonoise", "-nopgm", "-noprogress"]


@pytest.mark.parametrize("flag, table, case", [("-bg_stol", "water.stol", "water_basic"),
                                               ("-bg_4stol", "water_4stol.stol", "water_4stol"),
                                               ("-bg_Q", "water_Q.stol", "water_Q")])
def test_the_background_reads_each_tables_unit(tmp_path, flag, table, case):
    """-bg_4stol and -bg_Q tables are in 4 sin(theta)/lambda and 4 pi sin(theta)/lambda: each run
    gives nonBragg's recorded image of its table."""
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    result = invoke("run", [*FAINT_SPOTS, "-distance", "100", *nonbragg_default_beam(128, "0.2", "12.600000000000001",
                                                                                     "12.8"),
                            flag, f"inputs/{table}", "-bg_thick", "0.1", "-floatfile", "bg.bin"], tmp_path)
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.fromfile(tmp_path / "bg.bin", dtype="<f4"),
                          floats(SUITE / "nonbragg" / case / "float.bin.gz"))


def test_a_negative_background_is_reported_and_bg_fix_spline_removes_it(tmp_path):
    """ice.stol jumps from 0 to its first ring and nonBragg's cubic swings negative there: `run`
    reproduces the recorded image and says so in one line naming the switch; -bg_fix_spline
    keeps every pixel between the table's values."""
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    flags = [*FAINT_SPOTS, "-distance", "50", *nonbragg_default_beam(160, "0.3", "23.699999999999996",
                                                                      "23.999999999999996"),
             "-bg_stol", "inputs/ice.stol", "-bg_thick", "0.05", "-bg_density", "0.92", "-bg_MW", "18"]
    ice = floats(SUITE / "nonbragg" / "ice_rings" / "float.bin.gz")
    result = invoke("run", [*flags, "-floatfile", "ice.bin"], tmp_path)
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.fromfile(tmp_path / "ice.bin", dtype="<f4"), ice)
    warnings = [line for line in result.output.splitlines() if "negative" in line]
    assert warnings == [f"nbnumba: warning: the background is negative in {int((ice < 0).sum())} pixels (the table's "
                        "cubic spline overshoots); -bg_fix_spline keeps it between the table's values"]
    fixed = invoke("run", [*flags, "-bg_fix_spline", "-floatfile", "fixed.bin"], tmp_path)
    assert fixed.exit_code == 0, fixed.output
    assert "negative" not in fixed.output
    image = np.fromfile(tmp_path / "fixed.bin", dtype="<f4")
    assert image.min() >= 0.0 and np.isclose(image, ice, rtol=1e-6).mean() > 0.5


@pytest.mark.parametrize("flag, value, message", [
    ("-psf", "box", "-psf must be gauss or fiber (got 'box')"),
    ("-readout", "-1", "-readout must be a number >= 0 (got -1)"),
    ("-bg_thick", "0", "-bg_thick must be a number > 0 (got 0)"),
])
def test_bad_effect_values_are_refused(tmp_path, flag, value, message):
    result = invoke("run", ["-cell", "50", "50", "50", "90", "90", "90", "-default_F", "1", "-detpixels", "8",
                            flag, value], tmp_path)
    assert result.exit_code == 2
    assert message in result.output
    assert os.listdir(tmp_path) == []


def test_a_sweep_frame_is_the_run_of_its_angles(tmp_path):
    """sweep and batch take the same group: frame 2 of a sweep is `run` at frame 2's angles and seed."""
    pytest.importorskip("distributed")
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    flags = ["-default_F", "100", "-cell", "50", "50", "50", "90", "90", "90", "-lambda", "1", "-distance", "50",
             "-detpixels", "32", "-pixel", "0.4", "-N", "5", "-oversample", "1", "-phi", "10", "-osc", "2",
             "-bg_stol", "inputs/water.stol", "-bg_thick", "0.1", "-readout", "2", "-psf", "gauss", "-seed", "7"]
    swept = invoke_line(["sweep", *flags, "-nframes", "2", "-outdir", "frames", "-floats", "-noise", "--workers", "1",
                         "-noprogress"], tmp_path)
    assert swept.exit_code == 0, swept.output
    ran = invoke("run", [*flags, "-phi", "12", "-seed", "8", "-floatfile", "run.bin", "-intfile", "run.img",
                         "-noisefile", "run_noise.img", "-nopgm", "-noprogress"], tmp_path)
    assert ran.exit_code == 0, ran.output
    frames = tmp_path / "frames"
    assert (frames / "image_00002.bin").read_bytes() == (tmp_path / "run.bin").read_bytes()
    assert np.array_equal(read_smv(frames / "image_noise_00002.img").data, read_smv(tmp_path / "run_noise.img").data)
    assert np.fromfile(tmp_path / "run.bin", dtype="<f4").min() > 0  # the water reaches every pixel


def test_one_file_outputs_take_the_detector_response_and_its_mistakes_stop_them(tmp_path):
    """-format nexus/hdf5 store the detector-response counts (tests/test_nexus.py); a bad effect value
    is still one line and exit 2, before any cluster starts or any file is made."""
    pytest.importorskip("distributed")
    flags = ["-cell", "50", "50", "50", "90", "90", "90", "-default_F", "1", "-detpixels", "8", "-osc", "1",
             "-readout", "2", "-psf", "box"]
    result = invoke_line(["sweep", *flags, "-nframes", "2", "-format", "nexus", "-noprogress"], tmp_path)
    assert result.exit_code == 2 and "-psf must be gauss or fiber (got 'box')" in result.output
    assert len(result.output.strip().splitlines()) == 1
    (tmp_path / "jobs.csv").write_text("phi\n0\n1\n")
    result = invoke_line(["batch", "jobs.csv", *flags, "-format", "hdf5", "-noprogress"], tmp_path)
    assert result.exit_code == 2 and "-psf must be gauss or fiber (got 'box')" in result.output
    assert sorted(os.listdir(tmp_path)) == ["jobs.csv"]


def test_masked_pixels_get_no_background(tmp_path):
    """-mask's skipped pixels are empty in the spots and stay empty with the background; every
    other pixel has the same background as without the mask."""
    golden = Path(__file__).resolve().parent / "data" / "golden" / "inputs"
    flags = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1e-30", "-img", str(golden / "header.img"),
             "-N", "5", "-oversample", "1", "-bg_stol", str(SUITE / "inputs" / "water.stol"), "-bg_thick", "0.001",
             "-nonoise", "-nopgm", "-noprogress"]
    for extra, name in (([], "plain.bin"), (["-mask", str(golden / "mask.img")], "masked.bin")):
        result = invoke("run", [*flags, *extra, "-floatfile", name], tmp_path)
        assert result.exit_code == 0, result.output
    plain, masked = (np.fromfile(tmp_path / name, dtype="<f4").reshape(96, 128) for name in ("plain.bin", "masked.bin"))
    mask = read_smv(golden / "mask.img").data
    assert 0 < np.count_nonzero(mask == 0) < mask.size and plain.min() > 0
    assert np.all(masked[mask == 0] == 0) and np.array_equal(masked[mask != 0], plain[mask != 0])

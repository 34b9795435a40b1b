"""One realistic image in one command: `run` with the amorphous background (-bg_ group) and the
detector response (noisify's flags) gives the three-program chain's images (data/suite/pipeline)."""

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
RENAMED = {"-stol": "-bg_stol", "-thickness": "-bg_thick", "-density": "-bg_density", "-MW": "-bg_MW"}
OUTPUTS = ("-floatfile", "-intfile", "-noisefile")


def one_command() -> list[str]:
    """The chain's three steps as one `run`: nanoBragg's flags, nonBragg's sample under -bg_ names,
    noisify's detector effects and seed."""
    steps = {s["program"]: s["args"] for s in json.loads((SUITE / "pipeline" / "pipeline.json").read_text())["steps"]}

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
    effects = [g for g in pairs(steps["noisify"]) if g[0] in ("-readout", "-flicker", "-calibration", "-calib_seed",
                                                              "-psf", "-psf_fwhm", "-seed")]
    return [t for g in spots + sample + effects for t in g]


@pytest.fixture(scope="module")
def chained(tmp_path_factory):
    """The one command, run once: its folder and its output."""
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
    recorded = np.frombuffer(gzip.decompress((SUITE / "pipeline" / "sum.bin.gz").read_bytes()), dtype="<f4")
    assert np.array_equal(np.fromfile(tmp_path / "sum.bin", dtype="<f4"), recorded)
    for name in ("int.img", "noise.img"):
        ours, chain = read_smv(tmp_path / name), read_smv(SUITE / "pipeline" / name)
        assert np.array_equal(ours.data, chain.data), name
    assert "photons on noise image before PSF" in result.output and "auto-selected psf_radius" in result.output


def _keys(header: str) -> dict[str, str]:
    return dict(item.strip().split("=", 1) for item in header.strip("{}\n").split(";") if "=" in item)


def test_the_chains_images_carry_runs_header(chained):
    """The one command's int and noise images carry the header `run` writes for its geometry,
    byte for byte; noisify, told only the distance, pixel and wavelength, wrote the same values
    for every key it has except the two it could only default: the beam centre (its detsize/2,
    not nanoBragg's (detsize + pixel)/2) and OSC_RANGE (its 1 degree, not the run's -osc 0.5)."""
    tmp_path = chained[0]
    args = one_command()
    spots_only = invoke("run", [*args[:args.index("-bg_stol")], "-intfile", "plain.img", "-nonoise", "-nopgm",
                                "-noprogress"], tmp_path)
    assert spots_only.exit_code == 0, spots_only.output
    header = read_smv(tmp_path / "plain.img").header
    for name in ("int.img", "noise.img"):
        assert read_smv(tmp_path / name).header == header, name
    ours, noisify = _keys(header), _keys(read_smv(SUITE / "pipeline" / "noise.img").header)
    differing = {key for key in noisify if ours.get(key) != noisify[key]}
    assert differing == {"BEAM_CENTER_X", "BEAM_CENTER_Y", "OSC_RANGE"}
    assert (float(noisify["BEAM_CENTER_X"]), float(ours["BEAM_CENTER_X"])) == (12.8, 12.9)
    assert (noisify["OSC_RANGE"], ours["OSC_RANGE"]) == ("1", "0.5")


def test_the_background_alone_is_nonbraggs_image(tmp_path):
    """Spots too faint to reach a float32 (F = 1e-30) leave the recorded water image alone."""
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    spots = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1e-30", "-lambda", "1", "-distance", "100",
             "-detpixels", "128", "-pixel", "0.2", "-fluence", "1e24", "-nonoise", "-nopgm", "-noprogress"]
    result = invoke("run", [*spots, "-bg_stol", "inputs/water.stol", "-bg_thick", "0.00002", "-floatfile", "bg.bin"],
                    tmp_path)
    assert result.exit_code == 0, result.output
    water = np.frombuffer(gzip.decompress((SUITE / "pipeline" / "water.bin.gz").read_bytes()), dtype="<f4")
    assert np.array_equal(np.fromfile(tmp_path / "bg.bin", dtype="<f4"), water)


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

"""The Python API (nbnumba.api) gives what the command line gives."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from golden import CASES, GOLDEN, case_dir, invoke

from nbnumba import api
from nbnumba.errors import UserError
from nbnumba.io.smv import read_smv

SMALL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-lambda", "6.2", "-N", "5",
         "-distance", "100", "-detpixels", "32", "-pixel", "0.1"]


@pytest.fixture(autouse=True)
def _own_directory(tmp_path, monkeypatch):
    # build() reads Fdump.bin from the working directory when no -hkl is given: keep a stray one out.
    monkeypatch.chdir(tmp_path)


def without_misset(args: list[str]) -> list[str]:
    if "-misset" not in args:
        return list(args)
    at = args.index("-misset")
    return args[:at] + args[at + 4:]


def _float_at(text: str, pattern: str) -> list[float]:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, pattern
    return [float(v) for v in match.group(1).split()]


@pytest.mark.parametrize("name", ["simple_cubic", "phi_osc"])
def test_api_image_is_the_cli_image(name, tmp_path):
    case = CASES[name]
    cwd = case_dir(tmp_path)
    result = invoke("run", [*case["args"], "-floatfile", "float.bin", "-nonoise", "-nopgm", "-noprogress"], cwd)
    assert result.exit_code == 0, result.output
    rendered = api.render(api.simulation(case["args"]))
    assert rendered.image.dtype == np.float32 and rendered.image.shape == tuple(case["shape"])
    assert rendered.image.astype("<f4").tobytes() == (cwd / "float.bin").read_bytes()
    assert rendered.stats is not None and rendered.seconds >= 0


def test_keywords_give_the_flags():
    argv = api.arguments(cell=(100, 100, 100, 90, 90, 90), N=5, nopolar=True)
    assert argv == ["-cell", "100", "100", "100", "90", "90", "90", "-N", "5", "-nopolar"]
    # False and None leave a switch out, so optional keywords can be passed through unchanged.
    assert api.arguments(nopolar=False, seed=None, N=3) == ["-N", "3"]
    assert api.arguments(**{"lambda": 6.2}) == ["-lambda", "6.2"]


def test_keywords_and_argv_build_the_same_simulation():
    by_argv = api.simulation(SMALL)
    by_keywords = api.simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, wave=6.2, N=5,
                                 distance=100, detpixels=32, pixel=0.1)
    # repr, not ==: unset geometry is NaN, which never equals itself; argv differs in -wave/-lambda.
    assert repr(dataclasses.replace(by_keywords.params, argv=[])) == repr(dataclasses.replace(by_argv.params, argv=[]))
    assert np.array_equal(api.render(by_keywords).image, api.render(by_argv).image)
    # Keywords come after argv, so they override it as a later flag would.
    assert api.simulation(SMALL, N=2).Na == 2


def test_render_orientations_equals_misset():
    args = without_misset(CASES["phi_osc"]["args"])  # a -cell crystal: misset (10, 20, 30) in the case
    sim = api.simulation(args)
    images = api.render_orientations(sim, [(0, 0, 0), (10, 20, 30)])
    assert images.shape == (2, *CASES["phi_osc"]["shape"])
    assert np.array_equal(images[0], api.render(sim).image)
    missed = api.render(api.simulation([*args, "-misset", "10", "20", "30"])).image
    # The reference turns the reciprocal axes and derives the real ones from them, while reorient
    # turns both; the two agree to rounding, not bit for bit.
    peak = float(np.abs(missed).max())
    assert peak > 0
    assert float(np.abs(images[1].astype(np.float64) - missed).max()) <= 1e-6 * peak
    assert not np.array_equal(images[0], images[1])  # the turn did something


def test_reorient_leaves_the_original_alone():
    sim = api.simulation(SMALL)
    before = (sim.crystal.a, sim.lattice.copy())
    api.reorient(sim, (5, 0, 0))
    assert sim.crystal.a == before[0] and np.array_equal(sim.lattice, before[1])


@pytest.mark.parametrize("name", ["simple_cubic", "cubic_tilted_detector", "conv_xds", "pivot_sample_close",
                                  "offset_beam"])
def test_derived_geometry_is_the_printed_geometry(name):
    case = CASES[name]
    stdout = (GOLDEN / "cases" / name / "stdout.txt").read_text()
    det = api.simulation(case["args"]).detector
    # Printed with %.15g: equal to the last printed digit.
    assert det.pix0 == pytest.approx(_float_at(stdout, r"^DETECTOR_PIX0_VECTOR (.*)$"), rel=1e-14, abs=1e-18)
    assert det.fdet == pytest.approx(_float_at(stdout, r"^DETECTOR_FAST_AXIS (.*)$"), rel=1e-14, abs=1e-18)
    assert det.sdet == pytest.approx(_float_at(stdout, r"^DETECTOR_SLOW_AXIS (.*)$"), rel=1e-14, abs=1e-18)
    # Printed with %g: six significant digits.
    fbeam, sbeam = _beam(stdout)
    assert (det.Fbeam, det.Sbeam) == pytest.approx((fbeam, sbeam), rel=1e-5, abs=1e-12)
    assert det.distance == pytest.approx(_float_at(stdout, r"^  distance=(\S+) ")[0], rel=1e-5)


def _beam(stdout: str) -> tuple[float, float]:
    match = re.search(r"^  Fbeam=(\S+) Sbeam=(\S+)$", stdout, re.MULTILINE)
    assert match
    return float(match.group(1)), float(match.group(2))


def test_pix0_matches_the_cli_line(tmp_path):
    run = invoke("run", [*SMALL, "-floatfile", "f.bin", "-nonoise", "-nopgm", "-noprogress"], tmp_path)
    assert run.exit_code == 0, run.output
    line = next(ln for ln in run.output.splitlines() if ln.startswith("DETECTOR_PIX0_VECTOR "))
    pix0 = api.simulation(SMALL).detector.pix0
    assert line == "DETECTOR_PIX0_VECTOR " + " ".join(f"{v:.15g}" for v in pix0)


@pytest.mark.parametrize("flags", [dict(N="abc"), dict(detpixels=0), dict(cell=(100, 100)), dict(bogus_flag=3)])
def test_bad_keyword_is_a_user_error(flags):
    with pytest.raises(UserError):
        api.simulation(SMALL, **flags)


def test_bad_render_choice_is_a_user_error():
    sim = api.simulation(SMALL)
    with pytest.raises(UserError):
        api.render(sim, device="tpu")
    with pytest.raises(UserError):
        api.render(sim, precision="half")


def test_structure_factor_cache_location_is_explicit(tmp_path):
    # batch workers run elsewhere than the command that started them: the Fdump.bin a run
    # without -hkl reads is named explicitly, and none in the worker's directory is consulted
    from nbnumba.io.hkl import read_hkl, write_fdump
    from nbnumba.model.simulation import build

    table = read_hkl(str(GOLDEN / "inputs" / "test_pattern.hkl"), 0.0)
    write_fdump(tmp_path / "Fdump.bin", table)
    argv = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "7", "-detpixels", "8"]
    cached = build(argv, fdump_path=str(tmp_path / "Fdump.bin"))
    assert cached.hkl_source == "fdump"
    assert np.array_equal(cached.hkl.grid, table.grid)
    plain = build(argv, fdump_path=str(tmp_path / "absent" / "Fdump.bin"))
    assert plain.hkl_source == "default"


def test_write_outputs_gives_the_files_run_writes(tmp_path):
    name = "noise_seed"
    args = list(CASES[name]["args"])
    cwd = case_dir(tmp_path)
    ran = invoke("run", [*args, "-floatfile", "run.bin", "-intfile", "run.img", "-noisefile", "run_noise.img",
                         "-pgmfile", "run.pgm", "-noprogress"], cwd)
    assert ran.exit_code == 0, ran.output
    sim = api.simulation(args)
    result = api.render(sim)
    api.write_outputs(sim, result, floatfile=cwd / "api.bin", intfile=cwd / "api.img",
                      noisefile=cwd / "api_noise.img", pgmfile=cwd / "api.pgm")
    for ours, theirs in (("api.bin", "run.bin"), ("api.img", "run.img"), ("api_noise.img", "run_noise.img"),
                         ("api.pgm", "run.pgm")):
        assert (cwd / ours).read_bytes() == (cwd / theirs).read_bytes(), ours
    assert (cwd / "run_noise.img").read_bytes() == (GOLDEN / "cases" / name / "noise.img").read_bytes()
    counts, scale = api.int_image(sim, result)
    assert counts.dtype == np.uint16 and scale == pytest.approx(55000.0 / result.stats.max_I)
    assert np.array_equal(api.noise_image(sim, result), api.noise_image(sim, result))  # the seed, not the clock


def test_user_facing_tuples_hold_plain_numbers():
    sim = api.simulation(SMALL)
    for value in (sim.detector.pix0, sim.detector.fdet, sim.detector.beam, sim.detector.dials_origin,
                  sim.crystal.a, sim.crystal.a_star, sim.crystal.cell):
        assert all(type(v) is float for v in value), value
    assert repr(sim.detector.pix0).startswith("(0.1, ")


@pytest.mark.parametrize("record", [api.Result, api.Stats, api.Simulation])
def test_records_document_their_fields_and_units(record):
    doc = record.__doc__
    assert doc and not doc.startswith(record.__name__ + "(")  # not dataclass boilerplate
    for name in (f.name for f in dataclasses.fields(record) if f.name not in ("geo", "ints", "recip", "Fgrid",
                                                                              "source_table", "lattice", "notes")):
        assert name in doc, name


SUITE = GOLDEN.parent / "suite"
EFFECTS = ["-readout", "3", "-psf", "gauss", "-psf_fwhm", "60", "-flicker", "0.02", "-calibration", "0.05",
           "-calib_seed", "9", "-seed", "4"]


def test_render_and_detector_images_are_runs_images_with_background_and_effects(tmp_path):
    """api.render is `run`'s float image bit for bit with the -bg_ group (spots plus water on the
    same detector), and api.detector_images its int and noise images with the detector effects."""
    args = ["-cell", "50", "60", "70", "90", "90", "90", "-default_F", "100", "-lambda", "1", "-N", "8",
            "-distance", "60", "-detpixels", "48", "-pixel", "0.4", "-Xbeam", "7", "-Ybeam", "11", "-oversample", "1",
            "-fluence", "1e24", "-bg_stol", str(SUITE / "inputs" / "water.stol"), "-bg_thick", "0.00000002", *EFFECTS]
    ran = invoke("run", [*args, "-floatfile", "run.bin", "-intfile", "run.img", "-noisefile", "run_noise.img",
                         "-nopgm", "-noprogress"], tmp_path)
    assert ran.exit_code == 0, ran.output
    sim = api.simulation(args)
    result = api.render(sim)
    spots = api.render(api.simulation(args[:args.index("-bg_stol")])).image
    floats = np.fromfile(tmp_path / "run.bin", dtype="<f4").reshape(48, 48)
    assert np.array_equal(result.image, floats)
    assert (result.image - spots).min() > 10  # the background is in every pixel
    images = api.detector_images(sim, result)
    assert np.array_equal(images.int_image, read_smv(tmp_path / "run.img").data)
    assert np.array_equal(images.noise_image, read_smv(tmp_path / "run_noise.img").data)
    assert images.scale == 1.0 and images.response.psf is not None
    assert np.array_equal(api.noise_image(sim, result), images.noise_image)
    assert np.array_equal(api.int_image(sim, result)[0], images.int_image)
    api.write_outputs(sim, result, intfile=tmp_path / "api.img", noisefile=tmp_path / "api_noise.img")
    for ours, theirs in (("api.img", "run.img"), ("api_noise.img", "run_noise.img")):
        assert (tmp_path / ours).read_bytes() == (tmp_path / theirs).read_bytes(), ours


def test_many_simulations_parse_one_hkl_table_once(tmp_path, monkeypatch):
    """200 images with changing cell, N and distance from one parsed table: the file is read once,
    and a simulation built from the table renders what -hkl FILE renders."""
    import sys

    from nbnumba.io import hkl as hkl_module

    path = tmp_path / "P1.hkl"
    path.write_text("".join(f"{h} {k} {l} {10 + abs(h * 7 + k * 3 + l) % 50}\n"
                            for h in range(-4, 5) for k in range(-4, 5) for l in range(-4, 5)))
    reads = []
    original = hkl_module.read_hkl

    def counting(*a, **k):
        reads.append(a[0])
        return original(*a, **k)

    monkeypatch.setattr(hkl_module, "read_hkl", counting)
    monkeypatch.setattr(sys.modules[api.build.__module__], "read_hkl", counting)
    table = api.read_hkl(path)
    base = ["-lambda", "1", "-detpixels", "8", "-pixel", "1", "-oversample", "1", "-nonoise"]
    images = []
    for i in range(200):
        flags = [*base, "-cell", str(40 + i % 7), "50", "60", "90", "90", "90", "-N", str(2 + i % 3),
                 "-distance", str(50 + i % 11)]
        images.append(api.render(api.simulation(flags, hkl=table)).image)
    assert reads == [str(path)]
    by_file = api.render(api.simulation([*base, "-cell", "46", "50", "60", "90", "90", "90", "-N", "2",
                                         "-distance", "56", "-hkl", str(path)])).image
    assert len(reads) == 2 and np.array_equal(images[6], by_file) and by_file.max() > 0
    assert len({image.tobytes() for image in images}) > 100


def test_render_says_when_it_compiles(monkeypatch, tmp_path, capsys):
    """The first render of a kind says on stderr that it compiles, as the command line does; the
    marker in the cache folder keeps it to once."""
    import numba

    sim = api.simulation([*SMALL, "-lambda", "1", "-bg_stol", str(SUITE / "inputs" / "water.stol")])
    api.render(sim)
    capsys.readouterr()
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "fresh_cache"))
    api.render(sim)
    said = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in said] == ["nbnumba: compiling the cpu double kernels",
                                                      "nbnumba: compiling the background cpu kernels"]
    api.render(sim)
    assert capsys.readouterr().err == ""

"""Every numeric flag has a domain: a value just inside it is accepted, one just outside is refused
with the domain in one line (exit 2, nothing written, an existing output untouched).  Values that
are legal but almost always unit slips are warned about, and a render past the work limits is
refused before it starts unless -force is given.

Acceptance is checked with `simulation.build` (everything a render needs, without rendering);
refusals go through the command line.
"""

from __future__ import annotations

import math
import os

import pytest
from golden import GOLDEN, invoke
from test_bad_input import BASE, assert_clean_failure, replace

from nbnumba.commands.sweep import SWITCHES, VALUED
from nbnumba.errors import UserError
from nbnumba.model.estimate import AUTO_OVERSAMPLE_LIMIT, CPU_NS_PER_STEP, GPU_MAX_STEPS_PER_S, TRICUBIC_FACTOR
from nbnumba.model.options import FLAGS, SWEEP_OPTIONS, parse_args
from nbnumba.model.simulation import build

LOUD = [a for a in BASE if a != "-noprogress"]  # BASE with the progress display, where the estimate is
RIGHT_HANDED = "0.01 0 0\n0 0.01 0\n0 0 0.01\n"
LEFT_HANDED = "-0.01 0 0\n0 -0.01 0\n0 0 -0.01\n"  # each axis flipped: a*.(b* x c*) < 0


def accepted(tmp_path, args: list[str], files: dict[str, str] | None = None):
    """The simulation built from BASE with `args`; the lines it would print on stderr."""
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    said: list[str] = []
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        sim = build(args, say=said.append)
    finally:
        os.chdir(old)
    return sim, said


def refused(tmp_path, args: list[str], files: dict[str, str] | None = None) -> str:
    """`nbnumba run args` fails with one line, exit 2, and leaves the directory as it was:
    an output that existed before is untouched."""
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    sentinel = b"an earlier image \x00\x01" * 5
    (tmp_path / "out.bin").write_bytes(sentinel)
    before = sorted(os.listdir(tmp_path))
    result = invoke("run", args, tmp_path)
    message = assert_clean_failure(result, 2, tmp_path, before)
    assert (tmp_path / "out.bin").read_bytes() == sentinel
    return message.removeprefix("nbnumba: error: ")


def with_flag(flag: str, *values: str) -> list[str]:
    return replace(flag, *values) if flag in BASE else [*BASE, flag, *values]


# flag, a value just inside, a value just outside, the message for the one outside
EDGES = [
    # counts >= 1
    ("-oversample", ["1"], ["0"], "-oversample must be an integer >= 1 (got 0)"),
    ("-phisteps", ["1"], ["0"], "-phisteps must be an integer >= 1 (got 0)"),
    ("-mosaic_domains", ["1"], ["0"], "-mosaic_domains must be an integer >= 1 (got 0)"),
    ("-dispsteps", ["1"], ["0"], "-dispsteps must be an integer >= 1 (got 0)"),
    ("-thicksteps", ["1"], ["0"], "-thicksteps must be an integer >= 1 (got 0)"),
    ("-detpixels", ["1"], ["0"], "-detpixels must be an integer >= 1 (got 0)"),
    # counts >= 0 where 0 means something
    ("-N", ["0"], ["-1"], "-N must be a number >= 0 (got -1)"),
    ("-nthreads", ["0"], ["-1"], "-nthreads must be an integer >= 0 (got -1)"),
    # lengths > 0 and sizes >= 0
    ("-fudge", ["1e-9"], ["0"], "-fudge must be a number > 0 (got 0)"),
    ("-beamsize", ["1e-9"], ["0"], "-beamsize must be a number > 0 (got 0)"),
    ("-exposure", ["1e-9"], ["0"], "-exposure must be a number > 0 (got 0)"),
    ("-samplesize", ["0"], ["-1e-9"], "-samplesize must be a number >= 0 (got -1e-9)"),
    ("-water", ["0"], ["-0.5"], "-water must be a number >= 0 (got -0.5)"),
    ("-detector_thick", ["0"], ["-1"], "-detector_thick must be a number >= 0 (got -1)"),
    ("-detector_abs", ["0"], ["-1"], "-detector_abs must be a number >= 0, or inf (got -1)"),
    ("-dmin", ["0"], ["-1"], "-dmin must be a number >= 0 (got -1)"),
    ("-scale", ["0"], ["-1"], "-scale must be a number >= 0 (got -1)"),
    # fractions and bounded ranges
    ("-polar", ["1"], ["1.0001"], "-polar must be a number in [-1, 1] (got 1.0001)"),
    ("-polar", ["-1"], ["-1.0001"], "-polar must be a number in [-1, 1] (got -1.0001)"),
    ("-dispersion", ["100"], ["100.5"], "-dispersion must be a number in [0, 100] (got 100.5)"),
    ("-adc", ["65535"], ["65536"], "-adc must be a number in [0, 65535] (got 65536)"),
    # angles where only a range makes sense
    ("-mosaic", ["90"], ["90.5"], "-mosaic must be a number in [0, 90] (got 90.5)"),
    ("-mosaic", ["0"], ["-1"], "-mosaic must be a number in [0, 90] (got -1)"),
    ("-osc", ["360"], ["360.5"], "-osc must be a number in [0, 360] (got 360.5)"),
    ("-phistep", ["360"], ["0"], "-phistep must be a number in (0, 360] (got 0)"),
    ("-cell", "100 100 100 60 60 119.9".split(), "100 100 100 60 60 120".split(),
     "-cell: no unit cell has the angles 60 60 120"),
    ("-cell", "1e-3 100 100 90 90 90".split(), "0 100 100 90 90 90".split(), "-cell: the edges a b c must be numbers > 0"),
    ("-cell", "100 100 100 90 90 179.9".split(), "100 100 100 90 90 180".split(),
     "-cell: the angles must be numbers in (0, 180) degrees (got 180)"),
    # ROI bounds in order, on the detector (16 x 16)
    ("-roi", "5 5 5 5".split(), "6 5 0 10".split(), "-roi bounds are out of order"),
    ("-roi", "0 3 0 3".split(), "-1 3 0 3".split(), "-roi must be 4 integers >= 0: xmin xmax ymin ymax (got -1)"),
    ("-roi", "15 20 15 20".split(), "16 20 0 3".split(), "-roi 16 20 0 3 is outside the 16x16 detector"),
    ("-trace_pixel", "15 15".split(), "16 15".split(), "-trace_pixel: pixel (slow 16, fast 15) is outside"),
    # directions, seeds, words
    ("-beam_vector", "1 0 0".split(), "0 0 0".split(), "-beam_vector must not be 0 0 0"),
    ("-seed", ["2147483647"], ["2147483648"], "-seed must be an integer in [-2147483647, 2147483647] (got 2147483648)"),
    ("-precision", ["single"], ["half"], "-precision must be double or single (got 'half')"),
]


@pytest.mark.parametrize("flag, inside, outside, message", EDGES, ids=[f"{e[0]}:{' '.join(e[2])}" for e in EDGES])
def test_just_inside_is_accepted_just_outside_is_refused(tmp_path, flag, inside, outside, message):
    assert accepted(tmp_path, with_flag(flag, *inside))[1] == []
    assert message in refused(tmp_path, with_flag(flag, *outside))


def test_the_issue_message_for_oversample(tmp_path):
    assert refused(tmp_path, with_flag("-oversample", "-2")) == "-oversample must be an integer >= 1 (got -2)"


def test_zero_cells_means_one_cell(tmp_path):
    """The reference documents -N 0 as an isolated unit cell; it renders as -N 1."""
    zero, _ = accepted(tmp_path, with_flag("-N", "0"))
    one, _ = accepted(tmp_path, with_flag("-N", "1"))
    assert (zero.Na, zero.Nb, zero.Nc) == (one.Na, one.Nb, one.Nc) == (1.0, 1.0, 1.0)


def test_every_numeric_flag_has_a_domain_or_is_any_number():
    """Only positions and rotations (any value means something) are left unbounded."""
    unbounded = {f.name for f in FLAGS if f.kinds and set(f.kinds) <= {"f", "i"} and f.domain is None}
    assert unbounded == {"-misset", "-Xbeam", "-Ybeam", "-Xclose", "-Yclose", "-ORGX", "-ORGY", "-odet_vector",
                         "-pix0_vector", "-twotheta", "-detector_rotx", "-detector_roty", "-detector_rotz", "-phi"}
    assert all(f.describe_domain() == "any" for f in FLAGS if f.name in unbounded)


# --- matrix files ------------------------------------------------------------------------------

def test_right_handed_matrix_is_accepted(tmp_path):
    sim, _ = accepted(tmp_path, [*replace("-cell"), "-mat", "A.mat"], files={"A.mat": RIGHT_HANDED})
    assert list(sim.crystal.cell[:3]) == pytest.approx([6.2 / 0.01] * 3)  # a = lambda / (lambda a*), in A


@pytest.mark.parametrize("text, words", [
    (LEFT_HANDED, "left-handed"),
    ("0.01 0 0\n0.02 0 0\n0 0 0.01\n", "singular"),
    ("0.01 0 0\n0 1e999 0\n0 0 0.01\n", "too large"),
    ("-10.0 0.0 0.0 1.0 6.2e-10\n-10.0 0.02 0.0 0.5 6.2e-10\n", "line 1 holds 5 values"),
], ids=["left_handed", "singular", "infinite", "five_columns"])
def test_matrix_that_no_crystal_has_is_refused(tmp_path, text, words):
    message = refused(tmp_path, [*replace("-cell"), "-mat", "bad.mat"], files={"bad.mat": text})
    assert message.startswith("bad.mat: ") and words in message


def test_source_list_given_as_matrix_is_refused(tmp_path):
    """The issue's `-mat sources.txt`: the reference reports a 3.2e10 A cell and 96897454-fold oversampling."""
    (tmp_path / "sources.txt").write_bytes((GOLDEN / "inputs" / "sources.txt").read_bytes())
    message = refused(tmp_path, [*replace("-cell"), "-mat", "sources.txt"])
    assert message.startswith("sources.txt: matrix line 1 holds 5 values")


# --- unit slips ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value, unit", [("-energy", "12.4", "eV"), ("-lambda", "12398", "A"),
                                               ("-pixel", "5.5", "mm"), ("-detector_thick", "0.45", "um"),
                                               ("-samplesize", "100", "mm")])
def test_unit_slip_is_warned_about(tmp_path, flag, value, unit):
    args = with_flag(flag, value) if flag != "-energy" else [*replace("-lambda"), flag, value]
    sim, said = accepted(tmp_path, [*args, "-oversample", "1"])
    assert len(said) == 1
    assert said[0].startswith(f"nbnumba: warning: {flag} {value} looks like a unit slip: {flag} takes {unit},")


@pytest.mark.parametrize("flag, value", [("-energy", "100"), ("-lambda", "20"), ("-pixel", "5"),
                                         ("-distance", "1"), ("-detector_thick", "0")])
def test_edge_of_a_slip_is_quiet(tmp_path, flag, value):
    args = with_flag(flag, value) if flag != "-energy" else [*replace("-lambda"), flag, value]
    assert accepted(tmp_path, [*args, "-oversample", "1"])[1] == []


def test_warnings_reach_stderr_and_the_run_completes(tmp_path):
    result = invoke("run", [*replace("-lambda"), "-energy", "12.4", "-detpixels", "4"], tmp_path)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("nbnumba: warning:")]
    assert len(warnings) == 1 and "-energy takes eV" in warnings[0] and "12400" in warnings[0]
    assert (tmp_path / "out.bin").stat().st_size == 4 * 4 * 4


# --- the work estimate and its limits ------------------------------------------------------------

@pytest.mark.parametrize("flag, value", [("-N", "1e9"), ("-pixel", "172"), ("-distance", "0.1")])
def test_issue_examples_of_runaway_oversampling_are_refused(tmp_path, flag, value):
    message = refused(tmp_path, with_flag(flag, value))
    assert message.startswith("the automatic oversampling would be ")
    assert f"(more than {AUTO_OVERSAMPLE_LIMIT}: " in message and "pixel-steps" in message
    assert "-force" in message and "-oversample N" in message
    if flag != "-N":
        assert f"check {flag} {value} (in mm)" in message


def test_force_renders_past_the_oversampling_limit(tmp_path):
    sim, said = accepted(tmp_path, [*with_flag("-pixel", "172"), "-force"])
    # 3 x crystal size / (lambda x distance / pixel): 3 x 300 A / (6.2 A x 100 mm / 172 mm), rounded up
    assert sim.oversample == sim.recommended_oversample == math.ceil(3 * 300 / (6.2 * 100 / 172)) == 250
    assert said[0].startswith("nbnumba: warning: -pixel 172 looks like a unit slip")


def test_long_render_prints_its_estimate(tmp_path):
    """The issue's 1024 x 1024 at -oversample 60: 1024^2 x 3600 pixel-steps."""
    sim, said = accepted(tmp_path, [*replace("-detpixels", "1024", args=LOUD), "-oversample", "60", "-nthreads", "2"])
    steps = 1024 * 1024 * 60 * 60
    assert sim.estimate.steps == steps
    seconds = steps * CPU_NS_PER_STEP["double"] * 1e-9 / 2
    assert said == [f"about {seconds:.0f} s of rendering: {steps:.3g} pixel-steps (1048576 pixels x "
                    f"60x60 sub-pixels x 1 layer x 1 source x 1 phi step x 1 mosaic domain), "
                    f"12 ns per step on 2 CPU threads"]


def test_noprogress_leaves_the_estimate_out(tmp_path):
    args = [*replace("-detpixels", "1024", args=LOUD), "-oversample", "60", "-nthreads", "2"]
    assert len(accepted(tmp_path, args)[1]) == 1
    assert accepted(tmp_path, [*args, "-noprogress"])[1] == []


def test_short_render_is_quiet(tmp_path):
    assert accepted(tmp_path, [*LOUD, "-oversample", "8", "-nthreads", "2"])[1] == []


def test_render_longer_than_a_day_is_refused_unless_forced(tmp_path):
    args = [*with_flag("-detpixels", "1024"), "-oversample", "60", "-phisteps", "10000", "-osc", "1",
            "-nthreads", "2"]
    message = refused(tmp_path, args)
    assert message.startswith("this render would take 3 days (more than a day): 3.77e+13 pixel-steps")
    assert "check -phisteps or -phistep (phi steps); -oversample (sub-pixels)" in message
    assert "-force renders it anyway" in message
    sim, said = accepted(tmp_path, [*args, "-force", "-progress"])
    assert sim.phisteps == 10000 and said[0].startswith("about 3 days of rendering: 3.77e+13 pixel-steps")


def test_estimate_counts_roi_mask_and_every_factor(tmp_path):
    args = [*BASE, "-roi", "2", "5", "0", "9", "-oversample", "3", "-thicksteps", "2", "-detector_thick", "100",
            "-dispersion", "1", "-dispsteps", "3", "-phisteps", "4", "-osc", "1", "-mosaic", "1", "-mosaic_dom", "5"]
    sim, _ = accepted(tmp_path, args)
    e = sim.estimate
    assert (e.pixels, e.oversample, e.layers, e.sources, e.phisteps, e.domains) == (4 * 10, 3, 2, 3, 4, 5)
    assert e.steps == 40 * 9 * 2 * 3 * 4 * 5


# --- nbnumba flags -------------------------------------------------------------------------------

def test_flags_shows_default_unit_and_domain(tmp_path):
    result = invoke("flags", [], tmp_path)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "| flag | values | default | unit | domain | meaning |"
    assert "| `-oversample` | 1 | auto | sub-pixels | integer >= 1 | sub-pixels per pixel side (leave it out for automatic) |" in lines
    assert "| `-distance` | 1 | 100 | mm | > 0 | sample to detector distance along the beam |" in lines
    assert ("| `-N` | 1 | 1 | cells | >= 0 (0: one cell, as 1; a real number with -gauss_xtal, -round_xtal or "
            "-tophat_spots) | unit cells in all directions |") in lines


def test_flags_word_filters_by_name_or_meaning(tmp_path):
    rows = [line for line in invoke("flags", ["mosaic"], tmp_path).output.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["-mosaic", "-mosaic_domains", "-mosaic_seed"]
    rows = [line for line in invoke("flags", ["WAVELENGTH"], tmp_path).output.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["-lambda", "-dispsteps"]
    result = invoke("flags", ["nosuchword"], tmp_path)
    assert result.exit_code == 1 and "nosuchword" in result.output


def test_flags_lists_the_sweep_and_batch_options_in_their_own_section(tmp_path):
    output = invoke("flags", ["frames"], tmp_path).output
    assert output.startswith("Options of `sweep` and `batch` themselves")
    assert "| `-nframes` | 1 | required | integer >= 1 | sweep | number of frames |" in output


def test_sweep_table_covers_exactly_the_options_sweep_and_batch_read():
    assert {o.name.lstrip("-") for o in SWEEP_OPTIONS} == set(VALUED) | SWITCHES
    assert all(o.nargs == (1 if o.name.lstrip("-") in VALUED else 0) for o in SWEEP_OPTIONS)


def test_parse_level_refusal_names_the_flag_as_typed():
    with pytest.raises(UserError, match=r"^-mosaic_dom must be an integer >= 1 \(got 0\)$"):
        parse_args(["-mosaic_dom", "0"])


def test_estimate_charges_tricubic_interpolation(tmp_path):
    (tmp_path / "F.hkl").write_text("0 0 0 10\n1 0 0 5\n0 1 0 5\n0 0 1 5\n")
    args = [*replace("-default_F"), "-hkl", "F.hkl", "-nthreads", "2", "-oversample", "1"]
    nearest, _ = accepted(tmp_path, [*args, "-nointerpolate"])
    tricubic, _ = accepted(tmp_path, [*args, "-interpolate"])
    assert not nearest.estimate.interpolate and tricubic.estimate.interpolate
    assert nearest.estimate.seconds == pytest.approx(16 * 16 * CPU_NS_PER_STEP["double"] * 1e-9 / 2)
    assert tricubic.estimate.seconds == pytest.approx(nearest.estimate.seconds * TRICUBIC_FACTOR)


def test_gpu_estimate_is_a_lower_bound_from_the_fastest_rate(tmp_path):
    """No GPU has been measured: -device cuda gets the least time any GPU could take."""
    args = [*replace("-detpixels", "1024", args=LOUD), "-oversample", "60", "-phisteps", "10000", "-osc", "1",
            "-device", "cuda"]
    sim, said = accepted(tmp_path, args)
    steps = 1024 * 1024 * 3600 * 10000
    assert sim.estimate.seconds == pytest.approx(steps / GPU_MAX_STEPS_PER_S)
    assert said[0].startswith(f"at least {steps / GPU_MAX_STEPS_PER_S:.0f} s of rendering: {steps:.3g} pixel-steps")

"""Single-pixel traces: `nbnumba trace` reproduces every recorded TRACE_C quantity of the reference."""

from __future__ import annotations

import re

import pytest
from golden import CASES, GOLDEN, case_dir, invoke, output_flags

from nbnumba.commands.trace_diff import diff_traces, format_table, parse_trace

TRACE_LINE = re.compile(r"^TRACE_(C|PY)(_PHI)?[: ]")
# The reference prints "WARNING: further warnings will not be printed! " without a newline (the first
# time a tricubic neighbourhood leaves the HKL table), so in a traced run the next TRACE_C line, the
# traced pixel's first one, starts mid-line and was not recorded in trace.txt.
SWALLOWED = "pix0_vector_meters"
UNTERMINATED_WARNING = "WARNING: further warnings will not be printed!"


def trace_lines(text: str) -> list[str]:
    """The per-pixel trace lines (TRACE_C/TRACE_PY and their _PHI lines), not TRACE_CONFIG."""
    return [line.rstrip() for line in text.splitlines() if TRACE_LINE.match(line)]


def swallowed_by_warning(name: str, ref: str) -> bool:
    stdout = (GOLDEN / "cases" / name / "stdout.txt").read_text()
    return SWALLOWED not in ref and UNTERMINATED_WARNING in stdout


def printed_pix0(name: str) -> tuple[float, ...]:
    stdout = (GOLDEN / "cases" / name / "stdout.txt").read_text()
    line = next(line for line in stdout.splitlines() if line.startswith("DETECTOR_PIX0_VECTOR "))
    return tuple(float(v) for v in line.split()[1:])


def reference_trace(name: str) -> str:
    return (GOLDEN / "cases" / name / "trace.txt").read_text()


def traced_pixel(name: str) -> list[str]:
    slow, fast = CASES[name]["trace_pixel_slow_fast"]
    return [str(slow), str(fast)]


def run_trace(name: str, cwd, pixel: list[str] | None = None, extra: list[str] = ()):
    result = invoke("trace", ["--pixel", *(pixel or traced_pixel(name)), *CASES[name]["args"], *extra], cwd)
    assert result.exit_code == 0, result.output
    return result.output


def field(text: str, key: str) -> list[tuple[float, ...]]:
    """Every value tuple of one scalar trace key, in printed order."""
    return [e.values for e in parse_trace(text) if e.base == key]


@pytest.mark.parametrize("name", sorted(CASES))
def test_trace_matches_reference(name, tmp_path):
    ours = run_trace(name, case_dir(tmp_path))
    (tmp_path / "ours.log").write_text(ours)
    ref = reference_trace(name)

    result = diff_traces(parse_trace(ref), parse_trace(ours), tolerance=1e-9, abs_floor=1e-12)
    extra = 0
    if swallowed_by_warning(name, ref):
        # Only the line the reference's unterminated warning swallowed may be ours alone; its value
        # is checked against the DETECTOR_PIX0_VECTOR line (printed with %g) instead.
        others = [row for row in result.rows if row.status != "ok"]
        assert [(row.key, row.status) for row in others] == [(SWALLOWED, "missing-in-ref")], \
            "\n" + format_table(result)
        assert others[0].ours == pytest.approx(printed_pix0(name), rel=1e-5, abs=1e-9)
        extra = 1
    else:
        assert result.ok, "\n" + format_table(result)
    # Every key, every occurrence: as many trace lines as the reference printed.
    assert len(trace_lines(ours)) == len(trace_lines(ref)) + extra


@pytest.mark.parametrize("name", ["phi_from_zero", "oversample_3_flags"])
def test_trace_diff_cli(name, tmp_path):
    cwd = case_dir(tmp_path)
    (cwd / "trace.txt").write_text(reference_trace(name))
    ours = run_trace(name, cwd)
    (cwd / "ours.log").write_text(ours)

    agree = invoke("trace-diff", ["trace.txt", "ours.log", "--tolerance", "1e-9"], cwd)
    assert agree.exit_code == 0, agree.output
    assert "no divergence" in agree.output

    # One value altered by 1e-6 relative must be caught at tolerance 1e-9.
    lines = ours.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("TRACE_PY: I_pixel_final "))
    value = float(lines[index].split()[2])
    lines[index] = f"TRACE_PY: I_pixel_final {value * (1 + 1e-6)!r}"
    (cwd / "altered.log").write_text("\n".join(lines) + "\n")
    differ = invoke("trace-diff", ["trace.txt", "altered.log", "--tolerance", "1e-9"], cwd)
    assert differ.exit_code == 1, differ.output
    assert "first divergence: I_pixel_final" in differ.output


@pytest.mark.parametrize("name", ["simple_cubic", "phi_from_zero"])
def test_run_trace_pixel_prints_the_same_trace(name, tmp_path):
    cwd = case_dir(tmp_path)
    alone = run_trace(name, cwd)
    result = invoke("run", [*CASES[name]["args"], *output_flags(name), "-trace_pixel", *traced_pixel(name)], cwd)
    assert result.exit_code == 0, result.output
    py_lines = [line for line in trace_lines(alone) if line.startswith("TRACE_PY")]
    assert py_lines and py_lines == trace_lines(alone)
    assert [line for line in trace_lines(result.output) if line.startswith("TRACE_PY")] == py_lines
    # Like the reference, the run announces the traced pixel before rendering.
    slow, fast = traced_pixel(name)
    assert f"TRACE_CONFIG: tracing pixel (spixel={slow}, fpixel={fast})" in result.output.splitlines()


@pytest.mark.parametrize("name", ["simple_cubic", "phi_from_zero"])
def test_trace_diff_reads_raw_logs_of_both_programs(name, tmp_path):
    """The logs as the programs print them: nanoBragg's whole output (its TRACE: banner lines, its
    TRACE_C lines) and `nbnumba run -trace_pixel`'s whole output (TRACE_CONFIG, summary)."""
    cwd = case_dir(tmp_path)
    stdout = (GOLDEN / "cases" / name / "stdout.txt").read_text()
    slow, fast = traced_pixel(name)
    config = f"TRACE_C: detector_convention=MOSFLM\nTRACE_CONFIG: tracing pixel (spixel={slow}, fpixel={fast})\n"
    (cwd / "nanoBragg.log").write_text(stdout + config + reference_trace(name))
    run = invoke("run", [*CASES[name]["args"], *output_flags(name), "-trace_pixel", *traced_pixel(name)], cwd)
    assert run.exit_code == 0, run.output
    (cwd / "nbnumba.log").write_text(run.output)

    compared = invoke("trace-diff", ["nanoBragg.log", "nbnumba.log", "--tolerance", "1e-9"], cwd)
    assert compared.exit_code == 0, compared.output
    assert " 0 beyond tolerance" in compared.output and "0 only in the reference, 0 only in ours" in compared.output
    assert "skipped TRACE lines that hold no quantity: 2 in nanoBragg.log, 1 in nbnumba.log" in compared.output


def test_phi_zero_carry_over_starts_from_unrotated_lattice(tmp_path):
    """φ = 0 is not rotated: the first pixel sees the unrotated lattice, later ones the previous pixel's."""
    cwd = case_dir(tmp_path)
    name = "phi_from_zero"
    first = field(run_trace(name, cwd, ["0", "0"]), "rot_a_angstroms")
    first_fixed = field(run_trace(name, cwd, ["0", "0"], ["-fix_phi0"]), "rot_a_angstroms")
    later = field(run_trace(name, cwd), "rot_a_angstroms")
    later_fixed = field(run_trace(name, cwd, extra=["-fix_phi0"]), "rot_a_angstroms")

    # The first φ step (phi = 0) of the first sub-pixel of the first pixel rendered: nothing to carry
    # over yet, so the lattice is the unrotated one, as with -fix_phi0.
    assert first and first_fixed
    assert first[0] == first_fixed[0]
    # With -fix_phi0 every φ = 0 step uses the unrotated lattice, in every pixel and sub-pixel.
    assert set(first_fixed) == set(later_fixed) == {first[0]}
    # Without it, pixel (65, 0) starts from the last φ step of pixel (64, 127): a rotated lattice.
    assert later[0] != later_fixed[0]
    assert later[0] == pytest.approx(field(reference_trace(name), "rot_a_angstroms")[0], rel=1e-12)


@pytest.mark.parametrize("pixel", [["9999", "0"], ["0", "128"], ["-1", "0"]])
def test_trace_out_of_range_pixel(pixel, tmp_path):
    result = invoke("trace", ["--pixel", *pixel, *CASES["beam_center_128"]["args"]], case_dir(tmp_path))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbnumba: error:"), result.output
    assert "outside" in lines[0]

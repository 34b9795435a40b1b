import io
import json
from pathlib import Path

import pytest

from nbnumba.commands.trace_diff import diff_traces, format_table, main, parse_log, parse_trace, to_json
from nbnumba.errors import UserError

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
GOLDEN_TRACES = sorted((GOLDEN / "cases").glob("*/trace.txt"))

REF = """\
a program's own output line, not part of the trace
TRACE_C: pix0_vector_meters 0.1 0.0129 -0.0129
TRACE_C: lambda_meters 6.2e-10
TRACE_C: hkl_rounded 0 0 0
TRACE_C: F_latt 124.359406127515
TRACE_C_PHI phi_tic=0 phi_deg=0 k_frac=0.00806451411290393 F_latt_b=4.9871716675354 F_latt=124.359406127515
TRACE_C: steps 1
TRACE_C: I_pixel_final 154.652464271383
another line of ordinary output: 42 values written
"""


def _ours(text: str, **changes: str) -> str:
    """The reference log re-labelled as nbnumba output, with chosen lines replaced."""
    lines = []
    for line in text.replace("TRACE_C", "TRACE_PY").splitlines():
        parts = line.split()
        if len(parts) > 1 and parts[1] in changes:
            line = changes[parts[1]]
        lines.append(line)
    return "\n".join(lines) + "\n"


def _diff(ref: str, ours: str, **kw):
    return diff_traces(parse_trace(ref), parse_trace(ours), **kw)


def _row(result, key):
    (row,) = [r for r in result.rows if r.key == key]
    return row


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parse_keeps_trace_lines_in_order_and_skips_others():
    entries = parse_trace(REF)
    assert [e.key for e in entries] == [
        "pix0_vector_meters", "lambda_meters", "hkl_rounded", "F_latt",
        "phi[0].phi_deg", "phi[0].k_frac", "phi[0].F_latt_b", "phi[0].F_latt",
        "steps", "I_pixel_final",
    ]
    assert entries[0].values == (0.1, 0.0129, -0.0129)
    assert entries[2].values == (0.0, 0.0, 0.0)
    assert all(isinstance(v, float) for e in entries for v in e.values)
    assert entries[0].line == 2


def test_phi_lines_become_one_entry_per_field():
    entries = parse_trace("TRACE_C_PHI phi_tic=3 phi_deg=0.3 F_latt=2.5\n"
                          "TRACE_C_PHI phi_tic=3 phi_deg=0.3 F_latt=2.75\n")
    assert [(e.key, e.values) for e in entries] == [
        ("phi[3].phi_deg#0", (0.3,)), ("phi[3].F_latt#0", (2.5,)),
        ("phi[3].phi_deg#1", (0.3,)), ("phi[3].F_latt#1", (2.75,)),
    ]


def test_identical_logs_with_different_prefixes_agree(tmp_path):
    ours = REF.replace("TRACE_C", "TRACE_PY")
    result = _diff(REF, ours)
    assert result.ok and result.first_divergence is None
    assert {r.status for r in result.rows} == {"ok"}
    out = io.StringIO()
    assert main(_write(tmp_path, "c.txt", REF), _write(tmp_path, "py.txt", ours), out=out) == 0
    assert out.getvalue().rstrip().endswith(
        "10 quantities compared, 0 beyond tolerance 1e-06; 0 only in the reference, 0 only in ours; "
        "no divergence")


def test_any_trace_prefix_is_accepted():
    ours = REF.replace("TRACE_C:", "TRACE_GPU:").replace("TRACE_C_PHI", "TRACE_GPU_PHI")
    assert _diff(REF, ours).ok


def test_relative_change_of_1e_3_is_first_divergence(tmp_path):
    ours = _ours(REF, F_latt="TRACE_PY: F_latt 124.483765533642",
                 steps="TRACE_PY: steps 2")
    result = _diff(REF, ours)
    row = _row(result, "F_latt")
    assert row.status == "DIFF"
    assert row.rel_delta == pytest.approx(1e-3 / 1.001, rel=1e-6)
    assert row.abs_delta == pytest.approx(0.124359406127, rel=1e-6)
    assert result.first_divergence is row
    assert not result.ok

    out = io.StringIO()
    assert main(_write(tmp_path, "c.txt", REF), _write(tmp_path, "py.txt", ours), out=out) == 1
    text = out.getvalue()
    marked = [line for line in text.splitlines() if "<-- first divergence" in line]
    assert len(marked) == 1 and marked[0].startswith("F_latt ")
    assert text.rstrip().endswith(
        "10 quantities compared, 2 beyond tolerance 1e-06; 0 only in the reference, 0 only in ours; "
        "first divergence: F_latt")


def test_tiny_relative_change_passes():
    ours = _ours(REF, F_latt="TRACE_PY: F_latt 124.359406127516")
    result = _diff(REF, ours, tolerance=1e-6)
    assert result.ok
    assert 0 < _row(result, "F_latt").rel_delta < 1e-11


def test_abs_floor_covers_values_that_should_be_zero():
    ref = "TRACE_C: rot_b_angstroms -0 100 6.12323399573677e-15\n"
    ours = "TRACE_PY: rot_b_angstroms 0 100 0\n"
    assert _diff(ref, ours).ok
    assert not _diff(ref, ours, abs_floor=0.0).ok


def test_missing_in_ours_is_reported_apart_and_passes(tmp_path):
    ours = "\n".join(line for line in REF.replace("TRACE_C", "TRACE_PY").splitlines()
                     if "hkl_rounded" not in line)
    result = _diff(REF, ours)
    assert _row(result, "hkl_rounded").status == "missing-in-ours"
    assert result.ok and result.first_divergence is None and result.n_one_side == 1
    printed = io.StringIO()
    assert main(_write(tmp_path, "c.txt", REF), _write(tmp_path, "py.txt", ours), out=printed) == 0
    table = printed.getvalue()
    assert table.index("printed by one program only") < table.index("hkl_rounded")
    assert "1 only in the reference, 0 only in ours" in table


def test_extra_key_in_ours_is_appended_as_missing_in_ref():
    ours = REF.replace("TRACE_C", "TRACE_PY") + "TRACE_PY: debug_extra 1 2\n"
    result = _diff(REF, ours)
    assert result.rows[-1].key == "debug_extra"
    assert result.rows[-1].status == "missing-in-ref"
    assert result.rows[-1].ref is None and result.rows[-1].ours == (1.0, 2.0)
    assert result.ok


def test_different_component_count_is_shape():
    ours = _ours(REF, hkl_rounded="TRACE_PY: hkl_rounded 0 0")
    result = _diff(REF, ours)
    row = _row(result, "hkl_rounded")
    assert row.status == "shape" and row.abs_delta is None
    assert result.first_divergence is row


def test_repeated_blocks_compare_by_occurrence():
    block = "TRACE_C: pixel_pos_meters 0.05 {y} -0.0005\nTRACE_C: F_latt {f}\n"
    ref = "".join(block.format(y=y, f=f) for y, f in [(1e-4, 5.0), (2e-4, 16.0), (3e-4, 7.0)])
    ours = ref.replace("F_latt 16.0", "F_latt 16.5").replace("TRACE_C", "TRACE_PY")
    result = _diff(ref, ours)
    assert [r.key for r in result.rows if r.status != "ok"] == ["F_latt#1"]
    assert result.first_divergence.key == "F_latt#1"
    assert _row(result, "F_latt#0").status == "ok"
    assert _row(result, "pixel_pos_meters#2").status == "ok"


def test_key_repeated_only_in_ours_lines_up_with_first_occurrence():
    ref = "TRACE_C: F_latt 5\n"
    ours = "TRACE_PY: F_latt 5\nTRACE_PY: F_latt 6\n"
    result = _diff(ref, ours)
    assert [(r.key, r.status) for r in result.rows] == [
        ("F_latt#0", "ok"), ("F_latt#1", "missing-in-ref")]


def test_phi_field_difference_is_named_per_field():
    ours = REF.replace("TRACE_C", "TRACE_PY").replace("F_latt_b=4.9871716675354",
                                                      "F_latt_b=4.99")
    result = _diff(REF, ours)
    assert [r.key for r in result.rows if r.status != "ok"] == ["phi[0].F_latt_b"]


def test_non_finite_values_compare_by_identity():
    assert _diff("TRACE_C: x nan inf\n", "TRACE_PY: x -nan inf\n").ok
    row = _diff("TRACE_C: x 1\n", "TRACE_PY: x nan\n").rows[0]
    assert row.status == "DIFF" and row.abs_delta == float("inf")


@pytest.mark.parametrize("text, line", [
    ("hello\nTRACE_C: pix0 0.1 abc 0.2\n", 2),
    ("a\nb\nTRACE_C:\n", 3),
    ("TRACE_C: 0.1 0.2\n", 1),
    ("x\nTRACE_C: steps\n", 2),
    ("TRACE_C: detector_convention=MOSFLM\n", 1),
    ("TRACE_CONFIG: tracing pixel (spixel=128, fpixel=128)\n", 1),
    ("TRACE_C_PHI phi_deg=0 F_latt=1\n", 1),
    ("\n\nTRACE_C_PHI phi_tic=0 F_latt\n", 3),
    ("TRACE_C_PHI phi_tic=0 F_latt=x\n", 1),
])
def test_trace_lines_without_a_quantity_are_skipped_and_counted(text, line):
    entries, skipped = parse_log(text + "TRACE_C: F_latt 5\n")
    assert [(e.key, e.values) for e in entries] == [("F_latt", (5.0,))]
    assert [n for n, _ in skipped] == [line]


def test_json_report_round_trips(tmp_path):
    ours = _ours(REF, F_latt="TRACE_PY: F_latt 124.483765533642")
    json_path = tmp_path / "diff.json"
    code = main(_write(tmp_path, "c.txt", REF), _write(tmp_path, "py.txt", ours),
                tolerance=1e-5, json_path=json_path, out=io.StringIO())
    assert code == 1
    with open(json_path) as fh:
        report = json.load(fh)
    assert report == to_json(_diff(REF, ours, tolerance=1e-5))
    assert report["tolerance"] == 1e-5
    assert report["first_divergence"] == "F_latt"
    assert report["quantities"] == 10 and report["beyond_tolerance"] == 1
    assert report["counts"]["DIFF"] == 1 and report["ok"] is False
    row = report["rows"][3]
    assert row["key"] == "F_latt" and row["status"] == "DIFF"
    assert row["ref"] == [124.359406127515] and row["ours"] == [124.483765533642]


def test_json_keeps_non_finite_values_strict():
    report = to_json(_diff("TRACE_C: x 1\n", "TRACE_PY: x nan\n"))
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text)["rows"][0]["ours"] == ["nan"]


def test_table_columns_are_aligned():
    table = format_table(_diff(REF, _ours(REF, steps="TRACE_PY: steps 2")))
    lines = table.splitlines()
    header, rows = lines[0], lines[2:-1]
    start = header.index("status")
    assert all(line[start:].split()[0] in {"ok", "DIFF"} for line in rows)
    assert len(rows) == 10


def test_unreadable_file_is_user_error(tmp_path):
    ref = _write(tmp_path, "c.txt", REF)
    with pytest.raises(UserError, match="missing.txt"):
        main(ref, tmp_path / "missing.txt", out=io.StringIO())


def test_skipped_lines_are_counted_in_the_output(tmp_path):
    raw = REF + "TRACE_C: detector_convention=MOSFLM\n"
    printed = io.StringIO()
    assert main(_write(tmp_path, "c.txt", raw), _write(tmp_path, "py.txt", _ours(REF)), out=printed) == 0
    assert "skipped TRACE lines that hold no quantity: 1 in" in printed.getvalue()


def test_file_without_trace_lines_is_user_error(tmp_path):
    with pytest.raises(UserError, match="no TRACE_ lines"):
        main(_write(tmp_path, "c.txt", REF), _write(tmp_path, "log.txt", "hello\n"),
             out=io.StringIO())


def test_negative_tolerance_is_user_error(tmp_path):
    ref = _write(tmp_path, "c.txt", REF)
    with pytest.raises(UserError, match="tolerance"):
        main(ref, ref, tolerance=-1.0, out=io.StringIO())


@pytest.mark.parametrize("path", GOLDEN_TRACES, ids=[p.parent.name for p in GOLDEN_TRACES])
def test_golden_trace_parses_and_matches_itself(path):
    text = path.read_text()
    entries = parse_trace(text)
    assert len(entries) >= sum(line.startswith("TRACE_C:") for line in text.splitlines())
    assert entries
    result = diff_traces(entries, parse_trace(text.replace("TRACE_C", "TRACE_PY")))
    assert result.ok, format_table(result)
    assert main(path, path, out=io.StringIO()) == 0

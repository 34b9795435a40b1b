"""Bad input ends in one `nbnumba: error:` line and a clean exit code, never a traceback or stray output.

Exit code 2 is a mistake on the command line or in an input file (reported before anything is
rendered or written), 1 a failure while running (an output that cannot be written).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from golden import GOLDEN, invoke

from nbnumba.model.options import looks_numeric

BASE = ("-cell 100 100 100 90 90 90 -default_F 100 -lambda 6.2 -N 3 -distance 100 -detpixels 16 "
        "-pixel 0.1 -floatfile out.bin -intfile out.img -nonoise -nopgm -noprogress").split()


def replace(flag: str, *values: str, args: list[str] = BASE) -> list[str]:
    """BASE with `flag`'s values replaced (no values: the flag removed)."""
    i = args.index(flag)
    end = i + 1
    while end < len(args) and not (args[end].startswith("-") and not looks_numeric(args[end])):
        end += 1
    return args[:i] + ([flag, *values] if values else []) + args[end:]


def error_lines(result) -> list[str]:
    """The lines written to stderr (the mixed output where stderr is not kept apart)."""
    try:
        text = result.stderr
    except ValueError:  # click < 8.2 with mix_stderr=True
        text = result.output
    return [line for line in text.splitlines() if line.strip()]


def assert_clean_failure(result, code: int, cwd: Path, before: list[str]) -> str:
    output = result.output
    assert result.exit_code == code, output
    assert "Traceback" not in output
    assert "internal error" not in output, output
    errors = error_lines(result)
    assert len(errors) == 1 and errors[0].startswith("nbnumba: error: "), output
    assert [line for line in output.splitlines() if line.startswith("nbnumba:")] == errors, output
    if code == 2:
        # An input error is found before anything is printed, rendered or written.
        assert output.strip() == errors[0], output
    assert sorted(os.listdir(cwd)) == before, "a failed run left files behind"
    return errors[0]


def fail(tmp_path: Path, args: list[str], code: int = 2, files: dict[str, bytes | str] | None = None) -> str:
    for name, content in (files or {}).items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    before = sorted(os.listdir(tmp_path))
    result = invoke("run", args, tmp_path)
    return assert_clean_failure(result, code, tmp_path, before)


def test_base_command_works(tmp_path):
    """The bad inputs below are each one change away from this good command."""
    result = invoke("run", BASE, tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ["out.bin", "out.img"]


# --- input files ---------------------------------------------------------------------------------

def test_missing_hkl_file(tmp_path):
    message = fail(tmp_path, [*BASE, "-hkl", "nope.hkl"])
    assert "nope.hkl" in message


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_mat_file(tmp_path):
    mat = tmp_path / "A.mat"
    mat.write_text("0.01 0 0\n0 0.01 0\n0 0 0.01\n")
    mat.chmod(0)
    message = fail(tmp_path, [*replace("-cell"), "-mat", "A.mat"])
    assert "A.mat" in message


def test_mat_is_a_directory(tmp_path):
    (tmp_path / "A.mat").mkdir()
    message = fail(tmp_path, [*replace("-cell"), "-mat", "A.mat"])
    assert "A.mat" in message


def test_binary_mat_file(tmp_path):
    message = fail(tmp_path, [*replace("-cell"), "-mat", "A.mat"], files={"A.mat": bytes(range(256)) * 4})
    assert "A.mat" in message


def test_missing_mat_file(tmp_path):
    message = fail(tmp_path, [*replace("-cell"), "-mat", "nope.mat"])
    assert "nope.mat" in message


def test_malformed_hkl_line(tmp_path):
    message = fail(tmp_path, [*BASE, "-hkl", "bad.hkl"], files={"bad.hkl": "0 0 0 10\n1 0 0 x\n2 0 0 5\n"})
    assert "bad.hkl" in message and "line 2" in message


@pytest.mark.parametrize("text", ["0.01 0 0\n0 0.01 0\n0 0\n", ""], ids=["eight_numbers", "empty"])
def test_matrix_with_fewer_than_nine_numbers(tmp_path, text):
    message = fail(tmp_path, [*replace("-cell"), "-mat", "short.mat"], files={"short.mat": text})
    assert "short.mat" in message and "9" in message


def test_zero_matrix(tmp_path):
    message = fail(tmp_path, [*replace("-cell"), "-mat", "zero.mat"], files={"zero.mat": "0 0 0\n0 0 0\n0 0 0\n"})
    assert "zero.mat" in message


def test_truncated_smv_image(tmp_path):
    data = (GOLDEN / "inputs" / "header.img").read_bytes()
    message = fail(tmp_path, [*BASE, "-img", "trunc.img"], files={"trunc.img": data[:1000]})
    assert "trunc.img" in message


def test_smv_image_shorter_than_its_header(tmp_path):
    message = fail(tmp_path, [*BASE, "-img", "tiny.img"], files={"tiny.img": "{\nHEADER_BYTES=512;\n"})
    assert "tiny.img" in message


def test_mask_of_the_wrong_size(tmp_path):
    mask = (GOLDEN / "inputs" / "mask.img").read_bytes()  # 128 x 96; the detector is 16 x 16
    message = fail(tmp_path, [*BASE, "-mask", "mask.img"], files={"mask.img": mask})
    assert "mask.img" in message


def test_missing_sourcefile(tmp_path):
    assert "nope.txt" in fail(tmp_path, [*BASE, "-sourcefile", "nope.txt"])


def test_divergence_steps_larger_than_their_range(tmp_path):
    """nanoBragg keeps no source and writes an image of NaN."""
    message = fail(tmp_path, [*BASE, "-hdivrange", "1", "-vdivrange", "1", "-hdivstep", "2", "-vdivstep", "2"])
    assert "-hdivstep" in message and "no X-ray source" in message


# --- the command line ----------------------------------------------------------------------------

def test_unknown_flag_suggests_the_right_one(tmp_path):
    message = fail(tmp_path, [*BASE, "-lamda", "1"])
    assert "-lamda" in message and "-lambda" in message.split("-lamda", 1)[1]


def test_stray_argument(tmp_path):
    assert "stray" in fail(tmp_path, [*BASE, "stray"])


def test_flag_without_value_at_the_end(tmp_path):
    assert "-distance" in fail(tmp_path, [*replace("-distance"), "-distance"])


def test_truncated_cell(tmp_path):
    assert "-cell" in fail(tmp_path, replace("-cell", "100", "100"))


@pytest.mark.parametrize("flag, value", [("-distance", "abc"), ("-pixel", "nan"), ("-lambda", "inf"),
                                         ("-distance", "-inf"), ("-N", "2.5")])
def test_bad_number(tmp_path, flag, value):
    message = fail(tmp_path, replace(flag, value))
    assert flag in message and value in message


@pytest.mark.parametrize("flag, value", [("-pixel", "-0.1"), ("-pixel", "0"), ("-lambda", "0"), ("-lambda", "-1"),
                                         ("-N", "-1"), ("-distance", "0")])
def test_value_out_of_range(tmp_path, flag, value):
    fail(tmp_path, replace(flag, value))


def test_zero_energy(tmp_path):
    assert "-energy" in fail(tmp_path, [*replace("-lambda"), "-energy", "0"])


def test_zero_detpixels(tmp_path):
    assert "-detpixels" in fail(tmp_path, replace("-detpixels", "0"))


@pytest.mark.parametrize("cell", ["100 100 100 90 90 180", "100 100 100 60 60 120"], ids=["flat", "coplanar"])
def test_zero_volume_cell(tmp_path, cell):
    assert "-cell" in fail(tmp_path, replace("-cell", *cell.split()))


def test_impossible_cell_angles(tmp_path):
    assert "-cell" in fail(tmp_path, replace("-cell", "100", "100", "100", "0.001", "0.001", "179.99"))


def test_cell_with_zero_edge(tmp_path):
    assert "-cell" in fail(tmp_path, replace("-cell", "0", "100", "100", "90", "90", "90"))


def test_no_crystal(tmp_path):
    message = fail(tmp_path, replace("-cell"))
    assert "-mat" in message and "-cell" in message


def test_no_structure_factors(tmp_path):
    assert not (tmp_path / "Fdump.bin").exists()
    message = fail(tmp_path, replace("-default_F"))
    assert "-hkl" in message and "-default_F" in message


@pytest.mark.parametrize("flags", [["-detpixels", "2000000"], ["-detpixels_x", "2000000000", "-detpixels_y", "16"]],
                         ids=["square", "one_side"])
def test_detector_too_large_fails_fast(tmp_path, flags):
    args = replace("-detpixels")
    start = time.perf_counter()
    message = fail(tmp_path, [*args, *flags])
    assert time.perf_counter() - start < 5, "the size check must come before any allocation or rendering"
    assert "memory" in message


@pytest.mark.parametrize("flag, value", [("-precision", "triple"), ("-device", "tpu"), ("-pivot", "middle"),
                                         ("-nthreads", "100000")])
def test_bad_word_choice(tmp_path, flag, value):
    message = fail(tmp_path, [*BASE, flag, value])
    assert flag in message and value in message


# --- outputs -------------------------------------------------------------------------------------

def test_output_into_a_missing_directory(tmp_path):
    message = fail(tmp_path, replace("-floatfile", "nodir/x.bin"), code=1)
    assert "nodir/x.bin" in message


def test_output_onto_a_directory(tmp_path):
    (tmp_path / "taken").mkdir()
    assert "taken" in fail(tmp_path, replace("-floatfile", "taken"), code=1)


@pytest.mark.parametrize("args", [replace("-intfile", "nodir/x.img"),
                                  [a for a in BASE if a != "-nonoise"] + ["-noisefile", "nodir/n.img"]],
                         ids=["intfile", "noisefile"])
def test_later_output_into_a_missing_directory_writes_nothing(tmp_path, args):
    fail(tmp_path, args, code=1)


@pytest.mark.parametrize("bad", [["-distance", "abc"], ["-hkl", "nope.hkl"], ["-lamda", "1"]],
                         ids=["bad_number", "missing_hkl", "unknown_flag"])
def test_failed_run_leaves_existing_output_untouched(tmp_path, bad):
    sentinel = b"sentinel: not an image \x00\x01\x02" * 7
    (tmp_path / "out.bin").write_bytes(sentinel)
    (tmp_path / "out.img").write_bytes(sentinel[::-1])
    args = replace(bad[0], *bad[1:]) if bad[0] in BASE else [*BASE, *bad]
    fail(tmp_path, args)
    assert (tmp_path / "out.bin").read_bytes() == sentinel
    assert (tmp_path / "out.img").read_bytes() == sentinel[::-1]

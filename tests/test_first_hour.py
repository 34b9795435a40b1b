"""What a nanoBragg user tries first: flags straight after the program name, -h anywhere, a
gzipped input, and a word while the kernels compile."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest
from golden import CASES, GOLDEN, case_dir, output_flags, reference_float
from golden import invoke_line as nbnumba


def test_flags_straight_after_the_program_name_are_a_run(tmp_path):
    cwd = case_dir(tmp_path)
    name = "simple_cubic"
    bare = nbnumba([*CASES[name]["args"], *output_flags(name)], cwd)
    assert bare.exit_code == 0, bare.output
    alone = (cwd / "float.bin").read_bytes()
    assert np.array_equal(np.frombuffer(alone, dtype="<f4").reshape(CASES[name]["shape"]), reference_float(name))
    run = nbnumba(["run", *CASES[name]["args"], *output_flags(name)], cwd)
    assert run.exit_code == 0 and (cwd / "float.bin").read_bytes() == alone


@pytest.mark.parametrize("word", ["-h", "-help", "--help"])
@pytest.mark.parametrize("command", [[], ["run"], ["trace"], ["flags"], ["compare"], ["trace-diff"], ["sweep"],
                                     ["batch"]])
def test_help_words_print_help_everywhere(command, word, tmp_path):
    result = nbnumba([*command, word], tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")


def test_run_help_says_where_the_flags_are(tmp_path):
    text = nbnumba(["run", "-h"], tmp_path).output
    assert "nbnumba flags" in text and "-precision" in text and "-device" in text
    assert "nbnumba flags" in nbnumba(["-h"], tmp_path).output


def test_a_help_word_among_flags_is_not_taken_apart(tmp_path):
    """-hkl, -hdivrange... begin with -h: they stay nanoBragg flags."""
    result = nbnumba(["-hkl", "missing.hkl", "-cell", "50", "50", "50", "90", "90", "90"], tmp_path)
    assert result.exit_code == 2
    assert "missing.hkl" in result.output and "Usage" not in result.output


def test_gzipped_hkl_gives_the_same_image(tmp_path):
    name = "hkl_nearest"
    cwd = case_dir(tmp_path)
    args = list(CASES[name]["args"])
    at = args.index("-hkl") + 1
    (cwd / "F.hkl.gz").write_bytes(gzip.compress((GOLDEN / args[at]).read_bytes()))
    args[at] = "F.hkl.gz"
    result = nbnumba(["run", *args, *output_flags(name)], cwd)
    assert result.exit_code == 0, result.output
    image = np.fromfile(cwd / "float.bin", dtype="<f4").reshape(CASES[name]["shape"])
    assert np.array_equal(image, reference_float(name))


def test_damaged_gzip_is_a_one_line_error(tmp_path):
    (tmp_path / "F.hkl.gz").write_bytes(gzip.compress(b"1 2 3 100\n" * 50)[:30])
    result = nbnumba(["run", "-hkl", "F.hkl.gz", "-cell", "50", "50", "50", "90", "90", "90"], tmp_path)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert "F.hkl.gz" in result.output and "gzip" in result.output


def test_first_run_says_that_it_compiles(tmp_path):
    """A fresh cache folder: the notice names it, once; the next run is silent about it."""
    env = {**os.environ, "NBNUMBA_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "nbnumba", "run", "-cell", "50", "50", "50", "90", "90", "90", "-default_F", "1",
            "-detpixels", "8", "-nonoise", "-nopgm", "-noprogress", "-precision", "single"]
    first = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    notices = [line for line in first.stderr.splitlines() if "compiling" in line]
    assert len(notices) == 1 and str(tmp_path / "cache") in notices[0], first.stderr
    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert "compiling" not in again.stderr

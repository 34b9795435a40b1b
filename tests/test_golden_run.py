"""Every recorded reference case through `nbnumba run`: images, headers and printed geometry."""

from __future__ import annotations

import re

import numpy as np
import pytest
from golden import CASES, GOLDEN, case_dir, invoke, output_flags, reference_float

from nbnumba.io.smv import read_smv

# What the two programs print differently by design: our own first line, the reference's TRACE:
# notes on the cell set-up, and the output file names (the runner renamed the reference's outputs
# after the run).  The recorded output holds no banner or mmap() pointers (tests/data/README.md).
REFERENCE_ONLY = re.compile(r"^TRACE:")
OURS_ONLY = re.compile(r"^nbnumba \S+: ")
FILE_NAME = re.compile(r"^writing \S+ as ")
def printed_lines(text: str, drop: re.Pattern) -> list[str]:
    return [FILE_NAME.sub("writing FILE as ", line.rstrip()) for line in text.splitlines() if not drop.match(line)]


def reference_lines(name: str) -> list[str]:
    return printed_lines((GOLDEN / "cases" / name / "stdout.txt").read_text(), REFERENCE_ONLY)


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_matches_reference(name, tmp_path):
    case = CASES[name]
    cwd = case_dir(tmp_path)
    result = invoke("run", [*case["args"], *output_flags(name)], cwd)
    assert result.exit_code == 0, result.output

    ours = np.fromfile(cwd / "float.bin", dtype="<f4").reshape(case["shape"])
    ref = reference_float(name)
    peak = float(np.abs(ref).max())
    assert float(np.abs(ours.astype(np.float64) - ref).max()) <= 1e-5 * peak
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] >= 0.999999
    assert ours.sum(dtype=np.float64) == pytest.approx(case["sum"], rel=1e-6)

    files = case["files"]
    if "int" in files:
        mine, theirs = read_smv(cwd / "int.img"), read_smv(GOLDEN / "cases" / name / "int.img")
        assert int(np.abs(mine.data.astype(int) - theirs.data.astype(int)).max()) <= 1
        assert mine.header == theirs.header
    if "noise" in files:
        assert (cwd / "noise.img").read_bytes() == (GOLDEN / "cases" / name / "noise.img").read_bytes()
    if "pgm" in files:
        assert (cwd / "image.pgm").read_bytes() == (GOLDEN / "cases" / name / "image.pgm").read_bytes()

    # line for line: geometry, crystal, sources, statistics, file notes
    assert printed_lines(result.stdout, OURS_ONLY) == reference_lines(name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_in_single_precision(name, tmp_path):
    case = CASES[name]
    cwd = case_dir(tmp_path)
    result = invoke("run", [*case["args"], *output_flags(name), "-precision", "single"], cwd)
    assert result.exit_code == 0, result.output
    ours = np.fromfile(cwd / "float.bin", dtype="<f4").reshape(case["shape"])
    ref = reference_float(name)
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] >= 0.9999
    assert ours.sum(dtype=np.float64) / ref.sum(dtype=np.float64) == pytest.approx(1.0, abs=1e-3)

"""Access to the reference's recorded outputs (data/golden) and a way to run a case."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from nbnumba.cli import main

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
CASES = json.loads((GOLDEN / "cases" / "manifest.json").read_text())["cases"]


def reference_float(name: str) -> np.ndarray:
    case = CASES[name]
    data = gzip.decompress((GOLDEN / "cases" / name / "float.bin.gz").read_bytes())
    return np.frombuffer(data, dtype="<f4").reshape(case["shape"])


def output_flags(name: str) -> list[str]:
    """The output flags the reference was run with (REFERENCE.md)."""
    files = CASES[name]["files"]
    flags = ["-floatfile", "float.bin", "-noprogress"]
    flags += ["-intfile", "int.img"]
    flags += ["-noisefile", "noise.img"] if "noise" in files else ["-nonoise"]
    flags += ["-pgmfile", "image.pgm"] if "pgm" in files else ["-nopgm"]
    return flags


def case_dir(tmp_path: Path) -> Path:
    """A fresh directory where inputs/ points at the corpus inputs (cases name them inputs/...)."""
    os.symlink(GOLDEN / "inputs", tmp_path / "inputs")
    return tmp_path


def invoke(command: str, args: list[str], cwd: Path):
    return invoke_line([command, *args], cwd)


def invoke_line(args, cwd: Path):
    """The nbnumba command with these arguments, run in `cwd`."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)

"""The README stays true: its commands are what CI runs, its flag table is the parser's, and its
example simulation works."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import numpy as np

from golden import invoke

from nbnumba.io.smv import read_smv

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_ci_runs_exactly_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = ci.split("# README:\n", 1)[1].splitlines()
    assert ci_lines[:2] == quick_start_commands()
    assert quick_start_commands()[1] == "python -m pytest"
    assert "python3 -m venv" in ci and "git clone" in ci  # a clean environment, not this one


def test_flag_table_is_generated_from_the_parser():
    table = README.split("<!-- flags:start -->\n", 1)[1].split("<!-- flags:end -->", 1)[0]
    printed = subprocess.run(["nbnumba", "flags"], capture_output=True, text=True, check=True).stdout
    assert table == printed


def test_example_simulation_runs(tmp_path):
    install, run = quick_start_commands()[0].split(" && ")
    assert install == 'pip install -e ".[test]"'
    args = shlex.split(run)[2:]
    args = [str(ROOT / a) if a.startswith("data/") else a for a in args] + ["-noprogress"]
    result = invoke("run", args, tmp_path)
    assert result.exit_code == 0, result.output
    image = np.fromfile(tmp_path / "example.bin", dtype="<f4").reshape(512, 512)
    assert image.max() > 0 and np.isfinite(image).all()
    noise = read_smv(tmp_path / "example_noise.img")
    assert noise.data.shape == (512, 512) and noise.data.max() > 40
    assert (tmp_path / "example.pgm").read_bytes().startswith(b"P5\n512 512\n")
    assert (tmp_path / "Fdump.bin").exists()


def example_blocks() -> list[str]:
    """Every bash block after the quick start: examples a reader copies."""
    rest = README.split("## Quick start", 1)[1].split("\n## ", 1)[1]
    return re.findall(r"```bash\n(.*?)\n```", rest, flags=re.S)


def test_every_readme_example_runs_as_written(tmp_path):
    (tmp_path / "data").symlink_to(ROOT / "data")
    assert example_blocks()
    for block in example_blocks():
        for line in block.splitlines():
            done = subprocess.run(line, shell=True, cwd=tmp_path, capture_output=True, text=True)
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"




def realistic_command() -> list[str]:
    """The README's one realistic image, its files found from the repository root."""
    block = next(b for b in re.findall(r"```text\n(.*?)\n```", README, flags=re.S) if "-bg_stol" in b)
    args = shlex.split(block)
    assert args[:2] == ["nbnumba", "run"]
    return [str(ROOT / a) if a.startswith("tests/data/") else a for a in args[2:]]


def test_the_realistic_image_is_believable(tmp_path):
    """No overloads, a median background of a few to tens of photons, spots well above it."""
    (tmp_path / "data").symlink_to(ROOT / "data")
    args = realistic_command()
    result = invoke("run", [*args, "-noprogress"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "overloaded" not in result.output and "(0 overloads)" in result.output
    floats = np.fromfile(tmp_path / "real.bin", dtype="<f4")
    assert 1.0 <= np.median(floats) <= 100.0 and floats.max() > 10 * np.median(floats)
    for name in ("real.img", "real_noise.img"):
        counts = read_smv(tmp_path / name).data
        assert counts.max() < 65535, name
    assert 1.0 <= np.median(read_smv(tmp_path / "real.img").data) - 40 <= 100.0  # the ADC offset is 40


def test_a_saturated_image_says_so_once(tmp_path):
    """The same crystal at nanoBragg's default fluence and beam through 20 nm of water: every
    pixel overloads, and one warning line says so."""
    (tmp_path / "data").symlink_to(ROOT / "data")
    args = realistic_command()
    for flag in ("-flux", "-exposure", "-beamsize"):
        at = args.index(flag)
        del args[at:at + 2]
    args[args.index("-bg_thick") + 1] = "0.00002"
    result = invoke("run", [*args, "-noprogress"], tmp_path)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "overloaded" in line]
    assert len(warnings) == 1 and warnings[0].startswith("nbnumba: warning: ") and "of the noise image" in warnings[0]
    counts = read_smv(tmp_path / "real_noise.img").data
    assert f"{np.count_nonzero(counts == 65535)} of {counts.size} pixels" in warnings[0]

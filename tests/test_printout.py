"""`-printout_pixel F S` prints nanoBragg's per-pixel report; its numbers are the traced pixel's."""

from __future__ import annotations

import numpy as np
import pytest
from golden import CASES, GOLDEN, case_dir, invoke

from nbnumba.commands.trace_diff import parse_trace


def reference_values(name: str) -> dict[str, tuple[float, ...]]:
    return {e.base: e.values for e in parse_trace((GOLDEN / "cases" / name / "trace.txt").read_text())}


def report(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if " : stol = " in line)
    return lines[start:start + 15]


@pytest.mark.parametrize("name", ["simple_cubic", "nopolar"])
def test_printout_pixel_reports_the_traced_pixel(name, tmp_path):
    cwd = case_dir(tmp_path)
    slow, fast = CASES[name]["trace_pixel_slow_fast"]
    result = invoke("run", [*CASES[name]["args"], "-floatfile", "float.bin", "-nonoise", "-nopgm",
                            "-printout_pixel", str(fast), str(slow)], cwd)
    assert result.exit_code == 0, result.output
    lines = report(result.stdout)
    ref = reference_values(name)
    assert lines[0].split(":")[0].split() == [str(fast), str(slow)]
    stol, test = float(lines[0].split()[5]), float(lines[0].split()[7])
    q = np.array(ref["scattering_vec_A_inv"])
    assert stol == pytest.approx(0.5 * np.linalg.norm(q), rel=1e-5)
    assert test * 1e10 == pytest.approx(stol, rel=1e-4)  # the reference's two ways to the same sin(theta)/lambda
    assert [float(v) for v in lines[1].split()[1:]] == pytest.approx(ref["pixel_pos_meters"], rel=1e-5, abs=1e-12)
    hkl, hkl0 = lines[2].split("hkl0=")
    assert [float(v) for v in hkl.split()[1:]] == pytest.approx(ref["hkl_frac"], abs=1e-6)
    assert [int(v) for v in hkl0.split()] == [int(v) for v in ref["hkl_rounded"]]
    words = lines[3].replace("=", " ").split()
    assert float(words[1]) == pytest.approx(ref["F_cell"][0], rel=1e-5)
    assert float(words[3]) == pytest.approx(ref["F_latt"][0], rel=1e-5)
    assert float(words[5]) == pytest.approx(ref["I_before_scaling"][0], rel=1e-5)
    named = {line.split()[0]: float(line.split()[1]) for line in lines[4:9]}
    assert named["I/steps"] == pytest.approx(ref["I_before_scaling"][0] / ref["steps"][0], rel=1e-9)
    assert named["polar"] == pytest.approx(ref["polar"][0], rel=1e-9)
    assert named["omega"] == pytest.approx(ref["omega_pixel"][0], rel=1e-9)
    assert named["capfrac"] == pytest.approx(ref["capture_fraction"][0], rel=1e-9)
    image = np.fromfile(cwd / "float.bin", dtype="<f4").reshape(CASES[name]["shape"])
    assert named["pixel"] == pytest.approx(float(image[slow, fast]), rel=1e-9)
    assert named["pixel"] == pytest.approx(ref["floatimage_accumulated"][0], rel=1e-7)
    assert lines[9] == "real-space cell vectors (Angstrom):"
    axes = np.array([[float(v) for v in line.split()[1:]] for line in lines[11:14]])
    assert axes.T.ravel() == pytest.approx(ref["rot_a_angstroms"] + ref["rot_b_angstroms"] + ref["rot_c_angstroms"],
                                           abs=1e-8)
    assert "% done" not in result.output  # -printout turns the progress meter off, as in nanoBragg


def test_printout_without_a_pixel_reports_every_rendered_pixel(tmp_path):
    cwd = case_dir(tmp_path)
    result = invoke("run", [*CASES["simple_cubic"]["args"], "-roi", "10", "12", "20", "21", "-floatfile", "f.bin",
                            "-nonoise", "-nopgm", "-printout"], cwd)
    assert result.exit_code == 0, result.output
    reported = [tuple(int(v) for v in line.split(":")[0].split()) for line in result.stdout.splitlines()
                if " : stol = " in line]
    assert reported == [(f, s) for s in (20, 21) for f in (10, 11, 12)]


def test_printout_pixel_outside_the_roi_prints_nothing(tmp_path):
    cwd = case_dir(tmp_path)
    result = invoke("run", [*CASES["simple_cubic"]["args"], "-roi", "10", "12", "20", "21", "-floatfile", "f.bin",
                            "-nonoise", "-nopgm", "-printout_pixel", "100", "100"], cwd)
    assert result.exit_code == 0, result.output
    assert " : stol = " not in result.stdout


def test_printout_reports_the_last_evaluation_of_a_pixel(tmp_path):
    """Four phi steps and 2x2 sub-pixels: the h k l and cell axes are those of the last phi step,
    seen from the last sub-pixel, as nanoBragg prints them."""
    from nbnumba import api

    cwd = case_dir(tmp_path)
    args = [*CASES["phi_osc"]["args"], "-oversample", "2"]
    result = invoke("run", [*args, "-floatfile", "f.bin", "-nonoise", "-nopgm", "-printout_pixel", "43", "60"], cwd)
    assert result.exit_code == 0, result.output
    lines = report(result.stdout)
    sim = api.simulation(args)
    last = sim.lattice[-1, -1, -1]  # the last phi step's last mosaic domain, axes a b c (m)
    axes = np.array([[float(v) for v in line.split()[1:]] for line in lines[11:14]]).T
    assert axes.ravel() == pytest.approx(last.ravel() * 1e10, abs=1e-7)
    position = np.array([float(v) for v in lines[1].split()[1:]])
    diffracted = position / np.linalg.norm(position)
    q = (diffracted - np.array(sim.detector.beam)) / sim.lambda0
    hkl = [float(v) for v in lines[2].split("hkl0=")[0].split()[1:]]
    assert hkl == pytest.approx([float(np.dot(a * 1e-10, q)) for a in axes], abs=2e-5)

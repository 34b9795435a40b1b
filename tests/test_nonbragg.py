"""`nbnumba nonbragg` against nonBragg's recorded outputs (data/suite/nonbragg) and bad inputs."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import golden
import numpy as np
import pytest

SUITE = Path(__file__).resolve().parent / "data" / "suite"
MANIFEST = json.loads((SUITE / "manifest.json").read_text())["cases"]
CASES = sorted(name.split("/", 1)[1] for name, case in MANIFEST.items() if case["program"] == "nonbragg")
WATER = ["-stol", "inputs/water.stol", "-thickness", "0.1", "-density", "1", "-MW", "18", "-lambda", "1",
         "-flux", "1e12", "-exposure", "1", "-beamsize", "0.1", "-distance", "100", "-pixel", "0.2"]


def output_flags(files: dict) -> list[str]:
    """The output flags the corpus runner added (suite README)."""
    flags = ["-floatfile", "float.bin", "-noprogress"]
    if "int" in files:
        flags += ["-intfile", "int.img"]
    flags += ["-noisefile", "noise.img"] if "noise" in files else ["-nonoise"]
    flags += ["-pgmfile", "image.pgm"] if "pgm" in files else ["-nopgm"]
    return flags


def invoke(args: list[str], cwd: Path):
    return golden.invoke("nonbragg", args, cwd)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Every case rendered once, in its own folder (inputs/ points at the corpus inputs)."""
    results = {}
    for name in CASES:
        folder = tmp_path_factory.mktemp(name)
        os.symlink(SUITE / "inputs", folder / "inputs")
        case = MANIFEST[f"nonbragg/{name}"]
        results[name] = (folder, invoke([*case["args"], *output_flags(case["files"])], folder))
    return results


def reference_float(name: str) -> np.ndarray:
    return np.frombuffer(gzip.decompress((SUITE / "nonbragg" / name / "float.bin.gz").read_bytes()), dtype="<f4")


@pytest.mark.parametrize("name", CASES)
def test_case(rendered, name):
    folder, result = rendered[name]
    assert result.exit_code == 0, result.output
    case = MANIFEST[f"nonbragg/{name}"]
    ref = reference_float(name).astype(np.float64)
    ours = np.fromfile(folder / "float.bin", dtype="<f4").astype(np.float64)
    assert ours.size == int(np.prod(case["shape"]))
    peak = np.abs(ref).max()
    assert np.abs(ours - ref).max() <= 1e-5 * peak
    assert np.corrcoef(ours, ref)[0, 1] >= 0.999999
    ref_dir = SUITE / "nonbragg" / name
    if "int" in case["files"]:
        a = np.frombuffer((ref_dir / "int.img").read_bytes()[512:], dtype="<u2").astype(int)
        b = np.frombuffer((folder / "int.img").read_bytes()[512:], dtype="<u2").astype(int)
        assert (ref_dir / "int.img").read_bytes()[:512] == (folder / "int.img").read_bytes()[:512]
        assert np.abs(a - b).max() <= 1
    if "noise" in case["files"]:
        assert (ref_dir / "noise.img").read_bytes() == (folder / "noise.img").read_bytes()
    if "pgm" in case["files"]:
        ours_pgm = (folder / "image.pgm").read_bytes()
        # the reference writes two bytes per pixel: the pixels, then memory that follows them
        assert (ref_dir / "image.pgm").read_bytes()[:len(ours_pgm)] == ours_pgm
    expected = (ref_dir / "stdout.txt").read_text().splitlines()
    if "pgm" not in case["files"]:  # the reference writes the PGM even under -nopgm
        expected = [line for line in expected if not line.startswith("writing image.pgm")]
    assert result.output.splitlines()[1:] == expected


def test_fix_spline_removes_the_overshoot(tmp_path):
    """ice.stol jumps from 0 to its first ring: the reference's cubic swings negative there."""
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    case = MANIFEST["nonbragg/ice_rings"]
    ref = reference_float("ice_rings")
    assert ref.min() < -1e3 * abs(np.median(ref))  # the defect is visible in the corpus
    result = invoke([*case["args"], "-fix_spline", "-floatfile", "fixed.bin", "-nonoise", "-nopgm", "-noprogress"],
                    tmp_path)
    assert result.exit_code == 0, result.output
    fixed = np.fromfile(tmp_path / "fixed.bin", dtype="<f4")
    assert fixed.min() >= 0.0
    # away from the ring edges the two agree: the clamp only acts where the cubic leaves its bracket
    same = np.isclose(fixed, ref, rtol=1e-6)
    assert same.mean() > 0.5


def test_fix_stats_uses_the_roi_pixels(tmp_path):
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    case = MANIFEST["nonbragg/water_roi"]
    result = invoke([*case["args"], "-fix_stats", "-floatfile", "f.bin", "-nonoise", "-nopgm", "-noprogress"],
                    tmp_path)
    assert result.exit_code == 0, result.output
    image = reference_float("water_roi").reshape(case["shape"])[10:61, 20:91].astype(np.float64)
    rmsd = np.sqrt(((image - image.mean()) ** 2).sum() / (image.size - 1))
    line = next(line for line in result.output.splitlines() if line.startswith("mean="))
    assert line.endswith(f"rmsd= {rmsd:g}")


@pytest.mark.parametrize("args,message", [
    ([], "no amorphous scattering table"),
    (["-hdivrange", "1", "-vdivrange", "1", "-hdivstep", "2", "-vdivstep", "2"], "no X-ray source"),
    (["-lambda", "0.1", "-distance", "5"], "the table covers sin(theta)/lambda 0 to 0.5"),
    (["-stol", "inputs/missing.stol"], "missing.stol"),
    (["-thickness", "abc"], "expects a number"),
    (["-detpixels", "0"], "-detpixels must be an integer >= 1 (got 0)"),
    (["-img", "x.img"], "cannot read x.img"),
    (["-bogus"], "unknown flag -bogus"),
    (["-MW", "0"], "-MW must be positive"),
    (["-device", "gpu"], "-device must be cpu, cuda or auto (got 'gpu')"),
    (["-stol", "inputs/falling.stol"], "must increase from row to row (row 3 does not)"),
    (["-detpixels", "10000000"], "memory"),
], ids=["no-table", "no-source", "table-too-short", "missing-table", "bad-number", "no-pixels", "img",
        "unknown-flag", "zero-MW", "bad-device", "falling-table", "too-large"])
def test_bad_input_is_one_line_and_no_file(tmp_path, args, message):
    (tmp_path / "inputs").mkdir()
    for table in (SUITE / "inputs").iterdir():
        os.symlink(table, tmp_path / "inputs" / table.name)
    (tmp_path / "inputs" / "falling.stol").write_text("0 1\n0.2 2\n0.1 3\n0.5 4\n")
    base = [] if args == [] else WATER
    code = "import sys; from nbnumba.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", code, "nonbragg", *base, "-detpixels", "16", *args,
                           "-floatfile", "f.bin", "-noprogress"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbnumba: error:") and message in lines[0], done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]


def test_flag_table_lists_the_nonbragg_flags():
    result = invoke(["--flags"], Path.cwd())
    assert result.exit_code == 0
    for flag in ("-stol", "-4stol", "-Q", "-sample_thick", "-molecules", "-fix_spline", "-fix_stats"):
        assert f"| `{flag}` |" in result.output


CUDA_CASES = ["water_curved", "water_dispersion", "water_sourcefile", "water_polar", "water_point_pixel",
              "ice_rings"]
CUDA_CHECK = """
import json, sys
import numpy as np
from nbnumba.commands import nonbragg
from nbnumba.model.nonbragg import build
out = {}
for name, args in json.loads(sys.argv[1]).items():
    nb = build(args)
    cpu = nonbragg.background(nb, "cpu", last=True)
    gpu = nonbragg.background(nb, "cuda", last=True)
    lit = np.isfinite(cpu.last[..., 0])
    out[name] = [float(np.abs(cpu.image.astype(float) - gpu.image).max()), float(np.abs(cpu.image).max()),
                 cpu.omega_sum, gpu.omega_sum, list(cpu.stol_range), list(gpu.stol_range),
                 int((gpu.image != 0).sum()), int(lit.sum()),
                 bool(np.array_equal(np.isfinite(gpu.last), np.isfinite(cpu.last))),
                 float(np.abs(cpu.last[lit] / gpu.last[lit] - 1).max())]
print(json.dumps(out))
"""


def test_cuda_kernel_matches_cpu_in_simulator(tmp_path):
    """The CUDA kernel in Numba's simulator on a 3x3 ROI of several cases (one fixed spline)."""
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    runs = {}
    for name in CUDA_CASES:
        case = MANIFEST[f"nonbragg/{name}"]
        s, f = (v // 2 for v in case["shape"])
        extra = []
        if name == "ice_rings":  # on the brightest ring, with the fixed spline
            s, f = np.unravel_index(int(np.argmax(reference_float(name))), case["shape"])
            s, f = min(max(int(s) - 6, 1), case["shape"][0] - 9), min(max(int(f), 1), case["shape"][1] - 2)
            extra = ["-fix_spline"]
        runs[name] = [*case["args"], *extra, "-roi", str(f - 1), str(f + 1), str(s + 5), str(s + 7)]
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    done = subprocess.run([sys.executable, "-c", CUDA_CHECK, json.dumps(runs)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for name, (diff, peak, omega_cpu, omega_gpu, range_cpu, range_gpu, lit, kept, same_pixels,
               last_diff) in json.loads(done.stdout).items():
        assert lit >= (1 if name == "ice_rings" else 9) and peak > 0, name  # ice is dark between rings
        assert diff <= 1e-12 * peak, name
        assert omega_gpu == pytest.approx(omega_cpu, rel=1e-14)
        assert range_gpu == range_cpu
        # each ROI pixel's last sin(theta)/lambda, polarization and solid angle (for -img)
        assert kept == 9 and same_pixels and last_diff <= 1e-14, name


LOWER_CHECK = """
import types as pytypes
import numpy as np
import numba.cuda.dispatcher as dispatcher
from numba import cuda, typeof, types
from numba.cuda.compiler import compile_cuda
if getattr(cuda, "implementation", "") != "NVIDIA" or not hasattr(dispatcher, "get_current_device"):
    print("SKIP: numba.cuda is not numba-cuda's NVIDIA target")
    raise SystemExit(0)
# device functions ask the current GPU for its compute capability while compiling
dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=(8, 0))
from nbnumba.physics import amorphous_layout as A
from nbnumba.kernels import amorphous_cuda
kernel = amorphous_cuda._build()
args = [np.zeros(A.N_GEO), np.zeros(A.N_INT, np.int64), np.zeros((2, A.N_SOURCE)), np.zeros((2, 8)),
        np.zeros(1, np.int64), np.int64(0), np.int64(0), np.zeros((2, 2), np.float32), np.zeros((2, 2)),
        np.zeros((2, 2, 2)), np.zeros((2, 2, 3)), np.int64(1)]
compile_cuda(kernel.py_func, types.void, tuple(typeof(x) for x in args), cc=(8, 0))
print("LOWERED")
"""


def test_cuda_kernel_compiles_for_the_gpu_target():
    """Typing and lowering for a real GPU (no GPU needed): what the simulator cannot check."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run([sys.executable, "-c", LOWER_CHECK], env=env, capture_output=True, text=True, timeout=300)
    if done.stdout.startswith("SKIP"):
        pytest.skip(done.stdout.strip())
    assert done.returncode == 0 and "LOWERED" in done.stdout, done.stderr[-3000:]


CACHE_CHECK = """
import json, os
import numba
from numba.core.dispatcher import Dispatcher
import nbnumba.commands.nonbragg
from nbnumba.runtime import jitcache
from nbnumba.amorphous import report as nonbragg_report
from nbnumba.kernels import amorphous_cpu
found = [obj for space in (vars(amorphous_cpu), vars(nonbragg_report)) for obj in space.values()
         if isinstance(obj, Dispatcher) and getattr(obj._cache, "_cache_path", None)]
print(json.dumps({"folder": os.path.basename(numba.config.CACHE_DIR), "hash": jitcache.source_hash(),
                  "count": len(found),
                  "misplaced": [d.py_func.__qualname__ for d in found
                                if not d._cache._cache_path.startswith(numba.config.CACHE_DIR)]}))
"""


def test_nonbragg_kernels_cache_in_the_source_hash_folder():
    """The amorphous sources are part of the hash, and every nonbragg kernel caches under it."""
    from nbnumba.runtime import jitcache

    hashed = {str(path.relative_to(jitcache._PACKAGE)) for path in jitcache.source_files()}
    assert {"physics/amorphous.py", "kernels/amorphous_cpu.py", "kernels/amorphous_cuda.py"} <= hashed
    done = subprocess.run([sys.executable, "-c", CACHE_CHECK], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    assert report["folder"] == report["hash"] and report["count"] >= 3 and report["misplaced"] == []


def test_background_on_a_run_simulation(tmp_path, monkeypatch):
    """`run`'s geometry can carry the background: the nanoBragg beam centre that puts the beam
    where nonBragg's default does gives water_basic's image."""
    from nbnumba import api
    from nbnumba.amorphous.setup import background_on
    from nbnumba.model.amorphous_sample import read_stol_table, run_source_rows, sample_in_beam

    monkeypatch.chdir(tmp_path)  # no Fdump.bin here to be read
    sim = api.simulation(["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1", "-lambda", "1",
                          "-flux", "1e12", "-exposure", "1", "-beamsize", "0.1", "-distance", "100",
                          "-detpixels", "128", "-pixel", "0.2", "-Xbeam", "12.8", "-Ybeam", "12.6"])
    table = read_stol_table(str(SUITE / "inputs" / "water.stol"), 1e10)
    sample, _ = sample_in_beam(1e-4, 1e-4, 1e-4, 1e6, 18.0, 0.0, sim.params.beamsize)
    image = background_on(sim, run_source_rows(sim), table, sample).image.ravel().astype(np.float64)
    ref = reference_float("water_basic").astype(np.float64)
    assert np.abs(image - ref).max() <= 1e-6 * ref.max()


def test_fix_stats_keeps_bright_squares_finite(tmp_path):
    """The reference squares each pixel in float: above 1.8e19 photons its rms is inf."""
    os.symlink(SUITE / "inputs", tmp_path / "inputs")
    args = [*WATER, "-detpixels", "8", "-point_pixel", "-flux", "1e22", "-nonoise", "-nopgm", "-noprogress"]
    lines = {}
    for extra in ([], ["-fix_stats"]):
        result = invoke([*args, *extra, "-floatfile", "f.bin"], tmp_path)
        assert result.exit_code == 0, result.output
        lines[bool(extra)] = next(line for line in result.output.splitlines() if line.startswith("mean="))
    image = np.fromfile(tmp_path / "f.bin", dtype="<f4").astype(np.float64)
    assert image.min() > 2e19
    assert " rms= inf " in lines[False]
    assert f" rms= {np.sqrt((image * image).sum() / (image.size - 1)):g} " in lines[True]

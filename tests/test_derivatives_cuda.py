"""The CUDA derivative kernel against the CPU's, in Numba's CUDA simulator (no GPU needed).

The simulator must be on before numba is imported: this file run as a script (`python
tests/test_derivatives_cuda.py OUTDIR`) computes the derivative images and reduced gradients of
4x4-pixel ROIs of the feature mixes of test_derivatives on both devices and saves them; the tests
compare them here.  The simulator runs the physics as Python and takes three minutes: these tests
run with `-m slow`, as CI's CUDA step runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden import GOLDEN
from test_derivatives import MIXES

ROI = " -roi 8 11 8 11"
SINGLE = ["phi_mosaic", "gauss"]
F_ARGS = ("-cell 70 80 90 85 95 100 -N 5 -lambda 1 -distance 60 -detpixels 20 -pixel 0.5 -misset 5 3 2 "
          "-mosaic 0.2 -mosaic_dom 2 -hkl inputs/P1_dense.hkl -nointerpolate" + ROI)


def _child(out: Path):
    from nbnumba import api

    os.chdir(GOLDEN)
    rng = np.random.default_rng(3)
    runs = [(mix, "double") for mix in MIXES] + [(mix, "single") for mix in SINGLE]
    for mix, precision in runs:
        args, names = MIXES[mix][:2]
        sim = api.simulation((args + ROI).split())
        weights = rng.normal(size=sim.shape)
        saved = {}
        for device in ("cpu", "cuda"):
            result = api.jacobian(sim, names, device=device, precision=precision)
            saved[f"image_{device}"] = result.image
            saved[f"derivatives_{device}"] = np.stack([result.derivatives[n] for n in names])
            reduced = api.gradient(sim, weights, names, device=device, precision=precision)
            saved[f"gradient_{device}"] = np.array([reduced.gradient[n] for n in names])
        np.savez(out / f"{mix}-{precision}.npz", **saved)
    for name, args in (("F", F_ARGS), ("F_interpolated", F_ARGS.replace("-N 5", "-N 2").replace("-nointerpolate",
                                                                                                     "-interpolate"))):
        sim = api.simulation(args.split())
        weights = rng.normal(size=sim.shape)
        saved = {}
        for device in ("cpu", "cuda"):
            reduced = api.gradient(sim, weights, ["rotx", "F"], device=device)
            saved[f"F_{device}"] = reduced.F_gradient
        np.savez(out / f"{name}.npz", **saved)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("three minutes in the CUDA simulator: run with -m slow")
    out = tmp_path_factory.mktemp("derivatives_cuda")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(root / "tests"), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, __file__, str(out)], env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


TOLERANCE = {"double": 1e-12, "single": 1e-4}


@pytest.mark.slow
@pytest.mark.parametrize("run", [(m, "double") for m in sorted(MIXES)] + [(m, "single") for m in SINGLE])
def test_cuda_matches_cpu(simulated, run):
    mix, precision = run
    saved = np.load(simulated / f"{mix}-{precision}.npz")
    tol = TOLERANCE[precision]
    assert saved["image_cpu"].max() > 0
    assert np.abs(saved["image_cuda"] - saved["image_cpu"]).max() <= tol * saved["image_cpu"].max()
    for cpu, cuda in zip(saved["derivatives_cpu"], saved["derivatives_cuda"]):
        assert np.abs(cuda - cpu).max() <= tol * np.abs(cpu).max()
    scale = np.abs(saved["gradient_cpu"]).max()
    assert np.abs(saved["gradient_cuda"] - saved["gradient_cpu"]).max() <= tol * scale


@pytest.mark.slow
@pytest.mark.parametrize("name", ["F", "F_interpolated"])
def test_cuda_structure_factor_gradient_matches_cpu(simulated, name):
    saved = np.load(simulated / f"{name}.npz")
    assert np.abs(saved["F_cpu"]).max() > 0
    assert np.abs(saved["F_cuda"] - saved["F_cpu"]).max() <= 1e-12 * np.abs(saved["F_cpu"]).max()


if __name__ == "__main__":
    _child(Path(sys.argv[1]))


def test_derivative_kernel_compiles_for_sm90_without_spills():
    """The supervisor's 16-parameter derivative kernel, both precisions, through the pip compiler
    wheels (skipped without the `nbnumba[cuda]` extra)."""
    from test_cuda_static import _no_toolkit_env, _wheels_missing

    reason = _wheels_missing()
    if reason:
        pytest.skip(reason)
    root = Path(__file__).resolve().parents[1]
    code = ("import json, sys; sys.path.insert(0, 'benchmarks'); import gpu_static as g; "
            "rows = g.measure_derivatives(g.golden_args('supervisor_roi'), g.SIXTEEN, 'sm_90', cwd=g.GOLDEN); "
            "print(json.dumps(rows))")
    env = dict(_no_toolkit_env(), PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    import json
    for row in json.loads(done.stdout.strip().splitlines()[-1]):
        assert row["spill_stores"] == 0 and row["spill_loads"] == 0, row
        assert 0 < row["registers"] <= 255, row

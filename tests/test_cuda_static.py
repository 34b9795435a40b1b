"""The supervisor command's GPU render kernel compiled for an H100/H200 (sm_90) without a GPU:
no spills and no more registers than issue 12's targets, in both precisions.

It needs the `nbnumba[cuda]` extra (NVVM and ptxas from NVIDIA's pip wheels) and skips without
it.  The compile runs in a child process with any system CUDA toolkit hidden (no CUDA_HOME or
CUDA_PATH, no toolkit folder on PATH), so a pass shows the wheels alone are enough.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from golden import CASES, GOLDEN

ARCH = "sm_90"
TARGET_REGISTERS = {"double": 96, "single": 56}
# the golden cases of the other feature keys (interpolation, curved detector, sub-step factors,
# several sources, crystal shapes): each must compile without spills
OTHER_KEYS = ["hkl_interpolate", "curved_det", "oversample_3_flags", "sourcefile", "xtal_round", "xtal_gauss",
              "xtal_tophat"]


def _wheels_missing() -> str | None:
    """Why the compiler wheels cannot be used here, or None."""
    code = ("from cuda import pathfinder; import json; p = pathfinder.find_nvidia_binary_utility('ptxas'); "
            "n = pathfinder.load_nvidia_dynamic_lib('nvvm'); print(json.dumps([p, n.found_via]))")
    done = subprocess.run([sys.executable, "-c", code], env=_no_toolkit_env(), capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        return "the nvidia compiler wheels are absent (pip install 'nbnumba[cuda]'): " + done.stderr.strip()[-200:]
    ptxas, nvvm_via = json.loads(done.stdout)
    if not ptxas or "site-packages" not in ptxas or nvvm_via != "site-packages":
        return f"ptxas / NVVM not from the pip wheels (ptxas {ptxas}, NVVM via {nvvm_via}): pip install 'nbnumba[cuda]'"
    return None


def _no_toolkit_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH", "NUMBA_ENABLE_CUDASIM")}
    folders = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(d for d in folders if not os.path.exists(os.path.join(d, "ptxas"))
                                  and not os.path.exists(os.path.join(d, "nvcc")))
    return env


def _compile(cases: list[str]) -> dict:
    """{case: {precision: ptxas figures of the render kernel}} from a child process."""
    done = subprocess.run([sys.executable, __file__, *cases], env=_no_toolkit_env(), cwd=GOLDEN,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def wheels():
    reason = _wheels_missing()
    if reason:
        pytest.skip(reason)


def _supervisor_args() -> list[str]:
    args = CASES["supervisor_roi"]["args"]
    i = args.index("-roi")
    return args[:i] + args[i + 5:]


def test_supervisor_kernel_fits_without_spills(wheels):
    figures = _compile(["supervisor"])["supervisor"]
    for precision, limit in TARGET_REGISTERS.items():
        f = figures[precision]
        assert f["spill_stores"] == 0 and f["spill_loads"] == 0, f"{precision}: {f}"
        assert f["local_memory"] == 0, f"{precision}: {f}"
        assert 0 < f["registers"] <= limit, f"{precision}: {f['registers']} registers > {limit}"


@pytest.mark.slow
def test_every_other_feature_key_compiles_without_spills(wheels, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("two minutes of compiling: run with -m slow")
    for case, figures in _compile(OTHER_KEYS).items():
        for precision, f in figures.items():
            assert f["spill_stores"] == 0 and f["spill_loads"] == 0, f"{case} {precision}: {f}"


def _child(cases: list[str]) -> None:
    from nbnumba.kernels import cuda as gpu
    from nbnumba.kernels.render import kernel_arrays
    from nbnumba.model.simulation import build

    ptxas = gpu.ptxas_path()
    result = {}
    for case in cases:
        sim = build(_supervisor_args() if case == "supervisor" else CASES[case]["args"])
        result[case] = {}
        for precision in ("double", "single"):
            ptx = gpu.compile_ptx(kernel_arrays(sim, precision), (9, 0))["render_window"]
            result[case][precision] = gpu.assemble(ptx, ARCH, ptxas)
    print(json.dumps(result))


if __name__ == "__main__":
    _child(sys.argv[1:])


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, os.path.join(root, "benchmarks", name), *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": root})


def test_gpu_scripts_parse_their_arguments():
    """The GPU scripts cannot be run here in full: their command lines at least must hold."""
    done = _script("gpu_static.py")
    assert done.returncode == 2 and "give the run flags after --" in done.stderr
    done = _script("gpu_static.py", "--arch", "sm_9", "--", "-detpixels", "4")
    assert done.returncode != 0 and "expected a name like sm_90" in done.stderr
    done = _script("gpu_device_check.py", "--cases", "beam_center_64,no_such_case")
    assert done.returncode == 2 and "unknown golden case(s): no_such_case" in done.stderr
    done = _script("gpu_device_check.py", "--help")
    assert done.returncode == 0 and "--budget" in done.stdout

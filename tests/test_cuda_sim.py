"""The CUDA backend against the CPU backend, in Numba's CUDA simulator (no GPU needed).

The simulator must be switched on before numba is imported, so the CUDA work runs in a child
process: this file run as a script (`python tests/test_cuda_sim.py OUTDIR`) renders small ROIs
of golden cases with both backends and saves the arrays; the tests compare them here.

Each case is rendered twice per backend: through `nbnumba.kernels.render.render` (whole passes, as the
CLI does), and by calling `render_rows` directly over three scan ranges split mid-row inside the
ROI, on an image pre-filled with a sentinel, recording the per-row solid-angle sums and flag
columns after every call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from golden import CASES, GOLDEN

DOUBLE = ["oversample_2", "oversample_3_flags", "absorption", "mosaic_seeded", "phi_osc", "phi_from_zero",
          "sourcefile", "divergence_round", "xtal_round", "xtal_gauss", "xtal_tophat", "hkl_interpolate",
          "hkl_interp_fallback", "mask_header", "curved_det", "polar_kahn", "water", "point_pixel",
          "comprehensive", "supervisor_roi_phi_nonzero"]
SINGLE = ["mosaic_seeded", "phi_osc", "xtal_round", "hkl_interpolate", "oversample_3_flags"]
RUNS = [(name, "double") for name in DOUBLE] + [(name, "single") for name in SINGLE]
TOLERANCE = {"double": 1e-12, "single": 1e-4}  # relative to the largest value, images and solid angles
SENTINEL = -7.25  # pixels outside the rendered scan range must keep it
SMALL_RUN = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-lambda", "1.0", "-N", "5",
             "-distance", "100", "-detpixels", "6", "-pixel", "0.1", "-phi", "0", "-osc", "1", "-phisteps", "2"]


def _env(simulator: bool) -> dict:
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return env


def roi_argv(name: str) -> list[str]:
    """The case's command line with a 4x4 ROI around its traced pixel."""
    case = CASES[name]
    spixels, fpixels = case["shape"]
    s, f = case["trace_pixel_slow_fast"]
    f0 = min(max(f - 1, 0), fpixels - 4)
    s0 = min(max(s - 1, 0), spixels - 4)
    return [*case["args"], "-roi", str(f0), str(f0 + 3), str(s0), str(s0 + 3)]


# ---------------------------------------------------------------------------------------------
# the child process (simulator on)

def _render_blocks(backend, arrays, shape, cuts):
    """render_rows over [0, cut1), [cut1, cut2), ... on a sentinel image; per-call row results."""
    from nbnumba.physics import layout as L

    spixels, fpixels = shape
    arrays = {k: v.copy() for k, v in arrays.items()}
    ints = arrays["ints"]
    image = np.full(shape, SENTINEL, dtype=np.float32)
    omega_rows = np.zeros(spixels)
    flag_rows = np.full((spixels, 2), -1, dtype=np.int64)
    trace = np.zeros((1, L.TRACE_WIDTH))
    omegas, flags = [], []
    bounds = [0, *cuts, spixels * fpixels]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        ints[L.I_RENDER_FROM] = lo
        ints[L.I_RENDER_TO] = hi
        backend.render_rows(arrays["geo"], ints, arrays["sources"], arrays["lattice"], arrays["recip"],
                            arrays["Fhkl"], arrays["mask"], image, omega_rows, flag_rows, trace)
        omegas.append(omega_rows.copy())
        flags.append(flag_rows.copy())
    return image, np.array(omegas), np.array(flags)


def _child_case(name, precision, out: Path):
    from nbnumba.kernels import cpu
    from nbnumba.kernels import cuda as gpu
    from nbnumba.kernels.render import first_active_pixel, kernel_arrays, render
    from nbnumba.model.simulation import build
    from nbnumba.physics import features_of
    from nbnumba.physics import layout as L

    sim = build(roi_argv(name))
    spixels, fpixels = sim.shape
    result = {"features": np.array(features_of(sim.ints), dtype=np.int64)}
    for label, backend in (("cpu", cpu), ("cuda", gpu)):
        rendered = render(sim, backend, precision)
        result[f"image_{label}"] = rendered.image
        result[f"omega_{label}"] = np.array(rendered.omega_sum)
        result[f"left_{label}"] = np.array(rendered.interpolation_left_at)
    arrays = kernel_arrays(sim, precision)
    arrays["ints"][L.I_FIRST_PIXEL] = first_active_pixel(sim)
    s, f = CASES[name]["trace_pixel_slow_fast"]
    cuts = [s * fpixels + f, (s + 1) * fpixels + f + 1]  # mid-row, inside the ROI
    for label, backend in (("cpu", cpu), ("cuda", gpu)):
        image, omegas, flags = _render_blocks(backend, arrays, (spixels, fpixels), cuts)
        result[f"blocks_image_{label}"] = image
        result[f"blocks_omega_{label}"] = omegas
        result[f"blocks_flags_{label}"] = flags
    np.savez(out / f"{name}-{precision}.npz", **result)


def _child_cli(out: Path):
    """`nbnumba run -device cuda` and `-device cpu` on a 6x6 detector."""
    from click.testing import CliRunner

    from nbnumba.cli import main

    codes = {}
    for device in ("cuda", "cpu"):
        result = CliRunner().invoke(main, ["run", *SMALL_RUN, "-device", device, "-floatfile", f"{device}.bin",
                                           "-nonoise", "-nopgm", "-noprogress", "-intfile", f"{device}.img"])
        codes[device] = [result.exit_code, result.output]
    (out / "cli.json").write_text(json.dumps(codes))


def _child_cache(out: Path) -> None:
    """Repeated calls reuse the device tables; an in-place edit of a small table is seen."""
    from nbnumba.kernels import cuda as gpu
    from nbnumba.kernels.render import first_active_pixel, kernel_arrays
    from nbnumba.model.simulation import build
    from nbnumba.physics import layout as L

    sim = build(SMALL_RUN)
    a = kernel_arrays(sim, "double")
    a["ints"][L.I_FIRST_PIXEL] = first_active_pixel(sim)
    image = np.zeros(sim.shape, dtype=np.float32)
    omega_rows = np.zeros(sim.shape[0])
    flag_rows = np.full((sim.shape[0], 2), -1, dtype=np.int64)
    trace = np.zeros((1, L.TRACE_WIDTH))

    def call(lo, hi):
        a["ints"][L.I_RENDER_FROM], a["ints"][L.I_RENDER_TO] = lo, hi
        gpu.render_rows(a["geo"], a["ints"], a["sources"], a["lattice"], a["recip"], a["Fhkl"], a["mask"],
                        image, omega_rows, flag_rows, trace)
        return {name: id(entry[2]) for name, entry in gpu._tables.items()}

    first = call(0, 18)
    second = call(18, 36)
    rendered = image.copy()
    a["geo"][L.G_RE2_FLUENCE] *= 2.0  # the real parameters go by value: an edit is seen without an upload
    third = call(0, 36)
    fluence_seen = bool(rendered.max() > 0 and np.array_equal(image, 2 * rendered))
    rendered = image.copy()
    a["sources"][:, 3] *= 1.01  # an in-place edit of a small table: uploaded again
    fourth = call(0, 36)
    result = {"tables": sorted(first), "reused": first == second == third, "fluence_seen": fluence_seen,
              "sources_uploaded_again": fourth["sources"] != third["sources"],
              "others_kept": all(fourth[k] == third[k] for k in third if k != "sources"),
              "wavelength_seen": bool((image != rendered).any())}
    (out / "cache.json").write_text(json.dumps(result))


def _child(out: Path) -> None:
    import time

    from nbnumba.kernels import cuda as gpu

    assert gpu.available(), "the simulator should make the CUDA backend available"
    os.chdir(out)
    if not (out / "inputs").exists():
        os.symlink(GOLDEN / "inputs", out / "inputs")
    timings = {}
    for name, precision in RUNS:
        t0 = time.perf_counter()
        _child_case(name, precision, out)
        timings[f"{name}-{precision}"] = time.perf_counter() - t0
    _child_cli(out)
    _child_cache(out)
    (out / "timings.json").write_text(json.dumps(timings))


def _child_lower() -> None:
    """Type and lower the kernels for the real CUDA target (no GPU, no NVVM needed), for the
    feature keys of a few small commands.

    The simulator runs the kernels as Python, so it accepts code that Numba's CUDA target
    rejects (e.g. math.floor returns a float there); this catches that without a GPU.
    """
    from numba import cuda, types
    from numba.cuda.compiler import compile_cuda

    from nbnumba.kernels import cuda as gpu
    from nbnumba.kernels.render import kernel_arrays
    from nbnumba.model.simulation import build
    from nbnumba.physics import features_of
    from nbnumba.physics import layout as L

    if getattr(cuda, "implementation", "") != "NVIDIA":
        # numba's own deprecated CUDA target (seen with numba 0.68) cannot even type min(a, b):
        # its verdict says nothing about numba-cuda, which the GPU machines run
        print(f"SKIP: numba.cuda is the {cuda.implementation} target, not numba-cuda")
        return
    import numba.cuda.dispatcher as dispatcher

    if not hasattr(dispatcher, "get_current_device"):
        print("SKIP: this numba-cuda has no dispatcher.get_current_device to stand in for")
        return
    with gpu.standing_in_for((8, 0)):
        for extra in ([], ["-oversample", "2", "-curved_det", "-round_xtal"]):
            sim = build(SMALL_RUN + extra)
            for precision in ("double", "single"):
                a = kernel_arrays(sim, precision)
                render_window = gpu.kernel(a["geo"].dtype, features_of(a["ints"]))
                argtypes = gpu.launch_types(a["geo"], a["ints"], a["sources"], a["lattice"], a["recip"], a["Fhkl"],
                                            a["mask"], np.zeros((1, L.TRACE_WIDTH)))
                compile_cuda(render_window.py_func, types.void, argtypes, cc=(8, 0))
        compile_cuda(gpu.reducer().py_func, types.void, gpu.reducer_types(), cc=(8, 0))
    print("LOWERED")


# ---------------------------------------------------------------------------------------------
# the tests (simulator off in this process)

@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("cuda_sim")
    done = subprocess.run([sys.executable, __file__, str(out)], env=_env(True), cwd=out,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return out


def _close(a, b, rel):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    bound = rel * float(np.abs(a).max(initial=0.0)) + 1e-300
    return float(np.abs(a - b).max(initial=0.0)) <= bound, float(np.abs(a - b).max(initial=0.0)), bound


@pytest.mark.parametrize("name,precision", RUNS, ids=[f"{n}-{p}" for n, p in RUNS])
def test_cuda_matches_cpu(simulated, name, precision):
    data = np.load(simulated / f"{name}-{precision}.npz")
    rel = TOLERANCE[precision]
    assert float(np.abs(data["image_cpu"]).max()) > 0, "the ROI should see some signal"
    ok, diff, bound = _close(data["image_cpu"], data["image_cuda"], rel)
    assert ok, f"image differs by {diff} > {bound}"
    ok, diff, bound = _close(data["omega_cpu"], data["omega_cuda"], rel)
    assert ok, f"solid-angle sum differs by {diff} > {bound}"
    assert int(data["left_cpu"]) == int(data["left_cuda"])

    ok, diff, bound = _close(data["blocks_image_cpu"], data["blocks_image_cuda"], rel)
    assert ok, f"block image differs by {diff} > {bound}"
    outside = data["blocks_image_cpu"] == np.float32(SENTINEL)
    assert outside.sum() > 0 and np.array_equal(outside, data["blocks_image_cuda"] == np.float32(SENTINEL))
    ok, diff, bound = _close(data["blocks_omega_cpu"], data["blocks_omega_cuda"], rel)
    assert ok, f"per-row solid-angle sums differ by {diff} > {bound}"
    assert np.array_equal(data["blocks_flags_cpu"], data["blocks_flags_cuda"])


def test_flag_columns_are_exercised(simulated):
    """The per-row flag comparison means something: some case reports each flag column."""
    left = ran = False
    for name, precision in RUNS:
        flags = np.load(simulated / f"{name}-{precision}.npz")["blocks_flags_cpu"]
        left |= bool((flags[..., 0] >= 0).any())
        ran |= bool((flags[..., 1] >= 0).any())
    assert left and ran


def test_cli_device_cuda_in_simulator(simulated):
    codes = json.loads((simulated / "cli.json").read_text())
    for device in ("cuda", "cpu"):
        assert codes[device][0] == 0, codes[device][1]
    cuda_image = np.fromfile(simulated / "cuda.bin", dtype="<f4")
    cpu_image = np.fromfile(simulated / "cpu.bin", dtype="<f4")
    assert cuda_image.size == 36 and cuda_image.max() > 0
    ok, diff, bound = _close(cpu_image, cuda_image, 1e-12)
    assert ok, f"CLI images differ by {diff} > {bound}"


def test_device_tables_are_cached(simulated):
    result = json.loads((simulated / "cache.json").read_text())
    assert {"sources", "lattice", "recip", "Fhkl", "mask"} <= set(result["tables"])
    assert "geo" not in result["tables"] and "ints" not in result["tables"]  # by value
    assert result["reused"] and result["fluence_seen"]
    assert result["sources_uploaded_again"] and result["others_kept"] and result["wavelength_seen"]


def test_every_feature_key_value_is_exercised(simulated):
    """Each field of the compile-time feature key takes each of its values in some simulated case,
    so every specialised path of the kernel is compared with the CPU."""
    from nbnumba.physics import Features

    seen = {name: set() for name in Features._fields}
    for name, precision in RUNS:
        key = Features(*np.load(simulated / f"{name}-{precision}.npz")["features"].tolist())
        for field in Features._fields:
            seen[field].add(int(getattr(key, field)))
    wanted = {field: {0, 1} for field in Features._fields}
    wanted["shape"] = {0, 1, 2, 3}
    assert seen == wanted


def _no_gpu_here() -> bool:
    import ctypes.util

    return not Path("/dev/nvidia0").exists() and ctypes.util.find_library("cuda") is None


@pytest.mark.skipif(not _no_gpu_here(), reason="this machine has an NVIDIA GPU or driver")
def test_not_available_without_gpu():
    code = "from nbnumba.kernels import cuda; print(cuda.available())"
    done = subprocess.run([sys.executable, "-c", code], env=_env(False), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_kernels_compile_for_the_cuda_target():
    """Typing and lowering for a real GPU: what the simulator cannot check."""
    done = subprocess.run([sys.executable, __file__, "--lower"], env=_env(False), capture_output=True, text=True,
                          timeout=300)
    if done.stdout.startswith("SKIP"):
        pytest.skip(done.stdout.strip())
    assert done.returncode == 0 and "LOWERED" in done.stdout, done.stderr[-4000:]


def test_import_touches_no_cuda():
    code = ("import sys; import nbnumba.kernels.cuda as c; "
            "print(any(m == 'numba.cuda' or m.startswith('numba.cuda.') for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], env=_env(False), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.skipif(not _no_gpu_here(), reason="this machine has an NVIDIA GPU or driver")
def test_device_cuda_without_gpu_is_one_line_error(tmp_path):
    code = "import sys; from nbnumba.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", code, "run", *SMALL_RUN, "-device", "cuda"], env=_env(False),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no usable CUDA GPU" in lines[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout


if __name__ == "__main__":
    if sys.argv[1] == "--lower":
        _child_lower()
    else:
        _child(Path(sys.argv[1]))


def test_tiles_of_rows_when_the_gpu_is_small():
    # a detector larger than the GPU's free memory is rendered in tiles of rows: with room for
    # 3 rows a launch, the image must still be whole and equal to the CPU's
    result = subprocess.run([sys.executable, "-c", TILE_CHECK], env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "equal 3"


TILE_CHECK = """
import numpy as np
from nbnumba import api
from nbnumba.kernels import cuda as backend
backend._rows_that_fit = lambda cols: 3
sim = api.simulation(["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-lambda", "6.2",
                      "-N", "3", "-distance", "100", "-detpixels", "8", "-pixel", "0.1"])
gpu = api.render(sim, "cuda").image
cpu = api.render(sim, "cpu").image
print("equal" if np.array_equal(gpu, cpu) else "differ", len(backend.kernel_seconds))
"""


def test_parameters_by_value_are_int32_and_of_the_precision():
    """What the render kernel takes by value: a 6k x 6k detector's scan indices fit int32; a
    detector past 2^31 pixels is a one-line user error, not a wrapped index."""
    from nbnumba.errors import UserError
    from nbnumba.kernels import cuda as gpu
    from nbnumba.kernels.render import kernel_arrays
    from nbnumba.model.simulation import build
    from nbnumba.physics import layout as L

    sim = build(SMALL_RUN)
    for precision, real in (("double", np.float64), ("single", np.float32)):
        a = kernel_arrays(sim, precision)
        a["ints"][L.I_FPIXELS] = a["ints"][L.I_SPIXELS] = 6144
        a["ints"][L.I_RENDER_TO] = 6144 * 6144
        geo, ints = gpu.by_value(a["geo"], a["ints"])
        assert len(geo) == L.N_GEO and all(type(x) is real for x in geo)
        assert len(ints) == L.N_INT and all(type(x) is np.int32 for x in ints)
        assert int(ints[L.I_RENDER_TO]) == 6144 * 6144
    a["ints"][L.I_FPIXELS] = a["ints"][L.I_SPIXELS] = 46341  # 46341^2 > 2^31 - 1
    with pytest.raises(UserError, match="at most 2147483647 pixels"):
        gpu.by_value(a["geo"], a["ints"])

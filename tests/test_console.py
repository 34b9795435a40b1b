"""The `nbnumba` command skips the interpreter's teardown: what it printed and wrote must still
all be there, with the right exit status."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

TINY = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-lambda", "6.2", "-N", "5",
        "-distance", "100", "-pixel", "0.1", "-detpixels", "24", "-nonoise", "-nopgm", "-noprogress"]


def nbnumba(*args, cwd):
    return subprocess.run([sys.executable, "-W", "ignore", "-m", "nbnumba", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_a_run_delivers_all_its_output(tmp_path):
    done = nbnumba("run", *TINY, "-floatfile", "image.bin", "-intfile", "image.img", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("nbnumba ")
    assert lines[-1] == "writing image.img as 2-byte integers"
    image = np.fromfile(tmp_path / "image.bin", dtype="<f4")
    assert image.size == 24 * 24 and image.max() > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.bin", "image.img"]


def test_a_refused_run_exits_2_with_one_line(tmp_path):
    done = nbnumba("run", *TINY, "-pixel", "-0.1", cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "pixel" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_command_run_in_process_leaves_scipy_importable(tmp_path):
    """A one-shot command blocks SciPy's BLAS while it runs (Numba would load it for nothing); a
    process that goes on afterwards, such as a notebook or the tests, must still be able to fit."""
    code = ("from nbnumba.cli import main\n"
            "try:\n"
            f"    main(['run', *{TINY!r}, '-floatfile', 'image.bin'])\n"
            "except SystemExit as done:\n"
            "    assert not done.code, done.code\n"
            "import scipy.optimize\n"
            "print(scipy.optimize.minimize_scalar(lambda x: (x - 2) ** 2).x)\n")
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert abs(float(done.stdout.splitlines()[-1]) - 2) < 1e-6

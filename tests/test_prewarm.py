"""outputs/prewarm.py: on an empty compile cache `nbnumba run` has a helper process compile its
output kernels while it compiles the render, and loads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

# the nbnumba command in a fresh interpreter, noting the functions it compiled itself
COMMAND = """
import json, os, sys
from numba.core import event

compiled = []

class Compiles(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__name__)

    def on_end(self, ev):
        pass

event.register("numba:compile", Compiles())
leave = os._exit

def report(code):
    with open("compiled.json", "w") as out:
        json.dump(compiled, out)
    leave(code)

os._exit = report
sys.argv[0] = "nbnumba"
from nbnumba.cli import console
console()
"""

ARGS = ("-cell 70 80 90 90 90 90 -default_F 20 -lambda 1 -N 3 -distance 60 -detpixels 24 -pixel 0.3 -seed 5 "
        "-floatfile float.bin -noprogress").split()
OUTPUT_KERNELS = {"_moments", "_deviation", "_fill_counts", "_noise_pixels"}


def _run(folder, threads):
    folder.mkdir()
    env = dict(os.environ, NBNUMBA_CACHE_DIR=str(folder / "cache"))
    subprocess.run([sys.executable, "-c", COMMAND, "run", *ARGS, "-nthreads", str(threads)], cwd=folder, env=env,
                   capture_output=True, check=True)
    return set(json.loads((folder / "compiled.json").read_text()))


def test_a_first_run_loads_the_output_kernels_its_helper_compiled(tmp_path):
    """With two threads the run compiles its render and none of the output kernels, which it loads
    as the helper cached them; they make the images they make when the run compiles them itself
    (one thread: no helper)."""
    from nbnumba.io.smv import read_smv

    helped = _run(tmp_path / "two", 2)
    alone = _run(tmp_path / "one", 1)
    assert "rows_kernel" in helped and OUTPUT_KERNELS & helped == set()
    assert OUTPUT_KERNELS <= alone
    assert list((tmp_path / "two" / "cache").glob("*/compiled-outputs"))
    for name in ("intimage.img", "noiseimage.img"):
        images = [read_smv(tmp_path / run / name).data for run in ("two", "one")]
        assert np.array_equal(*images) and images[0].max() > 0

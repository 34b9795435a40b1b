"""Every cached kernel must cache in nbnumba's own folder (named after the source hash): a function
that caches beside its source instead would survive a change to the physics, and would make a
"fresh" cache folder, such as the benchmark's first runs use, not fresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# a fresh interpreter, importing in the command's own order (a dispatcher picks its cache folder
# when it is defined, so the order matters)
CHECK = """
import json, os
import nbnumba.api, nbnumba.outputs.images
from numba.core.dispatcher import Dispatcher
import numba
from nbnumba.runtime import jitcache
from nbnumba.outputs import images as outputs
from nbnumba.response import rng
from nbnumba.physics.compiled import cpu32, cpu64
from nbnumba.kernels import cpu, trace
found = [obj for space in (vars(rng), vars(outputs), vars(cpu), vars(trace), vars(cpu64), vars(cpu32))
         for obj in space.values() if isinstance(obj, Dispatcher) and getattr(obj._cache, "_cache_path", None)]
folder = numba.config.CACHE_DIR
print(json.dumps({"folder": os.path.basename(folder), "hash": jitcache.source_hash(), "count": len(found),
                  "misplaced": [d.py_func.__qualname__ for d in found if not d._cache._cache_path.startswith(folder)]}))
"""


def test_every_cached_function_uses_the_source_hash_folder():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    assert report["folder"] == report["hash"]
    assert report["count"] > 20
    assert report["misplaced"] == []


def test_every_physics_and_kernel_module_names_the_cache_folder():
    """A module left out of the hash would let its old compiled code be reused after a change."""
    from nbnumba.runtime import jitcache

    hashed = set(jitcache.source_files())
    package = jitcache._PACKAGE
    modules = [*(package / "physics").glob("*.py"), *(package / "kernels").glob("*.py")]
    empty = package / "kernels" / "__init__.py"
    assert len(modules) > 10
    assert [str(m.relative_to(package)) for m in modules if m not in hashed and m != empty] == []


# a render in a fresh interpreter: its image, and whether Numba loaded its compiler's
# implementations (numba.np.arraymath is one of them)
LOAD = """
import json, sys
import numpy as np
from nbnumba import api
image = api.render(api.simulation("-cell 80 90 100 80 90 100 -default_F 10 -lambda 1 -N 4 -distance 50 "
                                  "-detpixels 24 -pixel 0.5 -phisteps 2 -osc 1".split())).image
print(json.dumps({"image": image.tolist(), "compiler_loaded": "numba.np.arraymath" in sys.modules,
                  "typed_in_python": "numpy.ma" in sys.modules}))
"""


def test_cached_kernels_load_without_the_compiler_and_render_the_same(tmp_path):
    """The first run compiles (and so loads Numba's implementations); a run on the warm cache only
    rebuilds the compiled code, and renders the same image bit for bit."""
    env = dict(os.environ, NBNUMBA_CACHE_DIR=str(tmp_path))
    runs = [json.loads(subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, check=True,
                                      env=env).stdout) for _ in range(2)]
    assert runs[0]["compiler_loaded"] and not runs[1]["compiler_loaded"]
    assert not runs[1]["typed_in_python"]  # Numba's typeof of an array imports numpy.ma
    assert runs[0]["image"] == runs[1]["image"]
    assert max(map(max, runs[1]["image"])) > 0


def test_call_names_the_types_numba_dispatch_would():
    import numba
    import numpy as np

    from nbnumba.runtime.jitcache import _signature

    grid = np.arange(24.0).reshape(2, 3, 4)
    frozen = np.zeros(3, dtype=np.uint16)
    frozen.flags.writeable = False
    values = [grid, grid.T, grid[:, ::2], np.zeros(5, dtype=np.float32), frozen, np.zeros((2, 2), dtype=np.int64),
              True, 7, -3, 2.5]
    assert _signature(values) == tuple(numba.typeof(v) for v in values)
    assert _signature([np.float32(1.0)]) is None and _signature(["text"]) is None


# the nbnumba command in a fresh interpreter, writing the modules it loaded when it leaves
COMMAND = """
import json, os, sys
leave = os._exit

def report(code):
    with open("modules.json", "w") as out:
        json.dump(sorted(sys.modules), out)
    leave(code)

os._exit = report
sys.argv[0] = "nbnumba"
from nbnumba.cli import console
console()
"""


def test_a_warm_run_loads_no_module_it_does_not_use(tmp_path):
    """A one-image run on a warm cache, noise image included, only rebuilds its compiled kernels:
    Numba's array implementation (which a kernel that allocates brings along), numpy.ma (which
    Numba's own dispatch imports to type an array) and importlib.metadata (where Numba looks for
    extensions, only before it compiles) stay unloaded.  Each costs a one-image run 10-40 ms."""
    argv = [sys.executable, "-c", COMMAND, "run", *(
        "-cell 70 80 90 90 90 90 -default_F 20 -lambda 1 -N 3 -distance 60 -detpixels 32 -pixel 0.3 "
        "-seed 5 -noprogress").split()]
    loaded, noise = [], []
    for run in ("first", "second"):
        folder = tmp_path / run
        folder.mkdir()
        subprocess.run(argv, cwd=folder, capture_output=True, check=True)
        loaded.append(set(json.loads((folder / "modules.json").read_text())))
        noise.append((folder / "noiseimage.img").read_bytes())
    assert {"numba", "nbnumba.kernels.cpu", "nbnumba.outputs.images"} <= loaded[1]
    assert {"numpy.ma", "numba.np.arrayobj", "importlib.metadata._adapters", "email",
            "numba.core.inline_closurecall"} & loaded[1] == set()
    assert noise[0] == noise[1] and len(noise[1]) > 32 * 32 * 2


def test_inlining_builds_a_callee_once_and_copies_its_scope_once(monkeypatch):
    """runtime/inline_copy.py: once Numba compiles, its inliner runs the front end on an inlined
    function once per compile, where Numba ran it at every call site, and copies its blocks with one
    copy of their scope, where Numba copied the scope with every block (the largest piece of the
    render's first compile); the inlined code computes the same."""
    import numba
    from numba.core.inline_closurecall import InlineWorker

    import nbnumba.runtime.jitcache  # noqa: F401  (registers the patch)

    numba.njit(lambda: 0)()  # a first compile in this process, if none came before
    copies, front_ends = [], []
    inline_ir, run_untyped_passes = InlineWorker.inline_ir, InlineWorker.run_untyped_passes

    def spy(self, *args, **kwargs):
        result = inline_ir(self, *args, **kwargs)
        copies.append(result[0])  # the unmutated copy of the callee
        return result

    def count(self, function, *args, **kwargs):
        front_ends.append(function.__name__)
        return run_untyped_passes(self, function, *args, **kwargs)

    monkeypatch.setattr(InlineWorker, "inline_ir", spy)
    monkeypatch.setattr(InlineWorker, "run_untyped_passes", count)

    @numba.njit(inline="always")
    def steps(x):
        total = 0.0
        for i in range(x):
            if i % 3 == 0:
                total += i
            elif i % 3 == 1:
                total -= 0.5 * i
        return total

    @numba.njit
    def twice(x):
        return steps(x) + steps(x + 1)

    assert twice(10) == twice.py_func(10)
    assert len(copies) == 2
    assert front_ends == ["steps"]
    for callee in copies:
        assert len(callee.blocks) > 4
        assert len({id(block.scope) for block in callee.blocks.values()}) == 1

"""The runtime dependencies are what the package imports: each third-party module nbnumba imports
is declared, test tools live in the `test` extra the README's install command names, and an
optional module (hdf5plugin, CUDA's pathfinder) is imported only where its absence is handled."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# distribution name -> the module it installs, where they differ
MODULE_OF = {"numba-cuda": "numba", "cuda-pathfinder": "cuda"}


def names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}


def modules(requirements: list[str]) -> set[str]:
    return {MODULE_OF.get(name, name.replace("-", "_")) for name in names(requirements)}


def imports() -> dict[str, bool]:
    """Each third-party top-level module the package imports -> whether every import of it is
    inside a `try` that catches ImportError (or `with contextlib.suppress(ImportError)`)."""
    found: dict[str, bool] = {}
    for path in (ROOT / "nbnumba").rglob("*.py"):
        tree = ast.parse(path.read_text())
        guarded = set()
        for node in ast.walk(tree):
            catches = (isinstance(node, ast.Try) and any(
                "ImportError" in ast.unparse(h.type or ast.Name("BaseException")) for h in node.handlers)) or (
                isinstance(node, ast.With) and any("suppress(ImportError" in ast.unparse(i) for i in node.items))
            if catches:
                guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in sys.stdlib_module_names or top == "nbnumba":
                    continue
                found[top] = found.get(top, True) and id(node) in guarded
    return found


def test_every_imported_module_is_declared_and_nothing_else_is_a_runtime_dependency():
    runtime = modules(PROJECT["dependencies"])
    extras = set().union(*(modules(r) for r in PROJECT["optional-dependencies"].values()))
    used = imports()
    required = {module for module, optional in used.items() if not optional}
    assert required == runtime
    assert {module for module, optional in used.items() if optional} <= extras
    assert {"hdf5plugin", "cuda"} <= set(used)  # the scan sees the guarded imports too


def test_test_tools_are_in_the_test_extra_the_readme_installs():
    runtime = names(PROJECT["dependencies"])
    test = names(PROJECT["optional-dependencies"]["test"])
    # setup.cfg's addopts run the suite under pytest-xdist: without it pytest refuses them
    assert {"pytest", "pytest-xdist", "hypothesis", "fabio", "numba-cuda"} <= test
    assert not runtime & {"pytest", "pytest-xdist", "hypothesis", "fabio", "numba-cuda", "dask"}
    assert "numba-cuda[cu13]" in "".join(PROJECT["optional-dependencies"]["cuda"])
    readme = (ROOT / "README.md").read_text()
    assert 'pip install -e ".[test]" && nbnumba run' in readme
    assert "import hdf5plugin" in readme and "import hdf5plugin" in (ROOT / "docs" / "batch.md").read_text()


def test_nbnumbas_reader_opens_a_bslz4_file_without_the_caller_importing_hdf5plugin(tmp_path):
    import subprocess

    import numpy as np
    import pytest

    hdf5plugin = pytest.importorskip("hdf5plugin")
    h5py = pytest.importorskip("h5py")
    stack = np.arange(2 * 8 * 8, dtype=np.uint16).reshape(2, 8, 8)
    with h5py.File(tmp_path / "set.h5", "w") as f:
        f.create_dataset("images", data=stack, chunks=(1, 8, 8), **hdf5plugin.Bitshuffle(cname="lz4"))
    code = ("import sys; from nbnumba import api; assert 'hdf5plugin' not in sys.modules; "
            f"print(int(api.read_image({str(tmp_path / 'set.h5')!r}, 2).sum()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == int(stack[1].sum())

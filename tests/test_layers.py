"""The package's layers, held against its imports: each folder of nbnumba imports only the layers
its `__init__` names on its "May import:" line (and the package's errors and version), so that
the folders, read from the top down, are the order the data flows through."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nbnumba"
LAYERS = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
ANYONE = {"errors", "__init__"}  # nbnumba.errors and nbnumba.__version__


def allowed(layer: str) -> set[str]:
    doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text())) or ""
    found = re.search(r"May import:([^\n]*(?:\n(?!\n)[^\n]*)*)", doc)
    assert found, f"nbnumba/{layer}/__init__.py does not say which layers it may import"
    return {word for word in re.findall(r"\w+", found.group(1)) if word in LAYERS}


def imported_layers(path: Path) -> set[str]:
    """The top-level parts of nbnumba that a module imports (relative imports resolved)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            name = (package[:len(package) - node.level + 1] if node.level else [])
            name = name + (node.module.split(".") if node.module else [])
            if name[:1] != ["nbnumba"]:
                continue
            found |= {name[1]} if len(name) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("nbnumba.")}
    return {"__init__" if name == "__version__" else name for name in found}


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_the_layers_below_it(layer):
    permitted = allowed(layer) | ANYONE | {layer}
    wrong = {f"{path.relative_to(PACKAGE.parent)} imports {sorted(imported_layers(path) - permitted)}"
             for path in sorted((PACKAGE / layer).rglob("*.py")) if imported_layers(path) - permitted}
    assert not wrong, wrong


def test_layers_form_no_circle():
    below = {layer: allowed(layer) for layer in LAYERS}
    order = []
    while below:
        bottom = sorted(layer for layer, others in below.items() if not others & below.keys())
        assert bottom, f"the layers {sorted(below)} import each other in a circle"
        order += bottom
        for layer in bottom:
            del below[layer]
    assert order.index("io") < order.index("model") < order.index("kernels") < order.index("commands")


def test_top_level_holds_only_the_entry_points():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py", "api.py", "cli.py",
                                                             "errors.py"]

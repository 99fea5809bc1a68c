"""The shape of the package: layers, no import cycles, true ``__all__``, no private imports.

The layering itself is the import-linter contract in pyproject.toml (``lint-imports``, run
by .ci/run); these tests check what it does not: cycles inside a package, imports of
another module's private names, and that every ``__all__`` names what the module has.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hmmjax"
MODULES = sorted(
    "hmmjax." + ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for p in SRC.rglob("*.py")
)
MODULES = [m for m in MODULES if not m.endswith("__main__")]


def _source(module: str) -> tuple[Path, ast.Module]:
    parts = module.split(".")[1:]
    path = SRC.joinpath(*parts).with_suffix(".py")
    if not path.exists():
        path = SRC.joinpath(*parts, "__init__.py")
    return path, ast.parse(path.read_text())


def test_no_import_cycles():
    """No module reaches itself through imports, counting imports inside functions."""
    graph = grimp.build_graph("hmmjax", include_external_packages=False)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                cycles.append(f"{module} -> {imported} -> ... -> {module}")
    assert cycles == []


def test_no_private_names_imported_across_modules():
    found = []
    for module in MODULES:
        path, tree = _source(module)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hmmjax"):
                found += [
                    f"{path.relative_to(SRC)}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and a.name != "__version__"
                ]
    assert found == []


def test_no_imports_inside_functions_but_documented_ones():
    """Imports sit at the top of a module (ruff PLC0415 checks the same in .ci/run);
    the exceptions are marked ``noqa: PLC0415`` with their reason."""
    found = []
    for module in MODULES:
        path, tree = _source(module)
        lines = path.read_text().splitlines()
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    text = " ".join(lines[node.lineno - 1 : node.end_lineno])
                    if "noqa: PLC0415" not in text:
                        found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found == []


@pytest.mark.parametrize("module", MODULES)
def test_all_names_exist(module):
    """Every name in ``__all__`` exists; every public top-level definition is in it."""
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    assert names is not None, f"{module} has no __all__"
    assert len(set(names)) == len(names)
    missing = [n for n in names if not hasattr(mod, n)]
    assert missing == []
    if module.count(".") >= 2 or module == "hmmjax.cli":  # a module, not a package face
        _, tree = _source(module)
        defined = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                defined.add(node.target.id)
        public = {n for n in defined if not n.startswith("_")}
        assert public <= set(names), f"public but not in __all__: {public - set(names)}"


def test_package_faces_reexport_their_modules():
    """A package's ``__init__`` re-exports the ``__all__`` of each of its modules."""
    for package in {m.rsplit(".", 1)[0] for m in MODULES if m.count(".") >= 2}:
        face = importlib.import_module(package)
        for module in (m for m in MODULES if m.rsplit(".", 1)[0] == package):
            if module.count(".") != package.count(".") + 1 or module.endswith("__main__"):
                continue
            mod = importlib.import_module(module)
            assert set(mod.__all__) <= set(face.__all__), module


def test_top_level_face_is_lazy_and_complete():
    """``import hmmjax`` imports no JAX; every public name resolves."""
    code = "import sys, hmmjax; assert 'jax' not in sys.modules; print(len(hmmjax.__all__))"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    import hmmjax

    for name in hmmjax.__all__:
        assert getattr(hmmjax, name) is not None, name
    with pytest.raises(AttributeError):
        hmmjax.no_such_name  # noqa: B018

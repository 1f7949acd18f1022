"""The tests' own layout (issue 18 item 5): no test module imports another test module
(what two tests share lives in ``tests/support/`` or a ``support``/``conftest`` module of
their tree), and the reference record path the tests check the fused hot path against
stays in ``tests/support/reference_path.py``, out of the shipped packages. Walks the
source (AST)."""

from __future__ import annotations

import ast

from tests.support.broker import ROOT

TESTS = ROOT / "tests"
SHIPPED = ("norce_sync", "streams", "agents", "norce", "norce_simulator")
# Test-only names of the reference path, per shipped module they used to live in.
REFERENCE_ONLY = {
    "agents/imports/cdc.py": {"decode"},
    "agents/config/mapping.py": {"to_mapped"},
    "streams/records.py": {"MappedChange"},
}


def is_test_module(dotted: str) -> bool:
    parts = dotted.split(".")
    return parts[0] == "tests" and any(part.startswith("test_") for part in parts)


def imports_of_test_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of each absolute import of a test module: ``import tests.x.test_y``,
    ``from tests.x.test_y import z`` and ``from tests.x import test_y``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        tests = [name for name in names if is_test_module(name)]
        if tests:
            found.append((node.lineno, min(tests, key=len)))
    return found


def test_no_test_module_imports_another_test_module() -> None:
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 100 and TESTS / "support" / "reference_path.py" in files
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files
        for line, name in imports_of_test_modules(ast.parse(path.read_text(), str(path)))
    ]
    assert offending == [], "move what they share into tests/support/:\n" + "\n".join(offending)


def test_the_reference_record_path_is_not_shipped() -> None:
    modules = sorted(p for top in SHIPPED for p in (ROOT / top).rglob("*.py"))
    assert len(modules) > 50
    shipped = []
    for path in modules:
        tree = ast.parse(path.read_text(), str(path))
        top_level = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        named = {"MappedChange", "to_mapped"} | REFERENCE_ONLY.get(
            str(path.relative_to(ROOT)), set()
        )
        shipped += [f"{path.relative_to(ROOT)} defines {name}" for name in top_level & named]
    assert shipped == [], "\n".join(shipped)

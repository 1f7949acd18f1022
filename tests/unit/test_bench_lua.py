"""The benches' wrk scripts give every wrk thread its own PartNos: ``setup()`` hands each
thread its id with ``thread:set("tid", n)``, a *global* of that thread's Lua state. A
chunk-level ``local tid`` hides it (every thread then saw 0 and posted the same PartNos,
so each entity came twice and the drain did half the work: bench/RESULTS.md, session 8).
Reads the scripts out of the bench sources (no wrk needed)."""

from __future__ import annotations

import ast
import re

from tests.support.broker import ROOT

SCRIPTS = {"bench/bench_intake_wrk.py": "LUA", "bench/bench_export_latency.py": "BURST_LUA"}


def lua_of(path: str, name: str) -> str:
    tree = ast.parse((ROOT / path).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            assert isinstance(node.value, ast.Constant)
            return str(node.value.value)
    raise AssertionError(f"{path} has no {name}")


def test_no_local_hides_what_setup_hands_each_thread() -> None:
    for path, name in SCRIPTS.items():
        lua = lua_of(path, name)
        handed = re.findall(r'thread:set\("(\w+)"', lua)
        assert "tid" in handed, path
        for var in handed:
            hidden = re.search(rf"^\s*local\s+{var}\b", lua, re.M)
            assert hidden is None, f"{path}: 'local {var}' hides the thread's own {var}"
            assert re.search(rf"\b{var}\b", lua.split("function request", 1)[1]), path

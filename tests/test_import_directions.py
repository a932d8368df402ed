"""The import directions of the architecture, checked on every run from the source (AST, no imports run).

Every ``import`` in pydlr/ (module level and inside functions) is an edge to the pydlr module it names
(``from pydlr.x import y`` names pydlr.x.y when y is a module, else pydlr.x), as import-linter counts
them. Forbidden directions are checked along chains of such edges, so a detour through a third module
is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "pydlr"

# Edges allowed to break a contract (none): the test fails once an entry is no longer needed, so the list
# cannot go stale.
KNOWN: set[tuple[str, str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for p in PKG.rglob("*.py")}
    found.update({_module_name(p).split(".cpython")[0]: p for p in PKG.glob("_C*.so")})
    found.setdefault("pydlr._C", PKG / "_C.so")  # the extension, built or not
    return found


MODULES = _modules()


def _resolve(module: str, level: int, current: str, is_package: bool) -> str:
    if not level:
        return module
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _imports(name: str) -> tuple[set[str], set[str], set[str]]:
    """(pydlr modules imported, top-level external packages imported, attributes read) of a module."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    internal, external, attributes = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (internal if alias.name.split(".")[0] == "pydlr" else external).add(
                    alias.name if alias.name.startswith("pydlr") else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node.module or "", node.level, name, is_package)
            if target.split(".")[0] != "pydlr":
                external.add(target.split(".")[0])
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                internal.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Attribute):
            attributes.add(node.attr)
    return internal, external, attributes


GRAPH = {name: _imports(name) for name, path in MODULES.items() if path.suffix == ".py"}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _chain(start: str, forbidden: tuple[str, ...]) -> list[str] | None:
    """The first import chain from ``start`` into a forbidden package (breadth first), or None."""
    seen, queue = {start}, [[start]]
    while queue:
        path = queue.pop(0)
        for nxt in sorted(GRAPH.get(path[-1], (set(),))[0]):
            if any(_in(nxt, f) for f in forbidden):
                return path + [nxt]
            if nxt not in seen and nxt in GRAPH:
                seen.add(nxt)
                queue.append(path + [nxt])
    return None


FORBIDDEN = [
    ("pydlr.layers", ("pydlr.train", "pydlr.io", "pydlr.interpret", "pydlr.cluster", "pydlr.bridge",
                      "pydlr.engine")),
    ("pydlr.models", ("pydlr.train", "pydlr.io", "pydlr.interpret", "pydlr.cluster", "pydlr.bridge",
                      "pydlr.engine")),
    ("pydlr.cluster", ("pydlr.train",)),
    ("pydlr.interpret", ("pydlr.train",)),
]


def test_the_graph_was_read():
    assert len(GRAPH) > 40 and "pydlr.models.base" in GRAPH
    assert "pydlr.layers.base" in GRAPH["pydlr.models.base"][0]


@pytest.mark.parametrize("source,forbidden", FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_forbidden_directions(source, forbidden):
    broken = {}
    for name in sorted(GRAPH):
        if _in(name, source):
            chain = _chain(name, forbidden)
            if chain is not None:
                broken[name] = " -> ".join(chain)
    assert not broken, f"{source} must not import {', '.join(forbidden)}: {broken}"


def _direct(contract: str, allowed, imported) -> list[tuple[str, str, str]]:
    """(contract, importer, imported) for every module outside ``allowed`` that imports ``imported``."""
    hits = []
    for name, (internal, external, _attrs) in sorted(GRAPH.items()):
        if allowed(name):
            continue
        for target in sorted(internal | external):
            if imported(target):
                hits.append((contract, name, target))
    return hits


def _check(hits: list[tuple[str, str, str]], contract: str) -> None:
    known = {k for k in KNOWN if k[0] == contract}
    assert set(hits) - known == set(), f"{contract}: {sorted(set(hits) - known)}"
    assert known - set(hits) == set(), f"fixed, remove from KNOWN: {sorted(known - set(hits))}"


def test_only_ops_imports_the_extension():
    contract = "only pydlr.ops imports pydlr._C"
    _check(_direct(contract, lambda m: m == "pydlr.ops", lambda t: t == "pydlr._C"), contract)


def test_only_bridge_imports_rpy2():
    contract = "only pydlr.bridge imports rpy2"
    _check(_direct(contract, lambda m: _in(m, "pydlr.bridge"), lambda t: t == "rpy2"), contract)


def test_only_bridge_touches_arrow_c_structs():
    c_interface = {"_import_from_c", "_export_to_c", "_import_from_c_capsule", "_export_to_c_capsule",
                   "__arrow_c_array__", "__arrow_c_schema__", "__arrow_c_stream__"}
    touching = sorted(name for name, (_i, external, attrs) in GRAPH.items()
                      if not _in(name, "pydlr.bridge") and (attrs & c_interface or "cffi" in external))
    assert touching == [], f"only pydlr.bridge may touch Arrow C structs: {touching}"


def test_a_violation_is_caught():
    """The checker itself: an edge added to the graph is reported with its chain."""
    GRAPH["pydlr.layers.fake"] = ({"pydlr.data.arrays"}, set(), set())
    GRAPH["pydlr.data.arrays"][0].add("pydlr.train.learner")
    try:
        assert _chain("pydlr.layers.fake", ("pydlr.train",)) == [
            "pydlr.layers.fake", "pydlr.data.arrays", "pydlr.train.learner"]
    finally:
        del GRAPH["pydlr.layers.fake"]
        GRAPH["pydlr.data.arrays"][0].discard("pydlr.train.learner")

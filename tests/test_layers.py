"""The structure cannot decay silently: layers only point down, and no import circle exists.

Layers, bottom to top (docs/architecture.md draws them):

0. the contract: canonical model, settings, errors, secrets (``warehouse.model``,
   ``warehouse.config``, ``warehouse.settings_*``, ``warehouse.errors``, ``warehouse.secrets``);
1. ``connectors`` and ``simulator`` (the trackers, real and simulated) beside ``warehouse``'s
   store, schema, transforms, analyses and kept results; these two sides never import each other;
2. ``pipeline`` (sync, manager, schedule, refresh);
3. ``api`` and ``reports`` (reports never import api).

Imports are read from the source (``ast``), including imports inside functions, so a late import
that hides a circle at run time is still an edge here. Modules are named by their folder
(``pipeline.sync``); the code imports them by their installed name (``pmolens.pipeline.sync``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("warehouse", "connectors", "simulator", "pipeline", "api", "reports")
CONTRACT = ("warehouse.model", "warehouse.config", "warehouse.settings_", "warehouse.errors")
CONTRACT += ("warehouse.secrets",)


def layer(module: str) -> int:
    if module.startswith(CONTRACT):
        return 0
    top = module.split(".")[0]
    return {"warehouse": 1, "connectors": 1, "simulator": 1, "pipeline": 2}.get(top, 3)


def side(module: str) -> str:
    """Modules of one layer that must not import each other."""
    top = module.split(".")[0]
    return {"connectors": "trackers", "simulator": "simulator", "reports": "reports"}.get(top, top)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, name: str, known: dict[str, Path]) -> Iterator[str]:
    """The project modules that ``path`` imports (the most specific known module per name)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from a.b import c``: the module a.b.c when there is one, else a.b itself
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            target = target.removeprefix("pmolens.")  # the installed name of a card folder
            parts = target.split(".")
            while parts and ".".join(parts) not in known:
                parts.pop()
            if parts and ".".join(parts) != name:
                yield ".".join(parts)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imports(path, name, known)) for name, path in known.items()}


def test_the_graph_sees_the_project() -> None:
    edges = graph()
    assert "pipeline.sync" in edges and "connectors.base" in edges["pipeline.sync"]
    assert len(edges) > 60


def test_layers_only_point_down() -> None:
    upward = [
        f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
        for a, targets in graph().items()
        for b in targets
        if layer(b) > layer(a)
    ]
    assert upward == []


def test_sides_of_a_layer_do_not_import_each_other() -> None:
    across = [
        f"{a} imports {b}"
        for a, targets in graph().items()
        for b in targets
        if layer(a) == layer(b)
        and layer(a) > 0
        and side(a) != side(b)
        and not (side(a) == "api" and side(b) == "reports")  # the API serves the report
    ]
    assert across == []


def test_no_import_circle() -> None:
    """Strongly connected components of the module graph (a package's ``__init__`` that only
    lists its own modules to register them is not a circle)."""
    edges = graph()
    for name in edges:
        if name.count(".") and edges.get(name.rpartition(".")[0]) is not None:
            edges[name].discard(name.rpartition(".")[0])  # a module naming its own package
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert circles == []


@pytest.mark.parametrize(
    ("module", "expected"),
    [("warehouse.config", 0), ("warehouse.store", 1), ("pipeline.sync", 2), ("api.app", 3)],
)
def test_layer_of(module: str, expected: int) -> None:
    assert layer(module) == expected

"""The api modules import one another without a cycle, counting every import anywhere in a file
(module level, inside functions, under ``TYPE_CHECKING``): a cycle hidden in a lazy import is
still a tangle, and one moved import away from an ImportError at startup."""

from __future__ import annotations

import ast
from pathlib import Path

import wanhe.api

API = Path(wanhe.api.__file__).parent
PACKAGE = "wanhe.api"


def _module_name(path: Path) -> str:
    return PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The api modules that `path` imports, at any depth of its syntax tree."""
    name = _module_name(path)
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from . import x`, `from .x import y`
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            submodules = {f"{source}.{alias.name}" for alias in node.names}
            named = submodules & modules  # `from wanhe.api import views` imports views
            found.update(named)
            if not named or len(named) < len(submodules):
                found.add(source)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(API.glob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> list[str] | None:
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_stack:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in done:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    for node in sorted(graph):
        if node not in done:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_api_import_graph_is_acyclic() -> None:
    graph = import_graph()
    assert "wanhe.api.service" in graph and graph["wanhe.api.auth"], graph  # parsed something
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle among api modules: " + " -> ".join(cycle or [])


def test_service_knows_nothing_of_the_web_layer() -> None:
    web = {"wanhe.api.views", "wanhe.api.metrics", "wanhe.api.auth", "wanhe.api.deps",
           "wanhe.api.app", "wanhe.api.events"}
    assert not import_graph()["wanhe.api.service"] & web


def test_find_cycle_sees_a_lazy_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None

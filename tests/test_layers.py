"""wanhe's layers import downward only (DESIGN.md, "The spine"): interfaces → application →
engine → job types → domain libraries → data → core; and no modules of wanhe import one
another in a circle, within a layer either. Every import anywhere in a file counts (module
level, inside functions, under ``TYPE_CHECKING``): an import hidden in a function is still a
dependency. `KNOWN_UPWARD` would list an upward import that must stay for now, with why; it
is empty."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import wanhe
from tests.api.test_import_graph import find_cycle

SRC = Path(wanhe.__file__).parent

# Top-level module or package of wanhe → its layer; a higher number is a higher layer.
CORE, DATA, DOMAIN, JOBTYPES, ENGINE, APPLICATION, INTERFACES = range(7)
LAYER_NAMES = ["core", "data", "domain", "jobtypes", "engine", "application", "interfaces"]
LAYERS: dict[str, int] = {
    "__init__": CORE, "lifecycle": CORE, "sched": CORE, "model": CORE, "config": CORE,
    "plugins": CORE, "private": CORE, "payloads": CORE, "metering": CORE,
    "store": DATA, "storage": DATA, "transfer": DATA,
    "blender": DOMAIN, "imaging": DOMAIN, "plan": DOMAIN, "ai": DOMAIN, "voice": DOMAIN,
    "story": DOMAIN, "openjd": DOMAIN, "sim": DOMAIN, "samplecount": DOMAIN, "sandbox": DOMAIN,
    "estimate": DOMAIN, "render": DOMAIN, "publish": DOMAIN,
    "jobtypes": JOBTYPES,
    "engine": ENGINE,
    "runs": APPLICATION, "localrender": APPLICATION, "openjd_export": APPLICATION,
    "cli": INTERFACES, "api": INTERFACES, "addon": INTERFACES, "blender_cli": INTERFACES,
}

# (importer, imported) modules → why the upward import is there today. Keep it empty: move
# the code to its layer instead.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["wanhe", *parts])


@functools.cache
def _tree(path: Path) -> ast.Module:
    """A source file's syntax tree, parsed once for all the tests of this module."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported(path: Path, modules: frozenset[str] = frozenset()) -> set[str]:
    """The wanhe modules `path` imports, at any depth of its syntax tree. With `modules` (every
    module of wanhe), `from wanhe.a import b` counts as importing `wanhe.a.b` when that is a
    module (and `wanhe.a` only when a name other than a module is imported from it)."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            submodules = {f"{source}.{alias.name}" for alias in node.names} & modules
            found.update(submodules)
            if not submodules or len(submodules) < len(node.names):
                found.add(source)
    return {m for m in found if m == "wanhe" or m.startswith("wanhe.")}


def _sources() -> list[Path]:
    # the add-on's Blender side (wanhe_farm) is standard library only, and not imported as wanhe
    return [p for p in sorted(SRC.rglob("*.py")) if "wanhe_farm" not in p.parts]


def import_graph() -> dict[str, set[str]]:
    """Every module of wanhe → the modules of wanhe it imports (itself left out)."""
    paths = _sources()
    modules = frozenset(_module(p) for p in paths)
    return {_module(p): (_imported(p, modules) & modules) - {_module(p)} for p in paths}


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    assert top in LAYERS, f"{module}: give wanhe.{top} a layer in tests/test_layers.py"
    return LAYERS[top]


def upward_imports() -> dict[tuple[str, str], str]:
    """(importer, imported) → 'lower layer → higher layer', for every import running up."""
    found: dict[tuple[str, str], str] = {}
    for path in _sources():
        importer = _module(path)
        for imported in _imported(path):
            low, high = _layer(importer), _layer(imported)
            if high > low:
                found[(importer, imported)] = f"{LAYER_NAMES[low]} → {LAYER_NAMES[high]}"
    return found


def test_every_top_level_module_has_a_layer() -> None:
    tops = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
            if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert tops - set(LAYERS) == set(), "new top-level module(s): give each a layer here"


def test_no_new_upward_import() -> None:
    found = upward_imports()
    new = {pair: why for pair, why in found.items() if pair not in KNOWN_UPWARD}
    assert not new, "imports that run up the layers (import downward, or move the code):\n" + \
        "\n".join(f"  {a} imports {b} ({why})" for (a, b), why in sorted(new.items()))


def test_the_walk_sees_imports_inside_functions() -> None:
    # `wanhe render` imports the local renderer inside its function body
    assert "wanhe.localrender" in _imported(SRC / "cli" / "main.py")
    assert _layer("wanhe.engine.dispatcher") > _layer("wanhe.store.jobs") > _layer("wanhe.model")


def test_the_allow_list_only_holds_imports_that_still_exist() -> None:
    gone = set(KNOWN_UPWARD) - set(upward_imports())
    assert not gone, f"fixed, strike from KNOWN_UPWARD: {sorted(gone)}"


def test_no_import_circle_anywhere_in_wanhe() -> None:
    graph = import_graph()
    assert graph["wanhe.engine.dispatcher"] >= {"wanhe.engine.pool", "wanhe.store.store"}
    cycle = find_cycle(graph)
    assert cycle is None, "import circle (move the shared code below both): " + \
        " -> ".join(cycle or [])


def test_the_graph_sees_modules_imported_from_their_package() -> None:
    # `from wanhe.sandbox import accounts as users`, inside a method: the module counts
    assert "wanhe.sandbox.accounts" in import_graph()["wanhe.engine.executors.openjd"]


def test_wanhe_never_imports_the_reference_openjd_runner() -> None:
    # openjd-cli pins openjd-model 0.13 while wanhe runs on 0.14: it is the tests' reference
    # program in a virtualenv of its own (tests/openjd/_reference.py), never a library of wanhe
    found = []
    for path in _sources():
        for node in ast.walk(_tree(path)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) else [])
            found += [f"{_module(path)}: {n}" for n in names
                      if n == "openjd.cli" or n.startswith("openjd.cli.")]
    assert found == []

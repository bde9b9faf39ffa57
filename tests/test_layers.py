"""wanhe's layers import downward only (DESIGN.md, "The spine"): interfaces → application →
engine → job types → domain libraries → data → core. Every import anywhere in a file counts
(module level, inside functions, under ``TYPE_CHECKING``): an import hidden in a function is
still a dependency. The imports that run up the layers today are listed in `KNOWN_UPWARD`,
each with why; the test fails on any new one, and on a listed one that is gone (strike it)."""

from __future__ import annotations

import ast
from pathlib import Path

import wanhe

SRC = Path(wanhe.__file__).parent

# Top-level module or package of wanhe → its layer; a higher number is a higher layer.
CORE, DATA, DOMAIN, JOBTYPES, ENGINE, APPLICATION, INTERFACES = range(7)
LAYER_NAMES = ["core", "data", "domain", "jobtypes", "engine", "application", "interfaces"]
LAYERS: dict[str, int] = {
    "__init__": CORE, "lifecycle": CORE, "sched": CORE, "model": CORE, "config": CORE,
    "plugins": CORE, "private": CORE,
    "store": DATA, "storage": DATA,
    "blender": DOMAIN, "imaging": DOMAIN, "plan": DOMAIN, "ai": DOMAIN, "voice": DOMAIN,
    "story": DOMAIN, "openjd": DOMAIN, "sim": DOMAIN, "samplecount": DOMAIN, "sandbox": DOMAIN,
    "estimate": DOMAIN, "publish": DOMAIN,
    "jobtypes": JOBTYPES,
    "engine": ENGINE,
    "runs": APPLICATION, "localrender": APPLICATION, "openjd_export": APPLICATION,
    "cli": INTERFACES, "api": INTERFACES, "addon": INTERFACES, "blender_cli": INTERFACES,
}

# (importer, imported) modules → why the upward import is there today. Shrink this list.
KNOWN_UPWARD: dict[tuple[str, str], str] = {
    ("wanhe.story.submit", "wanhe.api.pack"):
        "the farm submit of a storyboard (interface work) is still in story/",
    ("wanhe.story.plan", "wanhe.jobtypes.generate"):
        "a story's AI shots compile through the gen job type's compiler",
    ("wanhe.story.checks", "wanhe.jobtypes.registry"):
        "a story's AI shots are checked by the gen job type",
    ("wanhe.samplecount.autoquality", "wanhe.jobtypes.blender_render"):
        "the Blender spec and scene facts live in the job-type module (no render/ domain yet)",
    ("wanhe.jobtypes.blender_render", "wanhe.engine.seam_check"):
        "seam_plan (pure planning) shares a module with the seam render the engine runs",
    ("wanhe.engine.executors.openjd", "wanhe.blender_cli.select"):
        "picking the sessions' blender command lives with the wanhe-blender command",
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["wanhe", *parts])


def _imported(path: Path) -> set[str]:
    """The wanhe modules `path` imports, at any depth of its syntax tree."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
    return {m for m in found if m == "wanhe" or m.startswith("wanhe.")}


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    assert top in LAYERS, f"{module}: give wanhe.{top} a layer in tests/test_layers.py"
    return LAYERS[top]


def upward_imports() -> dict[tuple[str, str], str]:
    """(importer, imported) → 'lower layer → higher layer', for every import running up."""
    found: dict[tuple[str, str], str] = {}
    for path in sorted(SRC.rglob("*.py")):
        if "wanhe_farm" in path.parts:  # the add-on's Blender side: standard library only
            continue
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

"""The CLI and the Blender add-on share one transfer package and the farm's frame and tile
syntax, never a hand-kept twin: the add-on's zip carries `wanhe/transfer/` and
`wanhe/plan/{frames,tiles}.py` byte for byte, the add-on's folder defines none of their
functions (and nothing else in wanhe does), and they import only what an artist's Blender has
(the standard library and blender-asset-tracer, which the add-on bundles)."""

from __future__ import annotations

import ast
import sys
import zipfile
from pathlib import Path

import pytest

import wanhe
from wanhe.addon import build
from wanhe.addon.wanhe_farm import shared

SRC = Path(wanhe.__file__).parent
TRANSFER = SRC / "transfer"
PLAN_FILES = [SRC / "plan" / name for name in build.PLAN_FILES]
ADDON = SRC / "addon" / "wanhe_farm"


def _defined(path: Path) -> set[str]:
    """The functions and classes `path` defines at its top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _shared_names() -> set[str]:
    return set().union(*(_defined(p) for p in TRANSFER.glob("*.py")))


def test_the_zip_carries_the_package_byte_for_byte(tmp_path: Path) -> None:
    with zipfile.ZipFile(build.build(tmp_path)) as zf:
        copy = {n: zf.read(n) for n in zf.namelist()
                if n.startswith(f"wanhe_farm/{shared.COPY}/")}
    package = {f"wanhe_farm/{shared.COPY}/{p.name}": p.read_bytes()
               for p in TRANSFER.glob("*.py")}
    assert set(copy) == set(package) and len(package) >= 4
    assert copy == package
    assert build.SHARED_COPY == shared.COPY


def test_the_zip_carries_the_farms_frame_and_tile_syntax_byte_for_byte(tmp_path: Path) -> None:
    with zipfile.ZipFile(build.build(tmp_path)) as zf:
        copy = {n: zf.read(n) for n in zf.namelist()
                if n.startswith(f"wanhe_farm/{shared.PLAN_COPY}/")}
    assert copy == {f"wanhe_farm/{shared.PLAN_COPY}/{p.name}": p.read_bytes()
                    for p in PLAN_FILES}
    assert build.PLAN_COPY == shared.PLAN_COPY
    assert shared.frames.__name__ == "wanhe.plan.frames"  # the source tree: the package itself
    assert shared.tiles.__name__ == "wanhe.plan.tiles"


def test_the_add_ons_plan_parses_with_the_farms_code_not_its_own() -> None:
    own = _defined(ADDON / "plan.py")
    farm = set().union(*(_defined(p) for p in PLAN_FILES))
    # parse_frames and format_frames stay as the panel's names (raising its PlanError; cut to
    # the panel's width) and call the farm's; nothing else of the farm's is defined again
    assert own & farm <= {"parse_frames", "format_frames"}
    text = (ADDON / "plan.py").read_text(encoding="utf-8")
    assert "farm_frames.parse_frames(" in text and "farm_tiles.parse_grid(" in text
    assert "farm_frames.format_frames(" in text
    assert "re.compile" not in text and "import re" not in text


def test_the_source_tree_imports_the_package_itself() -> None:
    # no copy in the source tree, so none to fall out of step
    assert not (ADDON / shared.COPY).exists()
    assert shared.pack.__name__ == "wanhe.transfer.pack"
    assert shared.refusal.__name__ == "wanhe.transfer.refusal"


def test_no_twin_of_the_shared_functions_in_wanhe() -> None:
    names = _shared_names()
    assert {"describe_refusal", "collect", "hash_all", "upload", "sha256_file",
            "Bundle"} <= names
    public = {n for n in names if not n.startswith("_")}
    twins = {f"{path.relative_to(SRC)}: {name}"
             for path in sorted(SRC.rglob("*.py")) if TRANSFER not in path.parents
             # the add-on's folder: not even a private helper of the package (`_tar`)
             for name in _defined(path) & (names if ADDON in path.parents else public)}
    assert not twins, f"defined again outside wanhe/transfer: {sorted(twins)}"
    assert not (ADDON / "packing.py").exists()


def _imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) of every import in `path`, at any depth."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


@pytest.mark.parametrize("path", [*sorted(TRANSFER.glob("*.py")), *PLAN_FILES],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_package_needs_only_what_an_artists_blender_has(path: Path) -> None:
    """Its imports, and its syntax: the copy runs in Blender's own Python."""
    allowed = set(sys.stdlib_module_names) | {"__future__", "blender_asset_tracer"}
    for level, module in _imports(path):
        if level:  # inside the package: the copy in the zip resolves these the same way
            assert level == 1, f"{path.name}: import from outside the package ({module})"
            continue
        assert module.split(".")[0] in allowed, f"{path.name} imports {module}"
    # Blender 3.4's Python is 3.10: no newer syntax (`except*`, type statements)
    ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 10))

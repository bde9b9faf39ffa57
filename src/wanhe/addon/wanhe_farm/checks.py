"""What Submit checks before anything leaves the machine: the file is saved, the scene has a
camera and an output path, the files it uses exist. Each problem is one line with its fix."""

import os
from typing import Any

import bpy


def _exists(path: str, source: str) -> bool:
    if source == "TILED":  # UDIMs: the first tile stands for the set
        path = path.replace("<UDIM>", "1001").replace("<UVTILE>", "u1_v1")
    return os.path.exists(path)


def missing_files() -> list[tuple[str, str]]:
    """(name, absolute path) of each image and library the scene uses that is not on disk."""
    missing: list[tuple[str, str]] = []
    for image in bpy.data.images:
        if image.source not in {"FILE", "SEQUENCE", "TILED", "MOVIE"} or image.packed_file:
            continue
        if not image.filepath or getattr(image, "packed_files", None):
            continue
        path = bpy.path.abspath(image.filepath, library=image.library)
        if not _exists(os.path.normpath(path), image.source):
            missing.append((image.name, os.path.normpath(path)))
    for library in bpy.data.libraries:
        path = os.path.normpath(bpy.path.abspath(library.filepath))
        if not os.path.exists(path):
            missing.append((library.name, path))
    return missing


def scene_problems(scene: Any, *, allow_missing: bool = False) -> list[str]:
    """The reasons Submit cannot go ahead, most basic first (empty: all good)."""
    problems: list[str] = []
    if not bpy.data.filepath:
        problems.append("save the scene to a .blend file first (File › Save As): the farm "
                        "renders the saved file")
    if scene.camera is None:
        problems.append(f"scene {scene.name!r} has no active camera — add a camera and make "
                        "it active (Ctrl Numpad 0)")
    if not scene.render.filepath.strip():
        problems.append("the output path is empty — set one in Output Properties › Output: "
                        "downloads go to its folder")
    missing = [] if allow_missing else missing_files()
    if missing:
        listed = "; ".join(f"{name} ({path})" for name, path in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        problems.append(f"missing file(s): {listed}{more} — relink them (File › External Data "
                        "› Find Missing Files) or submit with the missing files")
    return problems

"""Tests for examples/make_scenes.py: every kind builds, and the demo scene has real content.

bpy state is global, so each build and each inspection runs in its own subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "make_scenes.py"
KINDS = ["demo", "tiny", "no-camera", "eevee", "missing-texture", "interior", "embedded-script"]

INSPECT = r"""
import json, sys
import bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
s = bpy.context.scene
cam = s.camera
moves = False
if cam is not None:
    s.frame_set(s.frame_start)
    a = tuple(cam.matrix_world.translation)
    s.frame_set(s.frame_end)
    b = tuple(cam.matrix_world.translation)
    moves = a != b
print("JSON:" + json.dumps({
    "engine": s.render.engine,
    "camera": cam.name if cam else None,
    "animated": bool(cam and cam.animation_data and cam.animation_data.action),
    "moves": moves,
    "meshes": sum(o.type == "MESH" for o in s.objects),
    "lights": sum(o.type == "LIGHT" for o in s.objects),
    "materials": len(bpy.data.materials),
    "frames": [s.frame_start, s.frame_end],
    "resolution": [s.render.resolution_x, s.render.resolution_y],
    "samples": s.cycles.samples,
    "adaptive": s.cycles.use_adaptive_sampling,
    "denoise": s.cycles.use_denoising,
    "texts": [[t.name, t.use_module] for t in bpy.data.texts],
    "missing": sorted(p for p in bpy.utils.blend_paths(absolute=True)
                      if not __import__("os").path.exists(p)),
}))
"""


def _make(kind: str, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), kind, str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _inspect(blend: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", INSPECT, str(blend)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("JSON:"))
    result: dict[str, object] = json.loads(line[len("JSON:") :])
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("scenes")
    paths = {}
    for kind in KINDS:
        path = out / "sub" / f"{kind}.blend"
        proc = _make(kind, path, "--marker", str(out / "marker"))
        assert proc.returncode == 0, proc.stderr
        paths[kind] = path
    return paths


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_a_blend_file(built: dict[str, Path], kind: str) -> None:
    path = built[kind]
    assert path.read_bytes()[:7] == b"BLENDER"
    assert not list(path.parent.glob(".*tmp*")), "temporary save file left behind"


def test_no_camera_has_no_camera(built: dict[str, Path]) -> None:
    assert _inspect(built["no-camera"])["camera"] is None


def test_demo_has_real_content(built: dict[str, Path]) -> None:
    info = _inspect(built["demo"])
    assert info["engine"] == "CYCLES"
    assert info["meshes"] >= 4  # type: ignore[operator]
    assert info["materials"] >= 3  # type: ignore[operator]
    assert info["lights"] >= 2  # type: ignore[operator]
    assert info["animated"] and info["moves"]
    assert info["frames"] == [1, 8]
    assert info["resolution"] == [640, 360]
    assert info["samples"] == 64 and info["adaptive"] is True and info["denoise"] is False


def test_special_kinds(built: dict[str, Path]) -> None:
    assert _inspect(built["eevee"])["engine"] == "BLENDER_EEVEE"
    missing = _inspect(built["missing-texture"])["missing"]
    assert any(str(p).endswith("textures/missing_wood.png") for p in missing)  # type: ignore[attr-defined]
    assert _inspect(built["embedded-script"])["texts"] == [["evil.py", True]]
    assert not (built["embedded-script"].parent.parent / "marker").exists()


def test_overrides(tmp_path: Path) -> None:
    out = tmp_path / "t.blend"
    proc = _make(
        "tiny", out, "--resolution", "50x30", "--samples", "3", "--frames", "5-9", "--adaptive"
    )
    assert proc.returncode == 0, proc.stderr
    info = _inspect(out)
    assert info["resolution"] == [50, 30] and info["samples"] == 3
    assert info["frames"] == [5, 9] and info["adaptive"] is True and info["moves"]


@pytest.mark.parametrize(
    "args", [["bogus", "x.blend"], ["tiny", "x.blend", "--resolution", "64by32"]]
)
def test_bad_arguments_exit_2_without_traceback(tmp_path: Path, args: list[str]) -> None:
    proc = _make(args[0], tmp_path / args[1], *args[2:])
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr
    assert not (tmp_path / args[1]).exists()

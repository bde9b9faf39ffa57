"""inspect_scene: validation without Blender, then settings and dependencies from real files."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import pytest

from wanhe.blender.errors import SceneError
from wanhe.blender.inspect import check_blend_file, inspect_scene
from wanhe.blender.protocol import RenderRequest
from wanhe.blender.runner import BlenderProcess

from ._util import TINY_SAMPLES, TINY_SIZE, Scenes


def _fails_quickly(path: Path, *match: str, process: BlenderProcess | None = None) -> str:
    t0 = time.monotonic()
    with pytest.raises(SceneError) as exc:
        inspect_scene(path, process=process)
    assert time.monotonic() - t0 < 60
    msg = str(exc.value)
    assert str(path) in msg
    for m in match:
        assert m in msg, msg
    return msg


def test_missing_file(tmp_path: Path) -> None:
    msg = _fails_quickly(tmp_path / "nope.blend", "scene file not found", "check the path")
    assert msg == f"scene file not found: {tmp_path / 'nope.blend'} — check the path"


def test_directory(tmp_path: Path) -> None:
    _fails_quickly(tmp_path, "is a directory")


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        (b"hello, this is not a blend file\n", "text"),
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "89 50 4e 47"),
        (gzip.compress(b"just some text", mtime=0), "gzip"),  # same bytes (test id) each run
    ],
)
def test_not_a_blend(tmp_path: Path, content: bytes, hint: str) -> None:
    p = tmp_path / "scene.blend"
    p.write_bytes(content)
    _fails_quickly(p, "is not a .blend file", "pass a file saved by Blender", hint)


def test_truncated_blend(scenes: Scenes, tmp_path: Path, warm_blender: BlenderProcess) -> None:
    data = scenes.tiny.read_bytes()
    for name, cut in [("half", data[: len(data) // 2]), ("most", data[: len(data) - 100])]:
        p = tmp_path / f"{name}.blend"
        p.write_bytes(cut)
        _fails_quickly(p, "truncated or corrupt", process=warm_blender)


def test_truncated_compressed_blend(
    scenes: Scenes, tmp_path: Path, warm_blender: BlenderProcess
) -> None:
    data = scenes.tiny_zstd.read_bytes()
    assert data[:4] == b"\x28\xb5\x2f\xfd"
    p = tmp_path / "cut.blend"
    p.write_bytes(data[: len(data) // 2])
    _fails_quickly(p, "truncated or corrupt", process=warm_blender)


def test_garbage_after_header(scenes: Scenes, tmp_path: Path, warm_blender: BlenderProcess) -> None:
    data = scenes.tiny.read_bytes()
    # Header and end-of-file block intact, random bytes between: only a real parse finds it.
    p = tmp_path / "junk.blend"
    p.write_bytes(data[:64] + os.urandom(len(data) - 128) + data[-64:])
    _fails_quickly(p, "truncated or corrupt", process=warm_blender)
    # Only the end block is kept, a few blocks after the header are lost.
    p2 = tmp_path / "holes.blend"
    p2.write_bytes(data[:5000] + data[-64:])
    _fails_quickly(p2, "truncated or corrupt", process=warm_blender)
    assert warm_blender.render(
        RenderRequest(scene=str(scenes.tiny), frame=1, output=str(tmp_path / "o.exr"), samples=1)
    ).ok  # the worker survives having been handed corrupt files


def test_compressed_blends_pass_the_cheap_check(scenes: Scenes, tmp_path: Path) -> None:
    check_blend_file(scenes.tiny_zstd)
    gz = tmp_path / "tiny_gz.blend"
    gz.write_bytes(gzip.compress(scenes.tiny.read_bytes()))
    check_blend_file(gz)


def test_tiny_scene_report(scenes: Scenes) -> None:
    r = inspect_scene(scenes.tiny_zstd)
    assert (r.width, r.height) == TINY_SIZE
    assert r.engine == "CYCLES"
    assert r.samples == TINY_SAMPLES
    assert r.adaptive_sampling is False
    assert r.camera is not None and r.cameras == [r.camera]
    assert r.frame_start <= r.frame_end and r.frame_step >= 1
    assert r.fps > 0
    assert r.blender_version.startswith("5.0")
    assert r.dependencies == [] and r.missing == []


def test_missing_texture_reported(scenes: Scenes, warm_blender: BlenderProcess) -> None:
    r = inspect_scene(scenes.missing_texture, process=warm_blender)
    assert len(r.missing) == 1
    assert r.missing[0].name.endswith(".png")
    assert r.missing[0].is_absolute()
    assert r.missing[0].parent.parent == scenes.missing_texture.parent  # '//textures/...'
    assert r.missing == r.dependencies


def test_present_texture_is_a_dependency_not_missing(
    scenes: Scenes, tmp_path: Path, warm_blender: BlenderProcess
) -> None:
    import shutil

    scene = tmp_path / "scene.blend"
    shutil.copy(scenes.missing_texture, scene)
    missing = inspect_scene(scene, process=warm_blender).missing[0]
    missing.parent.mkdir(parents=True)
    missing.write_bytes(b"\x89PNG\r\n\x1a\n")  # BAT only checks that it exists
    r = inspect_scene(scene, process=warm_blender)
    assert r.dependencies == [missing] and r.missing == []


def test_no_camera_and_eevee(scenes: Scenes, warm_blender: BlenderProcess) -> None:
    r = inspect_scene(scenes.no_camera, process=warm_blender)
    assert r.camera is None and r.cameras == []
    e = inspect_scene(scenes.eevee, process=warm_blender)
    assert e.engine.startswith("BLENDER_EEVEE")
    assert e.adaptive_sampling is None

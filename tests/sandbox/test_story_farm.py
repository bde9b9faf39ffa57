"""A storyboard's Blender shot on a real `wanhe serve` running as root (embedded Ray, real
dispatcher, SQLite, bubblewrap, cgroups, project users): project beta's rigged shot scene
links an object from a .blend in the farm's own folder (where the storage, the database and
other projects' jobs live) — a red sphere around the whole scene.

Outside a sandbox Blender loads the link and renders red (the attack is real). On the farm
the check at submit, the lip sync and the frame renders (whose EXRs go to the farm's shared
story cache) all run in beta's sandbox: the job finishes, its mouths are keyed, and no
rendered frame shows the sphere.

slow: the farm starts Ray, the job speaks, keys and renders 6 frames (~1-2 min loaded)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api._service import ServiceProc, make_project, os_user, running_farm, wait_for
from tests.sandbox._users import remove_users
from wanhe.sandbox import box, cgroup

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]
SECRET = """
import sys, bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.mesh.primitive_uv_sphere_add(radius=60)
sphere = bpy.context.object
sphere.name = "AlphaSecret"
material = bpy.data.materials.new("red")
material.use_nodes = True
nodes = material.node_tree.nodes
nodes.clear()
glow = nodes.new("ShaderNodeEmission")
glow.inputs["Color"].default_value = (1, 0, 0, 1)
glow.inputs["Strength"].default_value = 3.0
out = nodes.new("ShaderNodeOutputMaterial")
material.node_tree.links.new(glow.outputs[0], out.inputs[0])
sphere.data.materials.append(material)
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[1])
"""
LINK = """
import sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
with bpy.data.libraries.load(sys.argv[2], link=True) as (found, wanted):
    wanted.objects = ["AlphaSecret"]
for obj in wanted.objects:
    bpy.context.scene.collection.objects.link(obj)
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[3])
"""
RENDER = """
import sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
scene = bpy.context.scene
scene.frame_set(1)
scene.render.filepath = sys.argv[2]
scene.render.image_settings.file_format = "PNG"
bpy.ops.render.render(write_still=True)
"""


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (per-project users and cgroups)"
    if shutil.which("bwrap") is None:
        return "needs bubblewrap (apt-get install bubblewrap)"
    if shutil.which("espeak-ng") is None:
        return "needs espeak-ng"
    if not box.mode().on:
        return f"the sandbox is off here ({box.mode().why_not})"
    return cgroup.available()


def _redness(rgb: Any) -> float:
    """How much redder than green the picture's background is (its four corners, where the
    sphere around the scene shows; the rig's own world is bluish grey: below 0)."""
    corners = [rgb[0, 0], rgb[0, -1], rgb[-1, 0], rgb[-1, -1]]
    return float(sum(c[0] - c[1] for c in corners) / 4)


@pytest.fixture(scope="module")
def farm() -> Iterator[ServiceProc]:
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    pytest.importorskip("bpy")
    with running_farm("wanhe-story-box-", workers=1, num_cpus=1) as svc:
        yield svc


def test_a_blender_shot_linking_the_farms_files_renders_without_them(
        farm: ServiceProc, tmp_path: Path) -> None:
    from PIL import Image

    from wanhe.imaging.exr import read_layers

    secret = farm.home / "alpha" / "secret.blend"  # the farm's own folder, 0700
    secret.parent.mkdir(mode=0o700)

    def bpy_run(*args: str) -> None:
        subprocess.run([sys.executable, *args], check=True, capture_output=True, timeout=180)

    bpy_run("-c", SECRET, str(secret))
    film = tmp_path / "film"
    film.mkdir()
    bpy_run(str(REPO / "examples/make_scenes.py"), "story-rig", str(tmp_path / "rig.blend"))
    bpy_run("-c", LINK, str(tmp_path / "rig.blend"), str(secret), str(film / "beta.blend"))
    bpy_run("-c", RENDER, str(film / "beta.blend"), str(tmp_path / "outside.png"))
    outside = Image.open(tmp_path / "outside.png").convert("RGB")
    import numpy as np

    assert _redness(np.asarray(outside, dtype=float) / 255) > 0.3  # the attack is real
    board = {"film": {"title": "T", "fps": 12, "width": 96, "height": 64,
                      "languages": ["en"]},
             "characters": [{"name": "Joe", "voice": {"engine": "espeak", "voice": "en"},
                             "rig": {"object": "Mouth", "open": "MouthOpen",
                                     "wide": "MouthWide"}}],
             "scenes": [{"name": "a", "shots": [
                 {"id": "s1", "blender": {"file": "beta.blend", "frames": "1-6"},
                  "lines": [{"character": "Joe", "text": "Hi."}]}]}]}
    (film / "story.yaml").write_text(yaml.safe_dump(board), encoding="utf-8")
    token = make_project(farm.db_url, "beta")
    try:
        # `wanhe submit` refuses a scene naming a file outside the storyboard's folder; the
        # attacker talks to the API itself, as any client may
        files: dict[str, str] = {}
        with farm.client(token) as http:
            for name in ("story.yaml", "beta.blend"):
                data = (film / name).read_bytes()
                files[name] = hashlib.sha256(data).hexdigest()
                put = http.put(f"/api/blobs/{files[name]}", content=data,
                               headers={"Content-Type": "application/octet-stream"})
                assert put.status_code in (200, 201), put.text
            made = http.post("/api/jobs", json={"kind": "story", "main": "story.yaml",
                                                "files": files}, timeout=300)
            assert made.status_code == 201, made.text
            sent = made.json()
            job = wait_for(lambda: (j := http.get(f"/api/jobs/{sent['id']}").json())["state"]
                           in ("done", "failed") and j, 480, "the story job to finish")
            assert job["state"] == "done", job["message"]
            tasks = http.get(f"/api/jobs/{sent['id']}/tasks").json()
        keyed = [t for t in tasks if t["kind"] == "lipsync"]
        assert keyed and keyed[0]["state"] == "done"
        frames = sorted(farm.home.rglob("cache/story/project-*/render/*/*.exr"))
        assert len(frames) >= 6
        for exr in frames:
            assert exr.stat().st_uid == 0 and not exr.is_symlink()  # the farm's own copy
            rgb = read_layers(exr).rgba("Combined")[..., :3]
            assert _redness(rgb) < 0, f"{exr.name} shows the farm's red sphere"
    finally:
        remove_users(os_user(farm.db_url, "beta"))

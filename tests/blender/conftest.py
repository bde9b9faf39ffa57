"""Real scenes for the Blender tests, built once per session in fresh bpy subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wanhe.blender.runner import BlenderProcess

from ._util import TINY_SAMPLES, TINY_SIZE, Scenes

ROOT = Path(__file__).resolve().parents[2]
MAKE_SCENES = ROOT / "examples" / "make_scenes.py"


# One bpy process builds every scene: importing bpy is the slow part. build_scene() starts
# each scene from read_factory_settings, so scenes do not leak into each other.
_BUILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import bpy
from make_scenes import build_scene
for kind, out, kw in json.loads(sys.argv[2]):
    build_scene(kind, out, **kw)
tiny, zstd = sys.argv[3:5]
bpy.ops.wm.open_mainfile(filepath=tiny, load_ui=False, use_scripts=False)
bpy.ops.wm.save_as_mainfile(filepath=zstd, compress=True, copy=True)
"""


@pytest.fixture(scope="session")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Scenes:
    d = tmp_path_factory.mktemp("scenes")
    s = Scenes(
        tiny=d / "tiny.blend",
        tiny_zstd=d / "tiny_zstd.blend",
        no_camera=d / "no_camera.blend",
        eevee=d / "eevee.blend",
        missing_texture=d / "missing_texture.blend",
        embedded_script=d / "embedded_script.blend",
        marker=d / "autoexec_marker.txt",
        armed_script=d / "armed_script.blend",
        armed_marker=d / "armed_marker.txt",
    )
    size = {"resolution": list(TINY_SIZE), "samples": TINY_SAMPLES}
    jobs = [
        ("tiny", str(s.tiny), {**size, "adaptive": False}),
        ("no-camera", str(s.no_camera), size),
        ("eevee", str(s.eevee), size),
        ("missing-texture", str(s.missing_texture), size),
        ("embedded-script", str(s.embedded_script), {**size, "marker": str(s.marker)}),
        ("embedded-script", str(s.armed_script), {**size, "marker": str(s.armed_marker)}),
    ]
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _BUILD,
            str(MAKE_SCENES.parent),
            json.dumps(jobs),
            str(s.tiny),
            str(s.tiny_zstd),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not s.marker.exists() and not s.armed_marker.exists(), "building ran the script"
    return s


@pytest.fixture(scope="module")
def warm_blender() -> Iterator[BlenderProcess]:
    """One warm worker shared by a test module (tests must leave it usable)."""
    with BlenderProcess() as bp:
        yield bp

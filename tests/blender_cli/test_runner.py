"""The `blender` command renders what wanhe's own render path renders, bit for bit, and never
runs Python the farm did not allow (real bpy renders of the demo scene, tiny)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import build_scene
from wanhe.blender.protocol import RenderRequest
from wanhe.blender.runner import BlenderProcess
from wanhe.blender_cli import shim_dir
from wanhe.imaging.exr import read_layers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(scene_dir: Path) -> Path:
    return build_scene(scene_dir / "demo_cli.blend", "demo", "--resolution", "48x27",
                       "--samples", "4", "--frames", "1-3")


@pytest.fixture(scope="module")
def reference(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Frames 1-3 as wanhe's warm worker renders them (the path every wanhe task takes)."""
    out = tmp_path_factory.mktemp("reference")
    frames = {}
    with BlenderProcess() as blender:
        for frame in (1, 2, 3):
            path = out / f"f{frame}.exr"
            reply = blender.render(RenderRequest(scene=str(demo), frame=frame,
                                                 output=str(path), threads=1))
            assert reply.ok, reply.error
            frames[frame] = path
    return frames


def blender(*args: str, cwd: Path, allow_python: bool = False, home: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("WANHE_ALLOW_BLENDER_PYTHON", None)
    if allow_python:
        env["WANHE_ALLOW_BLENDER_PYTHON"] = "1"
    env["PATH"] = f"{shim_dir(home or cwd / '.shim')}{os.pathsep}{env['PATH']}"
    return subprocess.run(["blender", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def assert_same_pixels(got: Path, want: Path) -> None:
    a, b = read_layers(got), read_layers(want)
    assert (a.width, a.height) == (b.width, b.height)
    assert set(a.channels) == set(b.channels)
    for name, pixels in b.channels.items():
        assert np.array_equal(a.channels[name], pixels), f"{got}: channel {name} differs"


def test_frames_equal_wanhes_render_bit_for_bit(
    demo: Path, reference: dict[int, Path], tmp_path: Path
) -> None:
    scene = tmp_path / "demo.blend"
    shutil.copy(demo, scene)
    r = blender("-b", "demo.blend", "-o", "//out/f_##", "-F", "OPEN_EXR_MULTILAYER",
                "-x", "1", "-t", "1", "-f", "1,3", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    for frame in (1, 3):
        out = tmp_path / "out" / f"f_0{frame}.exr"  # '##' pads to two digits
        assert f"Saved: '{out}'" in r.stdout
        assert_same_pixels(out, reference[frame])
    assert "Fra:1 " in r.stdout and "Sample 4/4" in r.stdout
    # OpenJD's progress messages, for the session's progress bar (not shown on a terminal)
    assert "openjd_progress: 50" in r.stdout.splitlines()
    assert r.stdout.splitlines().count("openjd_progress: 100") == 1
    assert not (tmp_path / "out" / "f_02.exr").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_arguments_apply_left_to_right(demo: Path, reference: dict[int, Path],
                                       tmp_path: Path) -> None:
    """-f before -o renders to the file's own output (//render/demo_####, PNG); -s/-e/-a
    render the range; a pattern without '#' gets '####' appended."""
    shutil.copy(demo, tmp_path / "demo.blend")
    r = blender("-b", "demo.blend", "-f", "+1", "-o", "//late/x_",
                "-F", "OPEN_EXR_MULTILAYER", "-s", "2", "-e", "-0", "-a",
                "-o", "//noext/n_#", "-x", "0", "-f", "1", "--", "--cycles-device", "CPU",
                cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "noext" / "n_1").is_file()  # -x 0: no extension
    assert (tmp_path / "render" / "demo_0002.png").is_file()  # +1 = start + 1
    assert sorted(p.name for p in (tmp_path / "late").iterdir()) == [
        "x_0002.exr", "x_0003.exr"]
    assert_same_pixels(tmp_path / "late" / "x_0003.exr", reference[3])


def test_errors_exit_1_with_blenders_message(tmp_path: Path) -> None:
    r = blender("-b", "nope.blend", "-f", "1", cwd=tmp_path)
    assert r.returncode == 1
    assert "Cannot read file" in r.stderr and "nope.blend" in r.stderr
    assert any(line.startswith("openjd_fail: Cannot read file") for line in r.stdout.splitlines())
    r = blender("-b", "nope.blend", "--python-expr", "print(1)", cwd=tmp_path)
    assert r.returncode == 1 and "WANHE_ALLOW_BLENDER_PYTHON=1" in r.stderr


def test_python_runs_only_when_allowed(demo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    expr = ("import sys, pathlib, bpy; pathlib.Path(sys.argv[sys.argv.index('--') + 1])"
            ".write_text(bpy.context.scene.name)")
    refused = blender("-b", str(demo), "--python-expr", expr, "--", str(marker), cwd=tmp_path)
    assert refused.returncode == 1 and not marker.exists()
    assert "--python-expr refused" in refused.stderr
    allowed = blender("-b", str(demo), "--python-expr", expr, "--", str(marker),
                      cwd=tmp_path, allow_python=True)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert marker.read_text() == "wanhe_demo"  # the script ran after the file loaded
    failing = blender("-b", str(demo), "--python-exit-code", "7", "--python-expr",
                      "raise RuntimeError('boom')", cwd=tmp_path, allow_python=True)
    assert failing.returncode == 7 and "boom" in failing.stderr


def test_scripts_embedded_in_the_file_never_run(scene_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "autoexec_marker.txt"
    evil = build_scene(tmp_path / "evil.blend", "embedded-script", "--resolution", "16x9",
                       "--samples", "1", "--marker", str(marker))
    r = blender("-b", str(evil), "-y", "-o", "//o/f_#", "-f", "1", cwd=tmp_path,
                allow_python=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "-y ignored" in r.stderr
    assert (tmp_path / "o" / "f_1.png").is_file()
    assert not marker.exists(), "a text block in the .blend ran"
    # Control: the fixture is armed — running its text block on purpose writes the marker.
    armed = blender("-b", str(evil), "--python-text", "evil.py", cwd=tmp_path,
                    allow_python=True)
    assert armed.returncode == 0, armed.stdout + armed.stderr
    assert marker.exists()

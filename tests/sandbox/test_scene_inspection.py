"""A submitted .blend is read in the submitting project's sandbox, as project beta beside
project alpha on a farm running as root (real Blender, bubblewrap, cgroups, project users):

- beta's scene names alpha's texture by absolute path: the submission names it as outside
  the job's files (never whether it exists), and the Blender that reads beta's scene cannot
  open it;
- the scene's settings are still read (its frame range) and its tiles' borders probed, in a
  Blender running as beta's OS user.

Skips, saying why, without root, bubblewrap or cgroups."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox._users import project_users_fixture
from wanhe.jobtypes.base import IntakeContext
from wanhe.jobtypes.blender_render import BlenderRenderJob, FarmRenderOptions
from wanhe.sandbox import box, cgroup
from wanhe.sandbox.accounts import user_name

# slow: each case starts Blender (bpy) two or three times, ~5 s each on a loaded machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
REPO = Path(__file__).resolve().parents[2]
project_users = project_users_fixture(("beta", 9903))
ADD_TEXTURE = """
import sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
image = bpy.data.images.load(sys.argv[2])
image.use_fake_user = True
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[3])
"""
PROBE = """
import sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
image = bpy.data.images[0]
print("PIXELS", image.has_data or image.size[0] > 0)
"""


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (per-project users and cgroups)"
    if shutil.which("bwrap") is None:
        return "needs bubblewrap (apt-get install bubblewrap)"
    if not box.mode().on:
        return f"the sandbox is off here ({box.mode().why_not})"
    return cgroup.available()


@pytest.fixture(scope="module")
def farm() -> Iterator[Path]:
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    work = Path(tempfile.mkdtemp(prefix="wanhe-inspect-attack-", dir="/tmp"))
    os.chmod(work, 0o700)  # the farm's own: no project user may pass
    alpha = work / "jobs/1/input"
    alpha.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 8), (200, 10, 10)).save(alpha / "tex.png")
    staged = work / "staging/s1/input"
    staged.mkdir(parents=True)
    subprocess.run([sys.executable, str(REPO / "examples/make_scenes.py"), "tiny",
                    str(work / "tiny.blend")], check=True, capture_output=True, timeout=120)
    subprocess.run([sys.executable, "-c", ADD_TEXTURE, str(work / "tiny.blend"),
                    str(alpha / "tex.png"), str(staged / "beta.blend")],
                   check=True, capture_output=True, timeout=120)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_betas_scene_naming_alphas_texture_is_read_in_betas_sandbox(farm: Path) -> None:
    staged = farm / "staging/s1/input"
    ctx = IntakeContext(inputs=staged, project="beta", project_id=9903)
    got = BlenderRenderJob().inspect(ctx, staged / "beta.blend", FarmRenderOptions(tiles="2x1"))
    assert got.facts.frame_start == 1  # Blender read beta's scene
    # the border probe rendered in the box's scratch folder (a failure says "could not")
    assert got.facts.border_exact, got.facts.border_why_not
    outside = [w for w in got.warnings if "outside this job's files" in w]
    assert outside and str(farm / "jobs/1/input/tex.png") in outside[0]
    assert not any("missing external file" in w for w in got.warnings)  # no probing
    pwd.getpwnam(user_name("beta", 9903))  # it ran as beta's user (made for it)
    assert not (staged.parent / "inspect").exists()  # its scratch folder is gone


def test_alphas_texture_cannot_be_read_in_betas_sandbox(farm: Path) -> None:
    """The same Blender (the farm's Python with bpy), in the box inspection uses: alpha's
    texture has no pixels there, while outside the box it has."""
    from wanhe.sandbox.tool import inspection_box, tool_env

    staged = farm / "staging/s1/input"
    argv = [sys.executable, "-c", PROBE, str(staged / "beta.blend")]
    outside = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    assert "PIXELS True" in outside.stdout  # the attack is real without the sandbox
    sandbox = inspection_box(staged, farm / "staging/s1/scratch", "beta", 9903)
    assert sandbox is not None
    try:
        inside = subprocess.run(sandbox.command(argv), capture_output=True, text=True,
                                timeout=120, env=tool_env())
    finally:
        sandbox.close()
    assert "PIXELS False" in inside.stdout, inside.stderr[-500:]

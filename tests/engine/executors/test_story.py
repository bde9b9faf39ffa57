"""The story executor reads each task's typed payload first: a payload that does not fit its
kind's model fails the task with one line naming the field, before anything runs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.story.conftest import BASE
from tests.story.test_plan import FACTS, _board, _layout
from wanhe.engine.executors.base import TaskContext, WorkerInfo
from wanhe.engine.executors.story import StoryExecutor
from wanhe.lifecycle import TaskFailed
from wanhe.story.plan import compile_story


def test_a_payload_that_does_not_fit_fails_the_task_in_one_line(tmp_path: Path) -> None:
    tasks = {t.key: t.payload for t in
             compile_story(_board(copy.deepcopy(BASE)), tmp_path, FACTS, _layout(tmp_path))}
    executor = StoryExecutor(WorkerInfo())
    for kind, payload, field in [
        ("lipsync", {**tasks["lipsync/s2"], "frames": "many"}, "frames"),
        ("clip", {**tasks["clip/s1"], "line_wavs": "a.wav"}, "line_wavs"),
        ("track", {**tasks["track/cmn"], "lang": ""}, "lang"),
        ("reel", {**tasks["reel"], "clips": None}, "clips"),
    ]:
        with pytest.raises(TaskFailed) as caught:
            executor.run(kind, payload, TaskContext())
        assert str(caught.value).startswith(
            f"the {kind} task's payload is not valid: {field}:"), caught.value
    assert not (tmp_path / "out").exists()  # nothing ran

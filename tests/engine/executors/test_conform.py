"""The conform executor and the worker's named tools: ffmpeg is the worker's `ffmpeg` (the
path it was given, else the node's PATH); a worker without one, or an ffmpeg that fails,
fails the task with one clear line and leaves no movie, whole or half, where the user looks.
Real ffmpeg from Debian; the payloads are made by the conform job type's own compile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from wanhe.config import Settings
from wanhe.engine.executors.base import MissingTool, TaskContext, WorkerInfo, tool_pairs
from wanhe.engine.executors.conform import ConformExecutor
from wanhe.jobtypes.base import IntakeContext, JobFolder
from wanhe.jobtypes.registry import job_type
from wanhe.lifecycle import TaskFailed

pytestmark = pytest.mark.timeout(60)


def _payload(tmp_path: Path, frames: int = 4) -> dict[str, Any]:
    render = tmp_path / "render"
    render.mkdir()
    for n in range(1, frames + 1):
        Image.fromarray(np.full((32, 32, 3), n * 40, np.uint8)).save(
            render / f"f_{n:03d}.png")
    jt = job_type("conform")
    options = jt.parse_options({"frames": "render/f_###.png", "codec": "h264", "fps": 4})
    inspected = jt.inspect(IntakeContext(inputs=tmp_path, local_paths=True), None, options)
    folder = JobFolder(tmp_path, tmp_path / "out", tmp_path / "work")
    [task] = jt.compile(options, inspected, None, folder).tasks
    return task.payload


def test_a_tool_given_by_name_wins_over_the_path_and_a_missing_one_says_how_to_give_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    given = WorkerInfo(name="w1", node="n1", tools=tool_pairs({"ffmpeg": "/opt/ff/ffmpeg"}))
    assert given.tool("ffmpeg") == "/opt/ff/ffmpeg"
    assert WorkerInfo().tool("ffmpeg") == "/usr/bin/ffmpeg"  # Debian's, on the PATH
    assert WorkerInfo(tools=tool_pairs({"blender": "/b/blender"})).blender == "/b/blender"
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingTool, match=r"worker 'w1' on n1 has no 'houdini'.*WANHE_TOOLS"):
        given.tool("houdini")


def test_settings_give_workers_their_tools_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANHE_TOOLS", '{"ffmpeg": "/opt/ff/ffmpeg"}')
    monkeypatch.setenv("WANHE_BLENDER", "/opt/blender/blender")
    assert Settings().worker_tools() == {"ffmpeg": "/opt/ff/ffmpeg",
                                         "blender": "/opt/blender/blender"}


def test_the_executor_makes_the_deliverable_and_reports_progress(tmp_path: Path) -> None:
    payload = _payload(tmp_path)
    seen: list[float] = []
    result = ConformExecutor(WorkerInfo()).run("conform", payload,
                                               TaskContext(progress=seen.append, key="c"))
    movie = tmp_path / "out" / "conform.mp4"
    assert result.output["deliverable"] == str(movie) and movie.stat().st_size > 0
    assert seen and seen[-1] == 1.0
    assert not list((tmp_path / "work").glob("*partial*"))


def test_a_worker_without_ffmpeg_fails_the_task_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = _payload(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(TaskFailed, match="has no 'ffmpeg'") as failed:
        ConformExecutor(WorkerInfo(name="w2")).run("conform", payload, TaskContext(key="c"))
    assert "\n" not in str(failed.value)
    assert not (tmp_path / "out" / "conform.mp4").exists()


def test_a_failing_ffmpeg_leaves_no_movie_behind(tmp_path: Path) -> None:
    payload = _payload(tmp_path)
    for frame in (tmp_path / "render").iterdir():  # the frames went bad after the check
        frame.write_bytes(b"not a png")
    with pytest.raises(TaskFailed, match="ffmpeg"):
        ConformExecutor(WorkerInfo()).run("conform", payload, TaskContext(key="c"))
    assert not (tmp_path / "out" / "conform.mp4").exists()
    assert not list((tmp_path / "work").glob("*partial*"))


def test_a_payload_that_is_not_a_conform_payload_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TaskFailed, match="conform task payload is not valid"):
        ConformExecutor(WorkerInfo()).run("conform", {"codec": "h264"}, TaskContext(key="c"))

"""The Blender executor in a farm job's sandbox (real bpy, real bubblewrap and cgroups; this
machine runs as root): the warm process renders as the project's user seeing only the job's
folders, stays warm for the job's next task, and a task past its memory request is out of
memory with its peak. Skipped, saying why, where the sandbox is off."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import build_scene
from wanhe.engine.executors.base import TaskContext, WorkerInfo
from wanhe.engine.executors.blender import BlenderExecutor
from wanhe.lifecycle import TaskOutOfMemory
from wanhe.sandbox.box import mode

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not (mode().namespace and mode().cgroups),
                                 reason="needs the sandbox: root, bubblewrap and cgroups")]


@pytest.fixture
def job() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="wanhe-blender-sandbox-", dir="/tmp"))
    root = work / "jobs" / "1"
    for sub in ("input", "output", "work"):
        (root / sub).mkdir(parents=True)
    build_scene(root / "input" / "tiny.blend", "tiny")
    yield root
    shutil.rmtree(work, ignore_errors=True)


def render(ex: BlenderExecutor, root: Path, frame: int, memory: int | None = None) -> Any:
    payload = {"scene": str(root / "input" / "tiny.blend"), "frame": frame,
               "output": str(root / "work" / f"f{frame:06d}" / "tile000.exr"),
               "resolution_percentage": 100, "border": None, "expected_size": None,
               "samples": 2, "seed": 0}
    return ex.run("render", payload, TaskContext(project="sandboxtest", memory_bytes=memory or 0,
                                                 key=f"{frame}/render/t000"))


def test_renders_as_the_projects_user_and_stays_warm_for_the_job(job: Path) -> None:
    ex = BlenderExecutor(WorkerInfo(name="wsb"))
    try:
        first = render(ex, job, 1)
        pid = ex._blender.pid
        started = time.monotonic()
        second = render(ex, job, 2)
        warm_s = time.monotonic() - started
        assert ex._blender.pid == pid  # the same warm process: the scene stays loaded
        assert Path(first.output["exr"]).exists() and Path(second.output["exr"]).exists()
        assert first.cpu_s > 0 and second.cpu_s > 0 and warm_s < 30
        blender = [p for p in ex._box.pids()
                   if os.stat(f"/proc/{p}").st_uid == pwd.getpwnam("wanhe-p-sandboxtest").pw_uid]
        assert blender, "Blender does not run as the project's user"
    finally:
        ex.close()


def test_past_its_memory_request_is_out_of_memory_with_the_peak(job: Path) -> None:
    ex = BlenderExecutor(WorkerInfo(name="wsb"))
    try:
        with pytest.raises(TaskOutOfMemory, match=r"ran out of memory.*peak") as info:
            render(ex, job, 1, memory=40 * 2**20)  # Blender alone needs more
        assert info.value.peak_rss is not None and info.value.peak_rss >= 32 * 2**20
    finally:
        ex.close()

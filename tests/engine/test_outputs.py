"""A done task's files exist, or it is not done: a task whose executor says it succeeded but
whose declared output is not on disk fails (and is retried); a retry of a job re-queues the
done tasks of every frame whose files went missing (real worker, real SQLite/PostgreSQL,
real API)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Farm, farm_settings
from wanhe.api.app import create_app
from wanhe.engine.outputs import declared_outputs, stale_done_tasks
from wanhe.engine.worker import FarmWorker
from wanhe.model import JobState, TaskKind, TaskSpec, TaskState
from wanhe.store.store import Store, Usage


def test_declared_outputs_are_files_a_payload_names() -> None:
    assert declared_outputs({"output": "/w/f1/tile000.exr"}) == ["/w/f1/tile000.exr"]
    assert declared_outputs({"output": "/jobs/7/output"}) == []  # a folder names no file
    assert declared_outputs({"candidates": [{"output": "/o/c0.png"}, {"output": "/o/c1.png"}],
                             "output": "/o/scores.json"}) == \
        ["/o/scores.json", "/o/c0.png", "/o/c1.png"]


def test_a_task_that_wrote_nothing_is_not_done(tmp_path: Path) -> None:
    worker = FarmWorker("w0")
    missing = tmp_path / "out" / "frame_0003.exr"
    answer = worker.run({"kind": TaskKind.NOOP.value, "key": "3/denoise",
                         "payload": {"output": str(missing)}})
    assert answer["ok"] is False and answer["outcome"] == "failed"
    assert "not on disk" in answer["error"] and str(missing) in answer["error"]
    missing.parent.mkdir()
    missing.write_bytes(b"exr")
    done = worker.run({"kind": TaskKind.NOOP.value, "key": "3/denoise",
                       "payload": {"output": str(missing)}})
    assert done["ok"] is True


def frames_job(store: Store, out: Path, frames: int) -> int:
    project = store.ensure_project("lion")
    tasks = []
    for f in range(1, frames + 1):
        tasks.append(TaskSpec(f"{f}/render", TaskKind.NOOP, {"output": str(out / f"t{f}.exr")},
                              frame=f))
        tasks.append(TaskSpec(f"{f}/denoise", TaskKind.NOOP,
                              {"output": str(out / f"frame_{f:04d}.exr")},
                              deps=[f"{f}/render"], frame=f))
    return store.create_job(project_id=project.id, name="frames", kind="noop", spec={},
                            fingerprint=f"frames-{time.monotonic_ns()}", tasks=tasks)


def finish_everything(store: Store, job: int) -> None:
    """Run the job's tasks to done through the store, writing each declared file."""
    while True:
        ready = [t for t in store.tasks(job) if t.state is TaskState.READY]
        if not ready:
            return
        for task in ready:
            Path(task.payload["output"]).write_bytes(b"x")
            attempt = store.start_attempt(task.id, node="n", worker="w", cores=1.0,
                                          log_path="")
            store.finish_attempt(attempt, task.id, Usage(wall_s=0.1, cores=1.0), {})


@pytest.mark.timeout(60)
def test_a_retry_requeues_the_frames_whose_files_are_gone(tmp_path: Path, db_url: str) -> None:
    settings = farm_settings(tmp_path, db_url)
    store = Store(settings.db_url)
    out = tmp_path / "out"
    out.mkdir()
    job = frames_job(store, out, 6)
    finish_everything(store, job)
    assert store.job(job).state is JobState.DONE  # type: ignore[union-attr]
    for f in (3, 4):  # the disk lost frames 3 and 4
        (out / f"frame_{f:04d}.exr").unlink()
    stale = stale_done_tasks(store.tasks(job))
    assert sorted(t.key for t in store.tasks(job) if t.id in stale) == \
        ["3/denoise", "3/render", "4/denoise", "4/render"]

    project = store.ensure_project("lion")
    token = store.create_token(project.id, "lion")
    admin = store.create_token(None, "admin")
    store.dispose()
    app = create_app(settings, start_dispatcher=False)
    with TestClient(app) as client:
        farm = Farm(client, settings, admin)
        (out / "frame_0003.exr").write_bytes(b"x")
        (out / "frame_0004.exr").write_bytes(b"x")
        whole = client.post(f"/api/jobs/{job}/retry", headers=farm.auth(token))
        assert whole.status_code == 409 and "every file it made is there" in whole.text
        for f in (3, 4):
            (out / f"frame_{f:04d}.exr").unlink()
        r = client.post(f"/api/jobs/{job}/retry", headers=farm.auth(token))
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "queued"
        states = {t["key"]: t["state"] for t in
                  client.get(f"/api/jobs/{job}/tasks", headers=farm.auth(token)).json()}
    assert states["3/render"] == states["4/render"] == "ready"
    assert states["3/denoise"] == states["4/denoise"] == "waiting"
    assert all(states[f"{f}/denoise"] == "done" for f in (1, 2, 5, 6))

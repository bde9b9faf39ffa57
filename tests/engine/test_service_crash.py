"""kill -9 of `wanhe serve` mid-job, then a restart: the job finishes, nothing runs twice.

The service runs in its own session; SIGKILL goes to its whole process group (its embedded
Ray dies with it). After the restart: every frame present once, at most one OK attempt per
task, tasks finished before the kill never ran again, the killed attempts are recorded LOST.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api._service import ServiceProc, make_project, submit_job, wait_for
from tests.conftest import build_scene
from wanhe.store.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FRAMES = 6


def test_kill_dash_nine_mid_job(tmp_path: Path, scene_dir: Path) -> None:
    scene = build_scene(scene_dir / "tiny6.blend", "tiny", "--frames", f"1-{FRAMES}")
    home = tmp_path / "serve"
    svc = ServiceProc(home, f"sqlite:///{tmp_path / 'wanhe.db'}", 0, workers=2)
    token = make_project(svc.db_url, "crash")
    svc.start()
    store = Store(svc.db_url)
    try:
        job_id = submit_job(svc, token, scene, "--frames", f"1-{FRAMES}", "--tiles", "2x1",
                            "--no-denoise")

        def mid_job() -> bool:
            attempts = store.attempts(job_id)
            return (any(a["outcome"] == "ok" for a in attempts)
                    and any(a["outcome"] is None for a in attempts))

        wait_for(mid_job, 240, "some tasks done and some running", interval=0.1)
        svc.kill()  # SIGKILL to the service's process group
        before = store.attempts(job_id)
        open_ids = {a["id"] for a in before if a["outcome"] is None}
        done_before = {a["task_id"] for a in before if a["outcome"] == "ok"}
        assert open_ids and done_before
        job = store.job(job_id)
        assert job is not None and not job.state.is_final

        svc.start()
        wait_for(lambda: (j := store.job(job_id)) is not None and j.state.is_final, 300,
                 "the job to finish after the restart")
        job = store.job(job_id)
        assert job is not None and job.state.value == "done", job
        attempts = store.attempts(job_id)
        by_id = {a["id"]: a for a in attempts}
        assert {by_id[i]["outcome"] for i in open_ids} == {"lost"}
        ok_per_task: dict[int, int] = {}
        for a in attempts:
            if a["outcome"] == "ok":
                ok_per_task[a["task_id"]] = ok_per_task.get(a["task_id"], 0) + 1
        assert all(n == 1 for n in ok_per_task.values()), ok_per_task
        assert len(ok_per_task) == len(store.tasks(job_id))
        for task_id in done_before:  # finished before the kill: never started again
            assert [a["outcome"] for a in attempts if a["task_id"] == task_id] == ["ok"]
        out = home / "storage" / "jobs" / str(job_id) / "output"
        names = sorted(p.name for p in out.iterdir())
        expected = sorted(f"frame_{f:04d}.{ext}" for f in range(1, FRAMES + 1)
                          for ext in ("exr", "png"))
        assert names == expected  # each frame once; no temp or half-written files
        lost_usage = [a for a in attempts if a["outcome"] == "lost"]
        assert all(a["wall_s"] is not None and a["ended_at"] is not None for a in lost_usage)
    finally:
        store.dispose()
        svc.kill()

"""End to end through a real `wanhe serve` (embedded Ray, real dispatcher, real database).

`wanhe submit` packs a tiny scene, uploads it, the farm renders it to done; a second submit
uploads nothing. NOOP jobs put straight into the database show fair share (weights 2:1),
priority and budgets through the real dispatcher.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api._service import ServiceProc, make_project, run_cli, wait_for
from tests.conftest import build_scene
from wanhe.model import JobState, TaskKind, TaskSpec
from wanhe.store.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProc]:
    home = tmp_path_factory.mktemp("serve")
    svc = ServiceProc(home, f"sqlite:///{home / 'wanhe.db'}", 0, workers=6,
                      num_cpus=6)  # six slots on two cores: NOOP tasks only sleep
    svc.start()
    try:
        yield svc
    finally:
        svc.kill()


def test_submit_renders_to_done(service: ServiceProc, scene_dir: Path) -> None:
    scene = build_scene(scene_dir / "tiny.blend", "tiny")
    token = make_project(service.db_url, "e2e")
    first = json.loads(run_cli(service, token, "submit", str(scene), "--frames", "1-2",
                            "--tiles", "2x1", "--no-denoise", "--qc", "--json"))
    assert first["uploaded_files"] == 1
    with service.client(token) as http:
        job = wait_for(
            lambda: (j := http.get(f"/api/jobs/{first['id']}").json())["state"]
            in ("done", "failed") and j, 240, "the job to finish")
        assert job["state"] == "done", job
        assert [f["state"] for f in job["frames"]] == ["done", "done"]
        # the dashboard shows each frame's quality checks from here
        assert all(f["qc"] is not None and "passed" in f["qc"] for f in job["frames"])
        assert {o["path"] for o in job["outputs"]} == {
            "frame_0001.exr", "frame_0001.png", "frame_0002.exr", "frame_0002.png"}
        png = http.get(job["frames"][0]["preview_url"])
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
        assert http.get(f"/api/jobs/{first['id']}/latest.png").status_code == 200
        log = http.get(f"/api/jobs/{first['id']}/logs", params={"task": "1/render/t000"}).text
        assert "render task 1/render/t000" in log
        report = http.get("/api/report").json()
        assert report["projects"][0]["ok"] > 0
        assert http.get("/metrics").status_code == 403  # every project's usage: admins'
    store = Store(service.db_url)
    try:
        admin = store.create_token(None, "ops")
    finally:
        store.dispose()
    with service.client(admin) as http:
        assert "wanhe_dispatch_latency_seconds_count" in http.get("/metrics").text
    listed = json.loads(run_cli(service, token, "job", str(first["id"]), "--json"))
    assert listed["state"] == "done"
    second = json.loads(run_cli(service, token, "submit", str(scene), "--frames", "1",
                             "--no-denoise", "--json"))
    assert second["uploaded_files"] == 0 and second["uploaded_bytes"] == 0


def _noop_job(store: Store, project: str, n: int, sleep_s: float, priority: int = 50) -> int:
    found = store.project_by_name(project)
    assert found is not None
    tasks = [TaskSpec(f"n{i:03d}", TaskKind.NOOP, {"sleep_s": sleep_s}) for i in range(n)]
    return store.create_job(project_id=found.id, name=f"noop-{project}", kind="noop", spec={},
                            fingerprint=f"noop-{project}-{n}", tasks=tasks, priority=priority)


def test_fair_share_priority_and_budget(service: ServiceProc) -> None:
    make_project(service.db_url, "heavy", weight=2.0)
    make_project(service.db_url, "light", weight=1.0)
    broke = make_project(service.db_url, "broke", budget_core_hours=0.0)
    store = Store(service.db_url)
    try:
        poor = _noop_job(store, "broke", 3, 0.1)
        heavy = _noop_job(store, "heavy", 40, 0.4)
        light = _noop_job(store, "light", 40, 0.4)

        def finished() -> int:
            return sum(1 for j in (heavy, light)
                       for a in store.attempts(j) if a["outcome"] == "ok")

        wait_for(lambda: finished() >= 24, 120, "24 NOOP tasks")
        used = {j: sum(a["cores"] * (a["wall_s"] or 0) for a in store.attempts(j))
                for j in (heavy, light)}
        ratio = used[heavy] / max(used[light], 1e-9)
        assert 1.4 <= ratio <= 2.8, (ratio, used)
        # a later, higher-priority job overtakes both
        urgent = _noop_job(store, "light", 4, 0.1, priority=90)
        wait_for(lambda: (job := store.job(urgent)) is not None and job.state is JobState.DONE,
                 60, "the urgent job")
        heavy_left = store.task_counts(heavy).get("ready", 0)
        assert heavy_left > 0  # it finished while the older jobs still had work
        poor_job = store.job(poor)
        assert poor_job is not None and poor_job.state is JobState.QUEUED
        assert "budget" in poor_job.message
        assert store.attempts(poor) == []
        with service.client(broke) as http:
            listed = http.get(f"/api/jobs/{poor}").json()
            assert "budget" in listed["message"]
        for job_id in (heavy, light):
            store.cancel_job(job_id)
    finally:
        store.dispose()


def test_a_task_that_always_times_out_fails_the_job_with_the_reason(
    service: ServiceProc, scene_dir: Path
) -> None:
    """The farm's side of `wanhe render --task-timeout 2` on a long frame: three timed-out
    attempts, then the job is failed — one state, with the reason — instead of waiting."""
    scene = build_scene(scene_dir / "tiny.blend", "tiny")
    token = make_project(service.db_url, "timeouts")
    made = json.loads(run_cli(service, token, "submit", str(scene), "--frames", "1",
                              "--samples", "200000", "--task-timeout", "2", "--json"))
    with service.client(token) as http:
        job = wait_for(
            lambda: (j := http.get(f"/api/jobs/{made['id']}").json())["state"]
            in ("done", "failed") and j, 120, "the job to fail")
    assert job["state"] == "failed"
    assert job["message"].startswith("frame 1 tile 0 timed out 3 time(s), last on ")
    assert "timeout_s=2" in job["message"]
    assert [f["outcome"] for f in job["failures"]] == ["timeout"] * 3
    assert job["tasks"].get("running", 0) == 0 and job["tasks"].get("ready", 0) == 0

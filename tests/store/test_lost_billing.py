"""An attempt lost in a service outage is metered up to its last sign of life (a heartbeat
or its log's last line), not for the whole outage; the rest shows as unbilled (issue 12,
item 7)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import update

from wanhe.model import Resources, TaskKind, TaskSpec
from wanhe.store import tables as t
from wanhe.store.store import Store


def _one_running(store: Store, *, log_path: str = "") -> tuple[int, int]:
    project = store.ensure_project("p")
    job = store.create_job(
        project_id=project.id, name="j", kind="test", spec={}, fingerprint="f",
        tasks=[TaskSpec("t0", TaskKind.COMMAND, {}, resources=Resources(cpus=2))],
    )
    task = store.tasks(job)[0]
    attempt = store.start_attempt(task.id, node="n1", worker="w0", cores=2, log_path=log_path)
    return job, attempt


def _age(store: Store, attempt: int, *, started_ago: float) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(t.attempts).where(t.attempts.c.id == attempt)
                     .values(started_at=time.time() - started_ago))


def test_a_lost_attempt_is_billed_up_to_its_last_heartbeat(store: Store) -> None:
    job, attempt = _one_running(store)
    _age(store, attempt, started_ago=20.0)
    store.note_attempts_alive({attempt: time.time() - 18.5})  # 1.5 s of work, then an outage
    assert store.recover_interrupted() == 1
    [row] = store.attempts(job)
    assert row["outcome"] == "lost"
    assert 1.3 < row["wall_s"] < 1.8, row["wall_s"]
    assert 18.0 < row["unbilled_s"] < 19.5, row["unbilled_s"]
    assert "not billed" in row["message"]
    usage = store.usage_rows(job_id=job)
    assert abs(usage[0]["core_seconds"] - 2 * row["wall_s"]) < 1e-6
    assert abs(usage[0]["unbilled_core_seconds"] - 2 * row["unbilled_s"]) < 1e-6


def test_the_log_counts_as_a_sign_of_life(store: Store, tmp_path: Path) -> None:
    log = tmp_path / "attempt.log"
    log.write_text("Fra:1 Sample 12/64\n")
    job, attempt = _one_running(store, log_path=str(log))
    _age(store, attempt, started_ago=20.0)
    os.utime(log, (time.time() - 15.0, time.time() - 15.0))  # last line 5 s in
    store.note_attempts_alive({attempt: time.time() - 19.0})  # a heartbeat before that
    store.recover_interrupted()
    [row] = store.attempts(job)
    assert 4.8 < row["wall_s"] < 5.5, row["wall_s"]


def test_without_any_sign_of_life_nothing_past_the_start_is_billed(store: Store) -> None:
    job, attempt = _one_running(store)
    _age(store, attempt, started_ago=30.0)
    store.recover_interrupted()
    [row] = store.attempts(job)
    assert row["wall_s"] < 0.5 and row["unbilled_s"] > 29


def test_the_dispatcher_writes_heartbeats_of_running_attempts(store: Store, tmp_path: Path) -> None:
    """A real local worker running a real command answers progress polls: its attempt's last
    sign of life moves while it runs."""
    from tests.engine.test_dispatcher_failures import commands_job

    from wanhe.engine import dispatcher as dispatching
    from wanhe.engine.handles import LocalWorker

    job = commands_job(store, [["sleep", "3"]])
    d = dispatching.Dispatcher(store, threads=1, workers=1, log_root=tmp_path / "logs",
                               local_workers=[LocalWorker("w0")], use_ray=False)
    try:
        d.start_pool()
        d.sync()
        deadline = time.monotonic() + 10
        seen = None
        while time.monotonic() < deadline and seen is None:
            d.step(0.2)
            rows = store.attempts(job)
            if rows and rows[0]["last_seen_at"] is not None:
                seen = rows[0]["last_seen_at"]
        assert seen is not None, "no heartbeat written within 10 s"
        assert seen >= rows[0]["started_at"]
    finally:
        d.close()

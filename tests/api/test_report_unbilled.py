"""The report and the job detail show a lost attempt's billed time and its outage apart
(issue 12, item 7)."""

from __future__ import annotations

import time

from sqlalchemy import update

from tests.api.conftest import Farm
from wanhe.store import tables as t


def test_report_shows_billed_and_unbilled_outage(farm: Farm) -> None:
    a = farm.project("a")
    job_id = int(farm.submit(a)["id"])  # type: ignore[call-overload]
    store = farm.client.app.state.service.store  # type: ignore[attr-defined]
    task = next(x for x in store.tasks(job_id) if x.state.value == "ready")
    attempt = store.start_attempt(task.id, node="n1", worker="w0", cores=4)
    with store.engine.begin() as conn:
        conn.execute(update(t.attempts).where(t.attempts.c.id == attempt)
                     .values(started_at=time.time() - 16.0))
    store.note_attempts_alive({attempt: time.time() - 14.8})  # 1.2 s of render, then down
    store.recover_interrupted()
    report = farm.client.get("/api/report", headers=farm.auth(a)).json()
    [row] = report["jobs"]
    assert abs(row["lost"] * 3600 - 4 * 1.2) < 0.5, row
    assert abs(row["lost_unbilled_hours"] * 3600 - 4 * 14.8) < 0.5, row
    detail = farm.client.get(f"/api/jobs/{job_id}", headers=farm.auth(a)).json()
    assert abs(detail["unbilled_core_seconds"] - 4 * 14.8) < 0.5
    assert "not billed" in detail["failures"][0]["message"]

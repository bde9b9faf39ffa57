"""A job waiting on a job that was cancelled or failed does not wait forever: refused at
submit, or failed saying which job it waited on (issue 12, item 8)."""

from __future__ import annotations

from tests.api.conftest import Farm


def _job(farm: Farm, token: str, job_id: object) -> dict[str, object]:
    r = farm.client.get(f"/api/jobs/{job_id}", headers=farm.auth(token))
    assert r.status_code == 200
    data: dict[str, object] = r.json()
    return data


def test_waiting_on_a_cancelled_or_failed_job_is_refused_at_submit(farm: Farm) -> None:
    a = farm.project("a")
    first = farm.submit(a)["id"]
    farm.client.post(f"/api/jobs/{first}/cancel", headers=farm.auth(a))
    files = farm.upload(a, {"s.blend": b"BLENDER-v500" + b"\0" * 200 + b"ENDB"})
    r = farm.client.post("/api/jobs", json={"main": "s.blend", "files": files,
                                            "depends_on": [first]}, headers=farm.auth(a))
    assert r.status_code == 422, r.text
    assert "depends_on" in r.text and f"job {first} is cancelled" in r.text


def test_cancelling_a_job_fails_the_jobs_that_wait_on_it(farm: Farm) -> None:
    a = farm.project("a")
    first = farm.submit(a)["id"]
    second = farm.submit(a, depends_on=[first], name="second")["id"]
    third = farm.submit(a, depends_on=[second], name="third")["id"]
    assert _job(farm, a, second)["state"] == "queued"
    farm.client.post(f"/api/jobs/{first}/cancel", headers=farm.auth(a))
    waiting = _job(farm, a, second)
    assert waiting["state"] == "failed"
    assert waiting["message"] == f"waiting on job {first} (cancelled)"
    chained = _job(farm, a, third)
    assert chained["state"] == "failed"
    assert chained["message"] == f"waiting on job {second} (failed)"
    # retrying the waiting job while what it waits on is still cancelled would wedge it again
    r = farm.client.post(f"/api/jobs/{second}/retry", headers=farm.auth(a))
    assert r.status_code == 409 and f"job {first}" in r.text
    # retry the first, then the second: it waits again
    assert farm.client.post(f"/api/jobs/{first}/retry", headers=farm.auth(a)).status_code == 200
    r = farm.client.post(f"/api/jobs/{second}/retry", headers=farm.auth(a))
    assert r.status_code == 200 and r.json()["state"] == "queued"
    tasks = farm.client.get(f"/api/jobs/{second}/tasks", headers=farm.auth(a)).json()
    assert {t["state"] for t in tasks} == {"waiting"}  # until the first is done


def test_a_failing_job_fails_the_jobs_that_wait_on_it(farm: Farm) -> None:
    a = farm.project("a")
    first = farm.submit(a)["id"]
    second = farm.submit(a, depends_on=[first], name="second")["id"]
    service = farm.client.app.state.service  # type: ignore[attr-defined]
    service.store.fail_job(first, "task t0 failed 3 time(s)")
    waiting = _job(farm, a, second)
    assert waiting["state"] == "failed"
    assert waiting["message"] == f"waiting on job {first} (failed)"

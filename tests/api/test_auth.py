"""Every endpoint but /health needs a token; a project's token sees only its own project."""

from __future__ import annotations

import re

from tests.api.conftest import Farm

OPEN = {"/health", "/"}  # "/" is the dashboard's static page: no data, it asks for a token


def _concrete(path: str) -> str:
    path = path.replace("{sha256}", "0" * 64).replace("{path}", "frame_0001.png")
    return re.sub(r"\{[a-z_]+\}", "1", path)


def test_every_endpoint_needs_a_token(farm: Farm) -> None:
    paths = farm.client.get("/openapi.json").json()["paths"]
    checked = 0
    for path, operations in paths.items():
        for method in operations:
            if path in OPEN:
                continue
            url = _concrete(path)
            for headers in ({}, {"Authorization": "Bearer wh_wrong"},
                            {"Authorization": "Basic eDp5"}):
                r = farm.client.request(method, url, headers=headers)
                assert r.status_code == 401, (method, url, headers, r.status_code, r.text)
                assert "token" in r.json()["detail"]
            checked += 1
    assert checked >= 25
    assert farm.client.get("/health").json() == {"ok": True}


def test_revoked_token_stops_working(farm: Farm) -> None:
    token = farm.project("a")
    assert farm.client.get("/api/me", headers=farm.auth(token)).status_code == 200
    tokens = farm.client.get("/api/tokens", headers=farm.auth(token)).json()
    assert len(tokens) == 1 and tokens[0]["project"] == "a"
    r = farm.client.delete(f"/api/tokens/{tokens[0]['id']}", headers=farm.auth(token))
    assert r.status_code == 200 and r.json()["revoked"]
    r = farm.client.get("/api/me", headers=farm.auth(token))
    assert r.status_code == 401


def test_admin_only_operations(farm: Farm) -> None:
    token = farm.project("a")
    r = farm.client.post("/api/projects", json={"name": "b"}, headers=farm.auth(token))
    assert r.status_code == 403
    r = farm.client.patch("/api/projects/a", json={"weight": 5}, headers=farm.auth(token))
    assert r.status_code == 403
    r = farm.client.post("/api/tokens", json={"admin": True}, headers=farm.auth(token))
    assert r.status_code == 403
    r = farm.client.patch("/api/projects/a", json={"weight": 3, "budget_core_hours": 10},
                          headers=farm.auth(farm.admin))
    assert r.json()["weight"] == 3 and r.json()["budget_core_hours"] == 10
    r = farm.client.patch("/api/projects/a", json={"budget_core_hours": None},
                          headers=farm.auth(farm.admin))
    assert r.json()["budget_core_hours"] is None and r.json()["weight"] == 3
    me = farm.client.get("/api/me", headers=farm.auth(farm.admin)).json()
    assert me["project"] is None and me["admin"] is True and me["scope"] == "admin"
    r = farm.client.post("/api/projects", json={"name": "a"}, headers=farm.auth(farm.admin))
    assert r.status_code == 409


def test_projects_cannot_see_each_other(farm: Farm) -> None:
    a = farm.project("lionboy")
    b = farm.project("tigergirl")
    job = farm.submit(a)
    job_id = job["id"]
    out = farm.settings.storage_root / "jobs" / str(job_id) / "output"
    out.mkdir(parents=True, exist_ok=True)
    (out / "frame_0001.png").write_bytes(b"\x89PNG fake")
    c = farm.client
    assert c.get(f"/api/jobs/{job_id}/files/frame_0001.png", headers=farm.auth(a)).content \
        == b"\x89PNG fake"
    assert c.get(f"/api/jobs/{job_id}/latest.png", headers=farm.auth(a)).status_code == 200
    missing = {
        ("GET", f"/api/jobs/{job_id}"), ("GET", f"/api/jobs/{job_id}/tasks"),
        ("GET", f"/api/jobs/{job_id}/logs"), ("GET", f"/api/jobs/{job_id}/files/frame_0001.png"),
        ("GET", f"/api/jobs/{job_id}/latest.png"), ("POST", f"/api/jobs/{job_id}/cancel"),
        ("POST", f"/api/jobs/{job_id}/pause"), ("POST", f"/api/jobs/{job_id}/resume"),
        ("POST", f"/api/jobs/{job_id}/retry"), ("GET", "/api/report?project=lionboy"),
        ("GET", "/api/usage/timeline?project=lionboy"), ("GET", "/api/jobs?project=lionboy"),
    }
    for method, url in missing:
        r = c.request(method, url, headers=farm.auth(b))
        assert r.status_code == 404, (method, url, r.status_code)
        unknown = c.request(method, url.replace(f"/{job_id}", "/999999"),
                            headers=farm.auth(b))
        assert unknown.status_code == 404
    r = c.patch(f"/api/jobs/{job_id}", json={"priority": 9}, headers=farm.auth(b))
    assert r.status_code == 404
    assert c.get("/api/jobs", headers=farm.auth(b)).json() == []
    assert [p["name"] for p in c.get("/api/projects", headers=farm.auth(b)).json()] == [
        "tigergirl"]
    assert c.get("/api/report", headers=farm.auth(b)).json()["projects"] == []
    # B may not depend on A's job either
    files = farm.upload(b, {"s.blend": b"BLENDER-v500" + b"\0" * 200 + b"ENDB"})
    r = c.post("/api/jobs", json={"main": "s.blend", "files": files, "depends_on": [job_id]},
               headers=farm.auth(b))
    assert r.status_code == 422 and "depends_on" in r.text
    # the admin sees everything
    assert c.get(f"/api/jobs/{job_id}", headers=farm.auth(farm.admin)).status_code == 200
    assert len(c.get("/api/jobs", headers=farm.auth(farm.admin)).json()) == 1


def test_job_controls(farm: Farm) -> None:
    a = farm.project("a")
    c = farm.client
    job_id = farm.submit(a)["id"]
    assert c.post(f"/api/jobs/{job_id}/pause", headers=farm.auth(a)).json()["state"] == "paused"
    assert c.post(f"/api/jobs/{job_id}/pause", headers=farm.auth(a)).status_code == 409
    assert c.post(f"/api/jobs/{job_id}/resume", headers=farm.auth(a)).json()["state"] == "queued"
    assert c.patch(f"/api/jobs/{job_id}", json={"priority": 90},
                   headers=farm.auth(a)).status_code == 200
    assert c.get(f"/api/jobs/{job_id}", headers=farm.auth(a)).json()["priority"] == 90
    r = c.post(f"/api/jobs/{job_id}/cancel", headers=farm.auth(a))
    assert r.json()["state"] == "cancelled"
    detail = c.get(f"/api/jobs/{job_id}", headers=farm.auth(a)).json()
    assert detail["tasks"] == {"cancelled": detail["tasks"]["cancelled"]}
    assert c.post(f"/api/jobs/{job_id}/retry", headers=farm.auth(a)).json()["state"] == "queued"
    tasks = c.get(f"/api/jobs/{job_id}/tasks", headers=farm.auth(a)).json()
    assert {t["state"] for t in tasks} == {"ready", "waiting"}
    jobs = c.get("/api/jobs?state=queued", headers=farm.auth(a)).json()
    assert [j["id"] for j in jobs] == [job_id]
    assert c.get("/api/jobs?state=done", headers=farm.auth(a)).json() == []


def test_token_management(farm: Farm) -> None:
    a = farm.project("a")
    c = farm.client
    r = c.post("/api/tokens", json={"name": "ci"}, headers=farm.auth(a))
    assert r.status_code == 201 and r.json()["project"] == "a"
    second = r.json()["token"]
    assert c.get("/api/me", headers=farm.auth(second)).json()["project"] == "a"
    r = c.post("/api/tokens", json={"admin": True, "name": "ops"}, headers=farm.auth(farm.admin))
    assert c.get("/api/me", headers=farm.auth(r.json()["token"])).json()["admin"] is True
    b = farm.project("b")
    b_tokens = c.get("/api/tokens", headers=farm.auth(b)).json()
    assert c.delete(f"/api/tokens/{b_tokens[0]['id']}", headers=farm.auth(a)).status_code == 404
    assert c.get("/api/me", headers=farm.auth(b)).status_code == 200


def test_metrics_and_events(farm: Farm) -> None:
    a = farm.project("a")
    farm.submit(a)
    # metrics hold every project's usage: the operators' (admin) tokens read them
    assert farm.client.get("/metrics", headers=farm.auth(a)).status_code == 403
    text = farm.client.get("/metrics", headers=farm.auth(farm.admin)).text
    assert "wanhe_queue_depth 2.0" in text
    assert "wanhe_dispatch_latency_seconds_bucket" in text
    assert 'wanhe_core_seconds_total{project="a"}' in text
    b = farm.project("b")
    service = farm.client.app.state.service  # type: ignore[attr-defined]
    service.events.publish("job", service.store.project_by_name("a").id, {"id": 1, "who": "a"})
    service.events.publish("job", service.store.project_by_name("b").id, {"id": 2, "who": "b"})
    with farm.client.stream("GET", "/api/events?timeout=1",
                            headers={"Last-Event-ID": "0", **farm.auth(b)}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    assert '"who": "b"' in body and '"who": "a"' not in body
    assert "event: job" in body


def test_a_touched_job_sends_its_summary_as_a_job_event(farm: Farm) -> None:
    """The service's event thread describes a job with what `create_app` wired in (views)."""
    a = farm.project("a")
    job = farm.submit(a)
    with farm.client.stream("GET", "/api/events?timeout=2",
                            headers={"Last-Event-ID": "0", **farm.auth(a)}) as r:
        body = "".join(r.iter_text())
    assert "event: job" in body
    assert f'"id": {job["id"]}' in body and '"project": "a"' in body


def test_a_token_in_the_url_is_refused(farm: Farm) -> None:
    """URLs end up in proxy and server logs: tokens travel only in the Authorization header."""
    a = farm.project("a")
    for path in ("/api/jobs", "/api/events?timeout=1", "/api/me"):
        sep = "&" if "?" in path else "?"
        r = farm.client.get(f"{path}{sep}token={a}")
        assert r.status_code == 401, (path, r.status_code)
        assert "Authorization: Bearer" in r.json()["detail"]

"""Token scopes, expiry and last use; metrics for admins; streams that end with their token
(issue 12, items 1-3)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from typer.testing import CliRunner

from tests.api.conftest import Farm
from wanhe.cli import app as wanhe_app
from wanhe.store.store import Store


def _token_id(farm: Farm, token: str) -> int:
    me = farm.client.get("/api/me", headers=farm.auth(token)).json()
    return int(me["token_id"])


def test_metrics_are_for_admins_only(farm: Farm) -> None:
    alpha = farm.project("alpha")
    farm.project("beta")
    r = farm.client.get("/metrics", headers=farm.auth(alpha))
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    assert "wanhe_core_seconds" not in r.text
    text = farm.client.get("/metrics", headers=farm.auth(farm.admin)).text
    assert 'wanhe_core_seconds_total{project="alpha"}' in text
    assert 'wanhe_core_seconds_total{project="beta"}' in text


def test_a_submit_token_can_neither_mint_nor_revoke(farm: Farm) -> None:
    c = farm.client
    first = farm.project("a")  # the project's first token manages it
    assert c.get("/api/me", headers=farm.auth(first)).json()["scope"] == "manage"
    r = c.post("/api/tokens", json={"name": "ci"}, headers=farm.auth(first))
    assert r.status_code == 201 and r.json()["scope"] == "submit"
    ci = r.json()["token"]
    # the submit token reads and submits ...
    assert c.get("/api/jobs", headers=farm.auth(ci)).status_code == 200
    farm.submit(ci)
    # ... but mints nothing and revokes no sibling, the first token least of all
    for scope in ("submit", "manage"):
        r = c.post("/api/tokens", json={"scope": scope}, headers=farm.auth(ci))
        assert r.status_code == 403 and "manage" in r.json()["detail"], r.text
    r = c.delete(f"/api/tokens/{_token_id(farm, first)}", headers=farm.auth(ci))
    assert r.status_code == 403
    assert c.get("/api/me", headers=farm.auth(first)).status_code == 200
    # a managing token may revoke it; it may revoke itself
    r = c.post("/api/tokens", json={"name": "leak"}, headers=farm.auth(first))
    leak = r.json()["token"]
    r = c.delete(f"/api/tokens/{_token_id(farm, leak)}", headers=farm.auth(leak))
    assert r.status_code == 200
    r = c.delete(f"/api/tokens/{_token_id(farm, ci)}", headers=farm.auth(first))
    assert r.status_code == 200
    assert c.get("/api/me", headers=farm.auth(ci)).status_code == 401
    # a managing token may mint another managing one; admin tokens stay the admin's
    r = c.post("/api/tokens", json={"scope": "manage"}, headers=farm.auth(first))
    assert r.status_code == 201 and r.json()["scope"] == "manage"
    assert c.post("/api/tokens", json={"admin": True},
                  headers=farm.auth(first)).status_code == 403
    assert c.post("/api/tokens", json={"scope": "root"},
                  headers=farm.auth(first)).status_code == 422


def test_expired_tokens_get_401(farm: Farm) -> None:
    c = farm.client
    first = farm.project("a")
    r = c.post("/api/tokens", json={"expires_in_s": 1}, headers=farm.auth(first))
    assert r.status_code == 201, r.text
    short = r.json()["token"]
    assert r.json()["expires_at"] is not None
    assert c.get("/api/me", headers=farm.auth(short)).status_code == 200
    time.sleep(1.2)
    r = c.get("/api/me", headers=farm.auth(short))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    listed = {t["id"]: t for t in c.get("/api/tokens", headers=farm.auth(first)).json()}
    assert any(t["expired"] for t in listed.values())
    for bad in (0, -5, 1e12, "30d"):
        r = c.post("/api/tokens", json={"expires_in_s": bad}, headers=farm.auth(first))
        assert r.status_code == 422 and "expires_in_s" in r.text


def test_a_token_cannot_outlive_the_managing_token_that_made_it(farm: Farm) -> None:
    c = farm.client
    first = farm.project("a")
    r = c.post("/api/tokens", json={"scope": "manage", "expires_in_s": 3600},
               headers=farm.auth(first))
    boss = r.json()["token"]
    r = c.post("/api/tokens", json={}, headers=farm.auth(boss))
    assert r.status_code == 201
    made = r.json()["expires_at"]
    assert made is not None and made <= time.time() + 3601


def test_last_used_is_recorded(farm: Farm) -> None:
    c = farm.client
    first = farm.project("a")
    before = time.time()
    c.get("/api/jobs", headers=farm.auth(first))
    rows = c.get("/api/tokens", headers=farm.auth(first)).json()
    assert rows[0]["last_used_at"] is not None and rows[0]["last_used_at"] >= before - 1


def test_an_open_stream_ends_when_its_token_is_revoked(farm: Farm) -> None:
    c = farm.client
    first = farm.project("a")
    viewer = c.post("/api/tokens", json={"name": "viewer"}, headers=farm.auth(first)).json()
    service = c.app.state.service  # type: ignore[attr-defined]

    def revoke_soon() -> None:
        time.sleep(1.0)
        service.store.revoke_token(viewer["id"])

    began = time.monotonic()
    with c.stream("GET", "/api/events?timeout=30", headers=farm.auth(viewer["token"])) as r:
        assert r.status_code == 200
        # revoked once the stream is open (before, a loaded machine could revoke it first)
        threading.Thread(target=revoke_soon, daemon=True).start()
        body = "".join(r.iter_text())
    took = time.monotonic() - began
    assert took < 8, f"the stream outlived its token by {took:.1f} s"
    assert "event: revoked" in body


def test_cli_token_scopes_expiry_and_last_use(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'wanhe.db'}"
    env = {"WANHE_HOME": str(tmp_path / "home")}
    runner = CliRunner()
    made = runner.invoke(wanhe_app, ["project", "create", "lionboy", "--db", db], env=env)
    assert made.exit_code == 0, made.output
    r = runner.invoke(wanhe_app, ["token", "create", "--project", "lionboy", "--expires", "30d",
                                  "--name", "ci", "--db", db, "--json"], env=env)
    assert r.exit_code == 0, r.output
    store = Store(db)
    try:
        rows = {row["name"]: row for row in store.tokens()}
    finally:
        store.dispose()
    assert rows["ci"]["scope"] == "submit"
    assert abs(rows["ci"]["expires_at"] - (time.time() + 30 * 86400)) < 120
    assert rows["lionboy (wanhe project create)"]["scope"] == "manage"
    listed = runner.invoke(wanhe_app, ["token", "list", "--db", db], env={**env, "COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "last used" in listed.output and "expires" in listed.output
    assert "manage" in listed.output and "submit" in listed.output
    for bad in ("30x", "-1d", "0d", "d", "1e400d"):
        r = runner.invoke(wanhe_app, ["token", "create", "--project", "lionboy", "--expires", bad,
                                      "--db", db], env=env)
        assert r.exit_code == 2, (bad, r.output)
        assert "--expires" in r.output and "Traceback" not in r.output

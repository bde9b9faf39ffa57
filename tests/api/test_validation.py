"""Hostile or careless input answers 422 (API) or exit 2 (CLI) naming the field, never a 500
or a traceback (issue 12, items 4 and 9-13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.api.conftest import Farm
from wanhe.cli import app as wanhe_app


def _field_named(body: object, field: str) -> bool:
    return field in str(body)


def test_last_event_id_must_be_ascii_digits(farm: Farm) -> None:
    a = farm.project("a")
    for value in ["²", "٣", "1" * 40, "-1", "1e3", " 1"]:
        try:  # how a client sends a non-ASCII header: bytes, which Starlette reads as Latin-1
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raw = value.encode()
        headers = {"Last-Event-ID": raw, **farm.auth(a)}
        r = farm.client.get("/api/events?timeout=0.5", headers=headers)
        assert r.status_code == 422, (value, r.status_code, r.text)
        assert _field_named(r.json(), "last-event-id")


def test_since_must_be_a_real_time(farm: Farm) -> None:
    for path in ["/api/report", "/api/usage/timeline"]:
        for since in ["nan", "inf", "-inf", "1e309", "-5", "NaN", "99999999999999"]:
            r = farm.client.get(f"{path}?since={since}", headers=farm.auth(farm.admin))
            assert r.status_code == 422, (path, since, r.status_code, r.text)
            assert _field_named(r.json(), "since")


def test_since_still_takes_dates_and_epoch_seconds(farm: Farm) -> None:
    for since in ("2025-01-31", "2025-01-31T10:00:00+02:00", "1700000000", "0"):
        r = farm.client.get("/api/report", params={"since": since},
                            headers=farm.auth(farm.admin))
        assert r.status_code == 200, (since, r.text)


def test_render_options_in_range(farm: Farm) -> None:
    a = farm.project("a")
    files = farm.upload(a, {"s.blend": b"BLENDER-v500" + b"\0" * 200 + b"ENDB"})
    for options, field in [
        ({"seed": 2**70}, "seed"), ({"seed": -1}, "seed"),
        ({"task_timeout_s": 1e-300}, "task_timeout_s"),
        ({"task_timeout_s": 0.5}, "task_timeout_s"),
        ({"silence_timeout_s": 1e-9}, "silence_timeout_s"),
        ({"task_timeout_s": 1e300}, "task_timeout_s"),
    ]:
        r = farm.client.post("/api/jobs", json={"main": "s.blend", "files": files,
                                                "options": options}, headers=farm.auth(a))
        assert r.status_code == 422, (options, r.status_code, r.text)
        assert _field_named(r.json(), field)


def test_priority_patch_is_strictly_an_integer(farm: Farm) -> None:
    a = farm.project("a")
    job_id = farm.submit(a)["id"]
    for value in [True, False, "50", 50.0, 50.5, None]:
        r = farm.client.patch(f"/api/jobs/{job_id}", json={"priority": value},
                              headers=farm.auth(a))
        assert r.status_code == 422, (value, r.status_code, r.text)
        assert _field_named(r.json(), "priority")
    assert farm.client.get(f"/api/jobs/{job_id}", headers=farm.auth(a)).json()["priority"] == 50


def test_priority_of_a_finished_job_cannot_change(farm: Farm) -> None:
    a = farm.project("a")
    job_id = farm.submit(a)["id"]
    assert farm.client.post(f"/api/jobs/{job_id}/cancel", headers=farm.auth(a)).status_code == 200
    r = farm.client.patch(f"/api/jobs/{job_id}", json={"priority": 70}, headers=farm.auth(a))
    assert r.status_code == 409 and "cancelled" in r.text
    assert farm.client.get(f"/api/jobs/{job_id}", headers=farm.auth(a)).json()["priority"] == 50


BAD_NAMES = ["bad name!", "<img src=x onerror=alert(1)>", "_leading", "a/b", "é"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_cli_project_create_refuses_what_the_api_refuses(tmp_path: Path, name: str) -> None:
    db = f"sqlite:///{tmp_path / 'wanhe.db'}"
    result = CliRunner().invoke(wanhe_app, ["project", "create", name, "--db", db],
                                env={"WANHE_HOME": str(tmp_path / "home")})
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "project name" in text and "Traceback" not in text


def test_api_refuses_the_same_names(farm: Farm) -> None:
    for name in BAD_NAMES:
        r = farm.client.post("/api/projects", json={"name": name},
                             headers=farm.auth(farm.admin))
        assert r.status_code == 422 and "name" in r.text


@pytest.mark.parametrize("db, says", [
    ("notaurl", "not a database URL"),
    ("postgresql://nobody@127.0.0.1:1/x", "cannot open the database"),
    ("sqlite:///{tmp}/nonexistent/dir/x.db", "nonexistent/dir"),
])
def test_render_refuses_a_bad_database_url(tmp_path: Path, db: str, says: str) -> None:
    db = db.format(tmp=tmp_path)
    scene = tmp_path / "scene.blend"
    scene.write_bytes(b"BLENDER-v500" + b"\0" * 200 + b"ENDB")
    result = CliRunner().invoke(wanhe_app, ["render", str(scene), "--db", db],
                                env={"WANHE_HOME": str(tmp_path / "home")})
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert says in text and "--db" in text, text
    assert "Traceback" not in text and "sqlalche.me" not in text
    assert not (tmp_path / "nonexistent").exists()

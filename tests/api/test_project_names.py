"""The API and the CLI refuse a project whose name is an existing one's but for case or
punctuation (one rule, in the store), naming the other project: HTTP 422 / exit 2."""

from __future__ import annotations

from typer.testing import CliRunner

from tests.api.conftest import Farm
from wanhe.cli import app


def test_api_refuses_lookalike_project_names(farm: Farm) -> None:
    farm.project("alpha")
    auth = farm.auth(farm.admin)
    for name, other in (("Alpha", "alpha"), ("al.pha", None), ("al-pha", "al.pha")):
        r = farm.client.post("/api/projects", json={"name": name}, headers=auth)
        if other is None:
            assert r.status_code == 201, r.text
            continue
        assert r.status_code == 422, r.text
        assert f"project {other!r}" in r.json()["detail"][0]["msg"]


def test_cli_refuses_lookalike_project_names(db_url: str) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["project", "create", "Alpha", "--db", db_url])
    assert made.exit_code == 0, made.output
    assert "project alpha created" in made.stderr
    taken = runner.invoke(app, ["project", "create", "ALPHA", "--db", db_url])
    assert taken.exit_code == 2
    assert "project 'alpha'" in taken.stderr and "Traceback" not in taken.output

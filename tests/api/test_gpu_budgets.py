"""GPU-hour budgets through the API and the CLI: set, changed, removed, and `over_budget` once
a project's metered GPU-hours reach its budget (either budget used up counts)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.api.conftest import Farm
from wanhe.api import client as api_client
from wanhe.api.client import ApiError, Client, describe_error
from wanhe.cli import app as wanhe_app
from wanhe.cli import common as cli_common
from wanhe.model import TaskKind, TaskSpec
from wanhe.store.store import Store, Usage


def _meter(db_url: str, project: str, *, gpu_s: float, wall_s: float = 60.0) -> None:
    """One finished attempt of a one-task job of `project`, metering `gpu_s` GPU-seconds."""
    store = Store(db_url)
    try:
        found = store.project_by_name(project)
        assert found is not None
        job = store.create_job(project_id=found.id, name="gpu shot", kind="test", spec={},
                               fingerprint="fp", tasks=[TaskSpec("r", TaskKind.RENDER, {})])
        task = store.tasks(job)[0]
        attempt = store.start_attempt(task.id, node="n1", worker="w1", cores=1)
        store.finish_attempt(attempt, task.id, Usage(wall_s=wall_s, cores=1, gpu_s=gpu_s), {})
    finally:
        store.dispose()


def _listed(farm: Farm, name: str) -> dict[str, Any]:
    r = farm.client.get("/api/projects", headers=farm.auth(farm.admin))
    assert r.status_code == 200, r.text
    found: dict[str, Any] = next(p for p in r.json() if p["name"] == name)
    return found


def test_gpu_budget_create_patch_and_over_budget(farm: Farm) -> None:
    admin = farm.auth(farm.admin)
    r = farm.client.post("/api/projects", json={"name": "gpu", "budget_gpu_hours": 1},
                         headers=admin)
    assert r.status_code == 201, r.text
    made = r.json()["project"]
    assert made["budget_gpu_hours"] == 1 and made["budget_core_hours"] is None
    assert made["used_gpu_hours"] == 0 and made["over_budget"] is False
    token = r.json()["token"]

    listed = _listed(farm, "gpu")
    assert (listed["budget_gpu_hours"], listed["used_gpu_hours"], listed["over_budget"]) == \
        (1, 0, False)

    # 2 GPU-hours metered (a minute of wall time: the core budget, if any, is far off).
    _meter(farm.settings.db_url, "gpu", gpu_s=7200)
    listed = _listed(farm, "gpu")
    assert listed["used_gpu_hours"] == pytest.approx(2.0)
    assert listed["used_core_hours"] == pytest.approx(60 / 3600)
    assert listed["over_budget"] is True
    # The project's own token sees the same.
    own = farm.client.get("/api/projects", headers=farm.auth(token)).json()
    assert [(p["name"], p["over_budget"]) for p in own] == [("gpu", True)]

    # Raising the GPU budget lifts it; a core budget alone leaves GPU budget as it was.
    r = farm.client.patch("/api/projects/gpu", json={"budget_gpu_hours": 5}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["budget_gpu_hours"], r.json()["over_budget"]) == (5, False)
    assert r.json()["used_gpu_hours"] == pytest.approx(2.0)
    r = farm.client.patch("/api/projects/gpu", json={"budget_core_hours": 100}, headers=admin)
    assert (r.json()["budget_core_hours"], r.json()["budget_gpu_hours"]) == (100, 5)

    # Either budget used up counts: a core budget under the minute metered.
    r = farm.client.patch("/api/projects/gpu", json={"budget_core_hours": 0.001}, headers=admin)
    assert r.json()["over_budget"] is True
    r = farm.client.patch("/api/projects/gpu", json={"budget_core_hours": None}, headers=admin)
    assert r.json()["budget_core_hours"] is None and r.json()["over_budget"] is False

    # null removes the GPU budget, and only it.
    r = farm.client.patch("/api/projects/gpu", json={"budget_gpu_hours": None, "weight": 2},
                          headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["budget_gpu_hours"], r.json()["weight"], r.json()["over_budget"]) == \
        (None, 2, False)
    assert _listed(farm, "gpu")["budget_gpu_hours"] is None

    # The report carries the GPU-hours too.
    report = farm.client.get("/api/report", headers=admin).json()
    assert report["projects"][0]["gpu_hours"] == pytest.approx(2.0)


def test_gpu_budget_ranges_and_admin_only(farm: Farm) -> None:
    admin = farm.auth(farm.admin)
    for bad in (-1, 1e13, "lots"):
        r = farm.client.post("/api/projects", json={"name": "x", "budget_gpu_hours": bad},
                             headers=admin)
        assert r.status_code == 422, (bad, r.text)
    token = farm.project("a")
    r = farm.client.patch("/api/projects/a", json={"budget_gpu_hours": -0.5}, headers=admin)
    assert r.status_code == 422
    r = farm.client.patch("/api/projects/a", json={"budget_gpu_hours": 3},
                          headers=farm.auth(token))
    assert r.status_code == 403
    assert _listed(farm, "a")["budget_gpu_hours"] is None
    r = farm.client.patch("/api/projects/a", json={"budget_gpu_hours": 0}, headers=admin)
    assert r.json()["budget_gpu_hours"] == 0 and r.json()["over_budget"] is True


# ---------------------------------------------------------------------------------- the CLI


def _cli(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(wanhe_app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables printed whole (CliRunner's output is no terminal: rich would use 80 columns)."""
    monkeypatch.setattr(cli_common, "out", Console(width=250))


def test_cli_db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _wide(monkeypatch)
    db = f"sqlite:///{tmp_path / 'wanhe.db'}"
    env = {"WANHE_HOME": str(tmp_path / "home")}
    made = json.loads(_cli("project", "create", "gpu", "--budget-core-hours", "10",
                           "--budget-gpu-hours", "1.5", "--weight", "2", "--db", db, "--json",
                           env=env))
    assert made["project"] == "gpu" and made["token"].startswith("wh_")
    _cli("project", "create", "cpu", "--db", db, env=env)
    _meter(db, "gpu", gpu_s=7200)

    rows = {r["name"]: r for r in json.loads(_cli("project", "list", "--db", db, "--json",
                                                  env=env))}
    assert rows["gpu"]["budget_gpu_hours"] == 1.5 and rows["gpu"]["budget_core_hours"] == 10
    assert rows["gpu"]["weight"] == 2
    assert rows["gpu"]["used_gpu_hours"] == pytest.approx(2.0)
    assert rows["gpu"]["over_budget"] is True
    assert rows["cpu"]["budget_gpu_hours"] is None and rows["cpu"]["used_gpu_hours"] == 0

    table = _cli("project", "list", "--db", db, env=env)
    assert "budget GPU-h" in table and "used GPU-h" in table
    gpu_line = next(line for line in table.splitlines() if " gpu " in f" {line} ")
    assert "1.500" in gpu_line and "2.000" in gpu_line and "10.000" in gpu_line

    _cli("project", "set", "gpu", "--budget-gpu-hours", "4", "--db", db, env=env)
    store = Store(db)
    try:
        assert store.project_by_name("gpu").budget_gpu_hours == 4  # type: ignore[union-attr]
        _cli("project", "budget", "gpu", "20", "--gpu-hours", "6", "--db", db, env=env)
        found = store.project_by_name("gpu")
        assert found is not None and (found.budget_core_hours, found.budget_gpu_hours) == (20, 6)
        _cli("project", "budget", "gpu", "--gpu-hours", "7", "--db", db, env=env)
        found = store.project_by_name("gpu")
        assert found is not None and (found.budget_core_hours, found.budget_gpu_hours) == (20, 7)
        _cli("project", "set", "gpu", "--no-gpu-budget", "--db", db, env=env)
        found = store.project_by_name("gpu")
        assert found is not None and (found.budget_core_hours, found.budget_gpu_hours) == \
            (20, None)
    finally:
        store.dispose()

    bad = CliRunner().invoke(wanhe_app, ["project", "create", "neg", "--budget-gpu-hours", "-1",
                                         "--db", db], env=env)
    assert bad.exit_code == 2 and "GPU-hours" in bad.output and "Traceback" not in bad.output
    none = CliRunner().invoke(wanhe_app, ["project", "budget", "gpu", "--db", db], env=env)
    assert none.exit_code == 2 and "--gpu-hours" in none.output


@pytest.fixture
def via_farm(farm: Farm, monkeypatch: pytest.MonkeyPatch) -> Iterator[Farm]:
    """The CLI's server path, talking to the farm's TestClient instead of a socket."""

    class FarmClient(Client):
        def __init__(self, server: str, token: str | None, **_: Any) -> None:
            self.server, self.token = server, token or ""

        def close(self) -> None:
            pass

        def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
            response: httpx.Response = farm.client.request(
                method, path, headers=farm.auth(self.token), **kwargs)
            if response.status_code >= 400:
                raise ApiError(describe_error(response))
            return response

    # The CLI's `client()` imports its Client class when a command runs.
    monkeypatch.setattr(api_client, "Client", FarmClient)
    _wide(monkeypatch)
    yield farm


def test_cli_server_path_and_report(via_farm: Farm) -> None:
    farm = via_farm
    env = {"WANHE_SERVER": "http://farm.test", "WANHE_TOKEN": farm.admin}
    made = json.loads(_cli("project", "create", "gpu", "--budget-gpu-hours", "1",
                           "--server", "http://farm.test", "--json", env=env))
    assert made["token"].startswith("wh_")
    assert _listed(farm, "gpu")["budget_gpu_hours"] == 1
    _meter(farm.settings.db_url, "gpu", gpu_s=7200)

    rows = json.loads(_cli("project", "list", "--json", env=env))
    assert rows[0]["used_gpu_hours"] == pytest.approx(2.0) and rows[0]["over_budget"] is True
    _cli("project", "set", "gpu", "--budget-gpu-hours", "3", env=env)
    assert _listed(farm, "gpu")["budget_gpu_hours"] == 3
    _cli("project", "budget", "gpu", "8", "--gpu-hours", "4", env=env)
    listed = _listed(farm, "gpu")
    assert (listed["budget_core_hours"], listed["budget_gpu_hours"]) == (8, 4)
    _cli("project", "set", "gpu", "--no-gpu-budget", env=env)
    listed = _listed(farm, "gpu")
    assert (listed["budget_core_hours"], listed["budget_gpu_hours"]) == (8, None)

    table = _cli("report", env=env)
    assert "GPU-h" in table
    project_line = next(line for line in table.splitlines() if line.lstrip("│ ").startswith("gpu"))
    assert "2.000" in project_line
    data = json.loads(_cli("report", "--json", env=env))
    assert data["projects"][0]["gpu_hours"] == pytest.approx(2.0)

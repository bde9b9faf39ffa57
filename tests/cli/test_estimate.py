"""`wanhe estimate` as a user runs it: bad input is one clear line (exit 2) before anything
renders; a real estimate of a tiny scene prints core-hours inside their own range, the
wall time and the machines a deadline needs, and asking again reuses the cached probe.

The bad-input cases run the command in this process (typer's runner: no interpreter start
per case); the real estimate runs it as a user does, in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import build_scene
from wanhe.cli.main import app

WANHE = [sys.executable, "-m", "wanhe.cli"]


def wanhe(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANHE_HOME": str(home)}
    return subprocess.run([*WANHE, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def in_process(*args: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """(exit code, what it printed) of `wanhe ARGS` run in this process."""
    monkeypatch.setenv("WANHE_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "400")  # one error line stays one line
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def assert_one_line_error(result: tuple[int, str], *needles: str) -> None:
    code, text = result
    assert code == 2, text
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), text
    for needle in needles:
        assert needle in text, text


@pytest.fixture(scope="module")
def tiny(scene_dir: Path) -> Path:
    return build_scene(scene_dir / "tiny.blend", "tiny")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--price-core-hour", "-0.5"], ["--price-core-hour", "≥ 0"]),
        (["--price-gpu-hour", "nan"], ["--price-gpu-hour"]),
        (["--deadline", "2001-01-01T00:00"], ["in the past", "later --deadline"]),
        (["--deadline", "next friday"], ["not an ISO date", "2026-12-14T18:00"]),
        (["--machines", "0"], ["at least 1 machine"]),
        (["--samples", "8", "--quality", "final"], ["give one of them"]),
    ],
)
def test_bad_input_is_one_line_before_blender(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
    needles: list[str],
) -> None:
    result = in_process("estimate", str(tiny), *args, home=tmp_path, monkeypatch=monkeypatch)
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "probes").exists()  # nothing probed, nothing cached


def test_frames_outside_the_scene(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = in_process("estimate", str(tiny), "--frames", "1-40", home=tmp_path,
                        monkeypatch=monkeypatch)
    assert_one_line_error(result, "outside the scene's range 1-3")
    assert not (tmp_path / "probes").exists()


def test_missing_scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = in_process("estimate", str(tmp_path / "nope.blend"), home=tmp_path,
                        monkeypatch=monkeypatch)
    assert_one_line_error(result, "not found", "nope.blend")


@pytest.mark.slow  # real Blender renders (the probe), three runs of the command: ~15 s idle
def test_estimate_of_a_tiny_scene_then_from_the_cache(tiny: Path, tmp_path: Path) -> None:
    deadline = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="minutes")
    args = ["estimate", str(tiny), "--frames", "1-3", "--machines", "2", "--cores", "8",
            "--price-core-hour", "0.5", "--deadline", deadline, "--json"]
    first = wanhe(*args, home=tmp_path)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    low, high = data["core_hours_range"]
    assert 0 < low < data["core_hours"] < high
    assert data["cost"] == pytest.approx(0.5 * data["core_hours"])
    assert data["gpu_hours"] == 0.0
    assert data["frames"] == 3 and data["size"] == [96, 64]
    assert data["wall_s"] > 0
    assert data["deadline"]["possible"] and data["deadline"]["machines"] == 1
    assert data["probe"]["frames"] == [1, 2, 3] and not data["probe"]["cached"]
    assert "render CPU" in data["model"]
    # other prices and farm: the probe is reused, nothing renders again
    again = wanhe("estimate", str(tiny), "--frames", "1-3", "--price-core-hour", "1", "--json",
                  home=tmp_path)
    assert again.returncode == 0, again.stderr
    cached = json.loads(again.stdout)
    assert cached["probe"]["cached"]
    assert cached["core_hours"] == pytest.approx(data["core_hours"], rel=0.2)  # other workers
    table = wanhe("estimate", str(tiny), "--frames", "1-3", home=tmp_path)
    assert "core-hours" in table.stdout and "wall time" in table.stdout


@pytest.mark.slow  # starts a farm and probes a real scene (~40 s idle)
def test_submit_with_estimate_warns_or_refuses_over_budget(tiny: Path, tmp_path: Path) -> None:
    from tests.api._service import ServiceProc, make_project

    db = f"sqlite:///{tmp_path / 'farm.db'}"
    token = make_project(db, "poor", budget_core_hours=1e-7)  # less than any render costs
    svc = ServiceProc(tmp_path / "farm", db, port=0, workers=1)
    svc.start()
    try:
        env = {"WANHE_SERVER": svc.url, "WANHE_TOKEN": token,
               "WANHE_HOME": str(tmp_path / "client"), "COLUMNS": "400"}
        args = ["submit", str(tiny), "--frames", "1-2", "--estimate"]
        refused = CliRunner().invoke(app, [*args, "--strict-budget"], env=env)
        assert refused.exit_code == 2, refused.output
        assert "is more than the project has left" in refused.output
        assert "--strict-budget" in refused.output and "Traceback" not in refused.output
        with svc.client(token) as c:
            assert c.get("/api/jobs").json() == []  # nothing was queued
        warned = CliRunner().invoke(app, [*args, "--json"], env=env)
        assert warned.exit_code == 0, warned.output
        assert "warning:" in warned.output and "core-hours" in warned.output
        with svc.client(token) as c:
            assert len(c.get("/api/jobs").json()) == 1
            # the job keeps the estimate submit printed (wanhe job shows it against the actual)
            kept = c.get(f"/api/jobs/{json.loads(warned.stdout)['id']}").json()["estimate"]
            assert kept["made_by"] == "wanhe submit --estimate" and kept["core_hours"] > 0
            assert len(kept["core_hours_range"]) == 2
    finally:
        svc.kill()

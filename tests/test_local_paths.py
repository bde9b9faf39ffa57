"""The farm's rule (a job names only its own files) is the farm's: on a user's own machine
`wanhe story render`, `wanhe gen image` and `wanhe run` still take the user's own absolute
paths, outside any bundle or storyboard folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.openjd._util import step, template, write_yaml
from tests.story.conftest import board, write  # noqa: F401  (the fixture)
from wanhe.cli import app

pytestmark = pytest.mark.timeout(300)


def _still(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), (10, 160, 60)).save(path)
    return path


def test_story_render_takes_an_absolute_image_path(tmp_path: Path, board: dict[str, Any],  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANHE_HOME", str(tmp_path / "home"))
    elsewhere = _still(tmp_path / "elsewhere" / "frame_0001.png")
    board["scenes"][0]["shots"][0]["image"]["path"] = str(elsewhere)
    story = write(tmp_path / "film", board)
    result = CliRunner().invoke(app, [
        "story", "render", str(story), "--output", str(tmp_path / "out"), "--quiet",
        "--workers", "1", "--db", f"sqlite:///{tmp_path / 'w.db'}"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["state"] == "done"


def test_gen_image_takes_an_absolute_init_image(tmp_path: Path, tiny_sd: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANHE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    runner = CliRunner()
    added = runner.invoke(app, ["models", "add", "tiny-sd", str(tiny_sd), "--db", db])
    assert added.exit_code == 0, added.output
    still = _still(tmp_path / "elsewhere" / "still.png")
    result = runner.invoke(app, ["gen", "image", "-m", "tiny-sd", "-p", "a fox", "-n", "1",
                                 "--steps", "2", "--size", "32x32", "--image", str(still),
                                 "--strength", "0.5", "-o", "img", "--json", "--db", db])
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert made["shots"][0]["candidates"][0]["state"] == "done"


def test_run_takes_an_absolute_path_parameter(tmp_path: Path) -> None:
    source = tmp_path / "elsewhere" / "in.txt"
    source.parent.mkdir()
    source.write_text("mine\n")
    out = tmp_path / "out"
    path = write_yaml(tmp_path / "bundle" / "job.yaml", template(
        params=[{"name": "Src", "type": "PATH", "objectType": "FILE", "dataFlow": "IN"},
                {"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT"}],
        steps=[step("Copy", "mkdir -p {{Param.Out}} && cp {{Param.Src}} {{Param.Out}}/")]))
    result = CliRunner().invoke(app, [
        "run", "--template", str(path), "-p", f"Src={source}", "-p", f"Out={out}", "-q",
        "--db", f"sqlite:///{tmp_path / 'w.db'}"], env={"WANHE_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    assert (out / "in.txt").read_text() == "mine\n"

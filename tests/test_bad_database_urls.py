"""`--db notaurl` is one line naming --db and exit 2 from every local command (as `wanhe
render` says it), and a database URL's password never reaches the screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.openjd._util import step, template, write_yaml
from tests.story.conftest import board, write  # noqa: F401  (the fixture)
from wanhe.cli import app

pytestmark = pytest.mark.timeout(120)


def _one_line(args: list[str], tmp_path: Path, says: str) -> str:
    result = CliRunner().invoke(app, args, env={"WANHE_HOME": str(tmp_path / "home")})
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert says in text and "Traceback" not in text, text
    return text


def test_local_commands_refuse_a_bad_database_url(tmp_path: Path,
                                                  board: dict[str, Any]) -> None:  # noqa: F811
    job = write_yaml(tmp_path / "job.yaml", template(steps=[step("S", "true")]))
    story = write(tmp_path / "film", board)
    for args in (["run", "--template", str(job)],
                 ["story", "render", str(story), "-o", str(tmp_path / "out")],
                 ["gen", "image", "-m", "sd", "-p", "fox"]):
        _one_line([*args, "--db", "notaurl"], tmp_path, "--db 'notaurl' is not a database URL")


def test_no_password_on_screen(tmp_path: Path) -> None:
    for command in (["models", "list"], ["project", "list"]):
        text = _one_line([*command, "--db", "postgresql://u:hunter2@127.0.0.1:1/x"], tmp_path,
                         "cannot open the database")
        assert "hunter2" not in text and "u:***@" in text


def test_run_refuses_cyclic_and_binary_templates_in_one_line(tmp_path: Path) -> None:
    cycle = template(steps=[step("A", "true", dependencies=[{"dependsOn": "B"}]),
                            step("B", "true", dependencies=[{"dependsOn": "A"}])])
    path = write_yaml(tmp_path / "cycle.yaml", cycle)
    db = ["--db", f"sqlite:///{tmp_path / 'w.db'}"]
    _one_line(["run", "--template", str(path), *db], tmp_path,
              "steps depend on each other in a cycle: 'A' -> 'B' -> 'A'")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    _one_line(["run", "--template", str(binary), *db], tmp_path, "is not text (not UTF-8)")

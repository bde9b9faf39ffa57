"""`wanhe submit`'s and `wanhe gen`'s Kitsu flags refused in one line before anything is packed
or sent, and `wanhe kitsu link` without credentials (no terminal to ask at)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from wanhe.cli import app

NOWHERE = {"WANHE_SERVER": "http://127.0.0.1:9", "WANHE_TOKEN": "t"}  # never reached


@pytest.mark.parametrize(("name", "flags", "says"), [
    ("scene.blend", ["--sequence", "SQ01", "--task", "Lighting"], "takes --shot"),
    ("story.yaml", ["--shot", "SQ01/SH010", "--task", "Animatic"], "takes --sequence"),
    ("scene.blend", ["--shot", "SQ01/SH010"], "--task goes with --shot"),
    ("scene.blend", ["--task", "Lighting"], "--task goes with --shot"),
    ("story.yaml", ["--shot", "SQ01/SH010", "--sequence", "SQ01", "--task", "A"], "not both"),
    ("scene.blend", ["--shot", "SQ01/SH010", "--task", "A", "--reel-task", "E"],
     "--reel-task and --create-shots go with --sequence"),
    ("scene.blend", ["--shot", "SQ01/SH010", "--task", "A", "--create-shots"],
     "--reel-task and --create-shots go with --sequence"),
    ("scene.blend", ["--shot", "SQ01/SH010", "--task", "A", "--kind", "noop", "--options",
                     "o.yaml"], "a .blend render or an OpenJD job"),
])
def test_kitsu_flags_that_do_not_fit_are_one_line(tmp_path: Path, name: str, flags: list[str],
                                                  says: str) -> None:
    scene = tmp_path / name
    scene.write_bytes(b"x")
    result = CliRunner().invoke(app, ["submit", str(scene), *flags], env=NOWHERE)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and says in result.output


@pytest.mark.parametrize(("args", "says"), [
    (["image", "-m", "sd", "-p", "a fox", "--shot", "SQ01/SH010"], "add --server URL"),
    (["image", "-m", "sd", "-p", "a fox", "--task", "Storyboard", "--server", "http://x"],
     "--task goes with --shot"),
    (["run", "SPEC", "--server", "http://x"], "kitsu: in a spec is {shot: SEQUENCE/SHOT"),
    (["run", "GOOD"], "add --server URL"),  # the spec's kitsu: names the shot
])
def test_gen_kitsu_flags_that_do_not_fit_are_one_line(tmp_path: Path, args: list[str],
                                                      says: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("kitsu: SQ01/SH010\nshots: [{model: sd, prompt: a fox}]\n")
    good = tmp_path / "good.yaml"
    good.write_text("kitsu: {shot: SQ01/SH010}\nshots: [{model: sd, prompt: a fox}]\n")
    args = [{"SPEC": str(spec), "GOOD": str(good)}.get(a, a) for a in args]
    result = CliRunner().invoke(app, ["gen", *args], env=NOWHERE)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and says in result.output


def test_link_without_credentials_names_the_variables() -> None:
    result = CliRunner().invoke(app, ["kitsu", "link", "lionboy", "--url", "http://k/api",
                                      "--production", "Lion Boy"],
                                env={**NOWHERE, "WANHE_KITSU_EMAIL": "", "WANHE_KITSU_TOKEN": "",
                                     "WANHE_KITSU_PASSWORD": ""})
    assert result.exit_code == 2 and "WANHE_KITSU_PASSWORD" in result.output

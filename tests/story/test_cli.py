"""`wanhe story` on the command line: bad input is one line and exit 2, before any task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.conftest import hide_commands
from tests.story.conftest import write
from wanhe.cli import app


def test_bad_storyboards_fail_with_one_line(tmp_path: Path, board: dict[str, Any]) -> None:
    runner = CliRunner()
    board["scenes"][0]["shots"][0]["lines"][0]["translations"] = {"fr": "Salut."}
    story = write(tmp_path, board)
    db = f"sqlite:///{tmp_path / 'w.db'}"
    result = runner.invoke(app, ["story", "render", str(story), "--output",
                                 str(tmp_path / "out"), "--db", db])
    assert result.exit_code == 2
    assert "language 'fr' is not declared" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "w.db").exists()  # refused before any job existed
    assert not (tmp_path / "out" / "reel.mp4").exists()
    (tmp_path / "broken.yaml").write_text("film: {title: T\n")
    result = runner.invoke(app, ["story", "check", str(tmp_path / "broken.yaml")])
    assert result.exit_code == 2 and "broken.yaml:2:1: malformed YAML" in result.output


def test_check_and_schema(tmp_path: Path, board: dict[str, Any]) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["story", "check", str(write(tmp_path, board))])
    assert result.exit_code == 0, result.output
    assert "1 shot(s), 1 line(s), languages en, cmn" in result.output
    schema = runner.invoke(app, ["story", "schema"])
    assert schema.exit_code == 0
    assert "Storyboard" in json.loads(schema.output)["title"]


def test_render_quiet_with_a_report(tmp_path: Path, board: dict[str, Any],
                                    monkeypatch: Any) -> None:
    monkeypatch.setenv("WANHE_HOME", str(tmp_path / "home"))
    story = write(tmp_path / "film", board)
    result = CliRunner().invoke(app, [
        "story", "render", str(story), "--output", str(tmp_path / "out"), "--quiet",
        "--workers", "1", "--report-json", str(tmp_path / "report.json"), "--burn-in"])
    assert result.exit_code == 0, result.output
    editorial = tmp_path / "out" / "editorial"  # the package, loudness-normalised
    assert {"reel.otio", "reel.xml", "reel.picture.edl", "reel.en.edl", "reel.cmn.edl",
            "media"} <= {p.name for p in editorial.iterdir()}
    assert (editorial / "media" / "s1.1_joe_cmn_take1.wav").is_file()
    reel_report = json.loads((tmp_path / "out" / "report.json").read_text())
    for lang in ("en", "cmn"):
        assert abs(reel_report["loudness"][lang]["lufs"] + 23) <= 1.0, reel_report["loudness"]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["state"] == "done" and summary["reel"].endswith("reel.mp4")
    assert summary["extended"] == []  # the image shot lasts what its line needs
    report = json.loads((tmp_path / "report.json").read_text())
    assert {a["kind"] for a in report["attempts"]} == {"voice", "dub", "clip", "track", "reel"}
    assert report["core_hours_by_kind"]["voice"] > 0
    assert report["lines"]["cmn"][0]["text"] == "你好。"


def test_a_piper_only_reel_renders_without_espeak_ng_or_rubberband(
    tmp_path: Path, board: dict[str, Any], monkeypatch: Any
) -> None:
    """A machine with neither Debian package: a storyboard whose every line Piper speaks,
    with no pitch shift and no dub, still checks and renders."""
    hide_commands(monkeypatch, tmp_path / "sys", "espeak-ng", "rubberband")
    monkeypatch.setenv("WANHE_HOME", str(tmp_path / "home"))
    board["film"]["languages"] = ["en"]
    board["characters"] = [{"name": "Joe", "voice": {"engine": "piper", "model": "bundled"}}]
    board["scenes"][0]["shots"][0]["lines"] = [{"character": "Joe", "text": "Hi there."}]
    story = write(tmp_path / "film", board)
    result = CliRunner().invoke(app, [
        "story", "render", str(story), "--output", str(tmp_path / "out"), "--quiet",
        "--workers", "1", "--report-json", str(tmp_path / "report.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert {a["kind"] for a in report["attempts"]} >= {"voice", "reel"}
    assert report["lines"]["en"][0]["text"] == "Hi there."
    assert (tmp_path / "out" / "reel.mp4").stat().st_size > 0


def test_check_warns_for_a_line_not_spoken_in_its_language(tmp_path: Path,
                                                           board: dict[str, Any]) -> None:
    board["scenes"][0]["shots"][0]["lines"][0]["translations"]["cmn"] = "Where is the boat?"
    result = CliRunner().invoke(app, ["story", "check", str(write(tmp_path, board))])
    assert result.exit_code == 0, result.output  # a warning, not a refusal
    assert "warning: line s1.1 (cmn): espeak-ng" in result.output

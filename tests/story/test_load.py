"""Bad storyboards: each mistake is one message that says where (file:line:column) and what."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from wanhe.story.load import StoryError, parse_storyboard
from wanhe.story.schema import Storyboard


def _parse(data: dict[str, Any]) -> Storyboard:
    return parse_storyboard(yaml.safe_dump(data, allow_unicode=True), "story.yaml")


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(StoryError) as info:
        _parse(data)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_valid_storyboard_loads(board: dict[str, Any]) -> None:
    story = _parse(board)
    assert story.film.original == "en"
    assert [s.id for s in story.shots] == ["s1"]
    assert story.voice_for("Joe", "cmn").engine == "espeak"
    assert story.voice_for("Joe", "cmn").voice == "cmn"


def test_malformed_yaml_names_line_and_column() -> None:
    text = "film:\n  title: T\n  languages: [en, cmn\ncharacters: []\n"
    with pytest.raises(StoryError, match=r"story\.yaml:\d+:\d+: malformed YAML"):
        parse_storyboard(text, "story.yaml")


def test_schema_errors_name_the_line_of_the_value(board: dict[str, Any]) -> None:
    board["film"]["fps"] = "fast"
    text = yaml.safe_dump(board)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "fps" in row)
    with pytest.raises(StoryError, match=rf"story\.yaml:{line}:\d+: film\.fps"):
        parse_storyboard(text, "story.yaml")


def test_unknown_character(board: dict[str, Any]) -> None:
    board["scenes"][0]["shots"][0]["lines"][0]["character"] = "Zed"
    message = _error(board)
    assert "unknown character 'Zed'" in message
    text = yaml.safe_dump(board, allow_unicode=True)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "character: Zed" in row)
    assert message.startswith(f"story.yaml:{line}:")


def test_undeclared_language(board: dict[str, Any]) -> None:
    board["scenes"][0]["shots"][0]["lines"][0]["translations"]["fr"] = "Salut."
    assert "language 'fr' is not declared in film.languages" in _error(board)


def test_missing_translation(board: dict[str, Any]) -> None:
    board["scenes"][0]["shots"][0]["lines"][0]["translations"] = {}
    assert "no text in cmn" in _error(board)


def test_no_visual_source_and_two_sources(board: dict[str, Any]) -> None:
    shot = board["scenes"][0]["shots"][0]
    del shot["image"]
    assert "has none as visual source" in _error(board)
    shot["image"] = {"path": "board.png"}
    shot["prompt"] = {"prompt": "a lantern", "model": "sd"}
    assert "image and prompt" in _error(board)


def test_zero_durations(board: dict[str, Any]) -> None:
    board["scenes"][0]["shots"][0]["duration"] = 0
    assert "duration" in _error(board)
    board["scenes"][0]["shots"][0]["duration"] = 1
    board["scenes"][0]["shots"][0]["image"] = None
    board["scenes"][0]["shots"][0]["blender"] = {"file": "x.blend", "frames": "10-5"}
    assert "ends before it starts" in _error(board)


def test_schema_is_published() -> None:
    schema = Storyboard.model_json_schema()
    assert {"film", "characters", "scenes"} <= set(schema["properties"])


def test_lipsync_languages_must_be_dubbed_languages_of_a_blender_shot(
    board: dict[str, Any]
) -> None:
    shot = board["scenes"][0]["shots"][0]
    shot["lipsync_languages"] = ["cmn"]
    assert "lipsync_languages needs a blender shot" in _error(board)
    shot["lipsync_languages"] = ["en"]
    assert "'en', which is not a dubbed language of the film (cmn)" in _error(board)

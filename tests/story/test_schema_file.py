"""The storyboard's JSON Schema, published beside the example, is the model's."""

from __future__ import annotations

import json
from pathlib import Path

from wanhe.story.load import load_storyboard
from wanhe.story.schema import Storyboard

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "story"


def test_the_published_schema_is_current() -> None:
    published = json.loads((EXAMPLES / "storyboard.schema.json").read_text())
    assert published == Storyboard.model_json_schema(), (
        "regenerate: wanhe story schema > examples/story/storyboard.schema.json")


def test_the_example_storyboard_is_valid() -> None:
    board = load_storyboard(EXAMPLES / "story.yaml")
    assert len(board.shots) == 4 and board.film.languages == ["en", "cmn", "es"]
    assert sum(1 for c in board.characters if c.rig) == 1

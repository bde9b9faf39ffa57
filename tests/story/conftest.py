"""Shared storyboard fixtures: a small valid storyboard as a dict, written where asked."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

BASE: dict[str, Any] = {
    "film": {"title": "T", "fps": 12, "width": 64, "height": 48, "languages": ["en", "cmn"]},
    "characters": [
        {"name": "Joe", "voice": {"engine": "espeak", "voice": "en"}},
        {"name": "Mei", "voice": {"engine": "espeak", "voice": "en", "pitch": 3}},
    ],
    "scenes": [{"name": "a", "shots": [
        {"id": "s1", "image": {"path": "board.png"},
         "lines": [{"character": "Joe", "text": "Hi.", "translations": {"cmn": "你好。"}}]},
    ]}],
}


@pytest.fixture
def board() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def write(folder: Path, data: dict[str, Any], name: str = "story.yaml") -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "board.png").exists():
        Image.new("RGB", (80, 60), (90, 120, 200)).save(folder / "board.png")
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


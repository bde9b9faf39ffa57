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


def hide_commands(monkeypatch: pytest.MonkeyPatch, folder: Path, *names: str) -> None:
    """PATH as it is, less `names`: one folder of links to every other command on it — how a
    machine without espeak-ng or rubberband looks to wanhe (and to the children it runs)."""
    import os
    import shutil

    bin_dir = folder / "path-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for entry in os.environ.get("PATH", os.defpath).split(os.pathsep):
        if not entry or not Path(entry).is_dir():
            continue
        for tool in Path(entry).iterdir():
            link = bin_dir / tool.name
            if tool.name in names or link.exists() or link.is_symlink():
                continue
            if tool.is_file() and os.access(tool, os.X_OK):
                link.symlink_to(tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    for name in names:
        assert shutil.which(name) is None, name

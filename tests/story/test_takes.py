"""Takes that stay put: two renders of one storyboard on two machines' caches (here two homes:
a cold cache each, as locally and on the farm) make the same takes, byte for byte, and so the
same cut — every shot the same frames, every line the same place. The takes are among the
job's outputs, listed in the report with their recipes; each is its speech (silence cut)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.story.conftest import write
from wanhe.config import Settings


def _render(story: Path, root: Path) -> dict[str, Any]:
    from wanhe.runs.story import render_story

    outcome = render_story(story, root / "out", settings=Settings(home=root / "home"),
                           workers=2)
    assert outcome.job.state.value == "done", outcome.job.message
    report: dict[str, Any] = json.loads((root / "out" / "report.json").read_text())
    return report


@pytest.mark.slow  # two whole renders (voices, dubs, clip, reel): ~25 s on a busy machine
def test_two_cold_caches_give_the_same_cut(tmp_path: Path, board: dict[str, Any]) -> None:
    board["characters"][0]["voice"] = {"engine": "piper", "model": "bundled"}
    board["scenes"][0]["shots"][0]["lines"].append(
        {"character": "Mei", "text": "It is.", "translations": {"cmn": "好的，我们走吧。"}})
    story = write(tmp_path, board)
    here, farm = _render(story, tmp_path / "here"), _render(story, tmp_path / "farm")
    for key in ("duration_s", "shots", "lines", "overruns"):
        assert here[key] == farm[key], key
    assert [t["file"] for t in here["takes"]] == [
        "takes/s1.1_joe_en_take1.wav", "takes/s1.1_joe_cmn_take1.wav",
        "takes/s1.2_mei_en_take1.wav", "takes/s1.2_mei_cmn_take1.wav"]
    for mine, theirs in zip(here["takes"], farm["takes"], strict=True):
        assert mine == theirs
        a = (tmp_path / "here" / "out" / mine["file"]).read_bytes()
        assert a == (tmp_path / "farm" / "out" / theirs["file"]).read_bytes(), mine["file"]
    joe = here["takes"][0]
    assert joe["recipe"]["engine"] == "piper" and joe["recipe"]["seed"] == 1
    assert here["takes"][1]["recipe"]["seed"] is None  # espeak-ng takes no seed
    # the cut: each original line is its take, placed after the padding
    first = here["lines"]["en"][0]
    assert first["end"] - first["start"] == pytest.approx(joe["seconds"], abs=1e-9)

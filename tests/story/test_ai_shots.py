"""AI-prompt shots: the generation job type's candidates and scoring run inside the story's
graph; the storyboard's pick, or else the best-scored candidate, becomes the shot's still.
A tiny Stable Diffusion pipeline with random weights (wanhe.ai.tiny, built from configs as
diffusers tests itself) stands in for a studio's model: nothing is downloaded."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.story.conftest import write
from wanhe.config import Settings
from wanhe.story.checks import check_storyboard
from wanhe.story.load import StoryError, load_storyboard
from wanhe.story.plan import choose_candidate

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_the_pick_wins_else_the_best_score() -> None:
    entries = [{"index": i, "seed": 10 + i, "output": f"/c{i}.png"} for i in range(3)]
    ranked = [{"index": 2}, {"index": 0}, {"index": 1}]
    assert choose_candidate(entries, ranked, None) == (entries[2], "score")
    assert choose_candidate(entries, ranked, 1) == (entries[1], "pick")
    assert choose_candidate(entries, [], None) == (entries[0], "first")


def _ai_board(board: dict[str, Any], **prompt: Any) -> dict[str, Any]:
    shot = board["scenes"][0]["shots"][0]
    shot.pop("image")
    shot["prompt"] = {"prompt": "a paper lantern", "model": "tiny", "candidates": 2,
                      "steps": 2, **prompt}
    return board


def test_an_unknown_model_or_a_bad_pick_is_refused(tmp_path: Path,
                                                   board: dict[str, Any]) -> None:
    path = write(tmp_path, _ai_board(board))
    with pytest.raises(StoryError, match="unknown model 'tiny' — register it"):
        check_storyboard(load_storyboard(path), tmp_path, models=lambda name: None)
    board["scenes"][0]["shots"][0]["prompt"]["pick"] = 5
    with pytest.raises(StoryError, match="pick 5 is not among the 2 candidates"):
        load_storyboard(write(tmp_path, board))


@pytest.mark.slow
def test_an_ai_shot_in_a_reel(tmp_path: Path, board: dict[str, Any]) -> None:
    pytest.importorskip("diffusers")
    from wanhe.ai import catalog, tiny
    from wanhe.ai.models import inspect_model
    from wanhe.runs.story import render_story
    from wanhe.store.store import Store

    settings = Settings(home=tmp_path / "home")
    model = tiny.build("sd", tmp_path / "models" / "sd")
    store = Store(settings.db_url)
    try:
        catalog.add_model(store, "tiny", inspect_model(model))
    finally:
        store.dispose()
    story = write(tmp_path / "film", _ai_board(board, camera={"end_zoom": 1.2}))
    outcome = render_story(story, tmp_path / "out", settings=settings, workers=1)
    assert outcome.job.state.value == "done", outcome.job.message
    kinds = sorted({t.kind for t in outcome.tasks})
    assert {"gen", "gen_score", "clip", "reel"} <= set(kinds)
    clip = next(t for t in outcome.tasks if t.kind == "clip")
    scores = json.loads(Path(clip.payload["ai"]["scores"]).read_text())["scores"]
    assert clip.output["picked_by"] == "score"
    assert clip.output["candidate"] == scores[0]["index"]
    assert Path(clip.output["candidate_path"]).is_file()
    assert (tmp_path / "out" / "reel.mp4").stat().st_size > 0

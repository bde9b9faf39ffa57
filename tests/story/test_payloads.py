"""A storyboard's own tasks (lipsync, clip, track, reel) have typed payloads: what the plan
builds reads back as itself, the farm's `job_root` is stored only once set, rows without the
fields added later still read, and a payload that does not fit is one line naming its field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.jobtypes.test_generate import MODELS
from tests.story.test_plan import FACTS, _board, _layout
from wanhe.jobtypes.base import JobFolder, confine_tasks
from wanhe.model import TaskSpec
from wanhe.payloads import PayloadError, TaskPayload
from wanhe.story.payloads import ClipTask, LipsyncTask, ReelTask, TrackTask
from wanhe.story.plan import compile_story
from wanhe.story.schema import Storyboard

MODELS_BY_KIND: dict[str, type[TaskPayload]] = {
    "lipsync": LipsyncTask, "clip": ClipTask, "track": TrackTask, "reel": ReelTask}


def _tasks(tmp: Path, board: dict[str, Any]) -> list[TaskSpec]:
    """A rigged Blender shot lip-synced in both languages, and an AI shot beside it."""
    story = _board(board, lipsync_languages=["cmn"]).model_dump(mode="json")
    story["scenes"][0]["shots"].append({
        "id": "s3", "prompt": {"prompt": "a paper lantern", "model": "tiny", "candidates": 2,
                               "steps": 2, "pick": 1},
        "lines": [{"character": "Joe", "text": "Look.", "translations": {"cmn": "看。"}}]})
    facts = {**FACTS, "ai": {"tiny": {**MODELS["sd"], "name": "tiny"}}, "gpus": 1}
    return compile_story(Storyboard.model_validate(story), tmp, facts, _layout(tmp))


def test_every_story_payload_reads_back_as_what_the_plan_built(
        tmp_path: Path, board: dict[str, Any]) -> None:
    tasks = _tasks(tmp_path, board)
    seen = set()
    for task in tasks:
        model = MODELS_BY_KIND.get(task.kind)
        if model is None:
            continue
        seen.add(task.kind)
        typed = model.read(task.payload)
        assert typed.stored() == task.payload, task.key
        assert "job_root" not in task.payload
    assert seen == set(MODELS_BY_KIND)
    by_key = {t.key: t for t in tasks}
    ai = ClipTask.read(by_key["clip/s3"].payload).ai
    assert ai is not None and ai.pick == 1 and len(ai.candidates) == 2
    assert ai.scores.endswith("scores.json")
    dubbed = LipsyncTask.read(by_key["lipsync/s2.cmn"].payload)
    assert dubbed.lang == "cmn" and dubbed.audio_wavs != dubbed.line_wavs
    assert dubbed.rigs["Mei"]["object"] == "Mouth" and dubbed.shot.id == "s2"
    reel = ReelTask.read(by_key["reel"].payload)
    assert set(reel.lang_clips) == {"cmn"} and set(reel.tracks) == {"en", "cmn"}
    assert reel.board.film.languages == ["en", "cmn"]
    assert len(ClipTask.read(by_key["clip/s2.cmn"].payload).exrs) == 6


def test_the_farm_still_names_the_jobs_folder(tmp_path: Path, board: dict[str, Any]) -> None:
    tasks = _tasks(tmp_path, board)
    confine_tasks(tasks, JobFolder(Path("/jobs/9/input"), Path("/jobs/9/output"),
                                   Path("/jobs/9/work")))
    for task in tasks:
        if task.kind in MODELS_BY_KIND:
            assert MODELS_BY_KIND[task.kind].read(task.payload).job_root == "/jobs/9"


def test_a_row_stored_before_the_later_fields_still_reads(
        tmp_path: Path, board: dict[str, Any]) -> None:
    by_key = {t.key: t.payload for t in _tasks(tmp_path, board)}
    old = {k: v for k, v in by_key["lipsync/s2"].items() if k not in ("audio_wavs",
                                                                       "phonemes")}
    lipsync = LipsyncTask.read({**old, "an_old_key": 1})
    assert lipsync.audio_wavs == [] and lipsync.phonemes == []
    old_reel = {k: v for k, v in by_key["reel"].items() if k not in ("lang_clips", "files")}
    assert ReelTask.read(old_reel).lang_clips == {}
    old_clip = {k: v for k, v in by_key["clip/s1"].items() if k != "exrs"}
    assert ClipTask.read(old_clip).exrs == []


def test_a_bad_payload_is_one_line_naming_its_field(tmp_path: Path,
                                                    board: dict[str, Any]) -> None:
    by_key = {t.key: t.payload for t in _tasks(tmp_path, board)}
    cases: list[tuple[type[TaskPayload], dict[str, Any], str]] = [
        (LipsyncTask, {**by_key["lipsync/s2"], "frames": 0}, "frames"),
        (LipsyncTask, {**by_key["lipsync/s2"], "rigs": ["Mouth"]}, "rigs"),
        (ClipTask, {k: v for k, v in by_key["clip/s1"].items() if k != "thumb"}, "thumb"),
        (ClipTask, {**by_key["clip/s1"], "shot": {**by_key["clip/s1"]["shot"], "id": ""}},
         "shot.id"),
        (ClipTask, {**by_key["clip/s3"], "ai": {**by_key["clip/s3"]["ai"],
                                                "candidates": []}}, "ai.candidates"),
        (TrackTask, {**by_key["track/en"], "voices": {"s1.1": ["a.wav"]}}, "voices.s1.1"),
        (ReelTask, {**by_key["reel"], "tracks": {"en": None}}, "tracks.en"),
        (ReelTask, {k: v for k, v in by_key["reel"].items() if k != "board"}, "board"),
    ]
    for model, payload, field in cases:
        with pytest.raises(PayloadError) as caught:
            model.read(payload)
        message = str(caught.value)
        assert message.startswith(f"the {model.kind} task's payload is not valid: {field}:"), (
            message)
        assert "\n" not in message

"""A storyboard skeleton from a tracker's shots loads as a storyboard, durations from frames."""

from __future__ import annotations

from wanhe.story.schema import Storyboard
from wanhe.story.skeleton import NARRATOR, shot_id, skeleton


def test_the_skeleton_is_a_storyboard_with_the_trackers_shots() -> None:
    data = skeleton("Lion Boy", "SQ01", 25.0, [
        {"name": "SH010", "description": "Leo wakes up", "nb_frames": 50},
        {"name": "SH 020/b", "description": "", "nb_frames": 0},
    ])
    board = Storyboard.model_validate(data)
    assert board.film.title == "Lion Boy" and board.film.fps == 25.0
    first, second = board.shots
    assert (first.id, first.duration, first.lines[0].text) == ("SH010", 2.0, "Leo wakes up")
    assert first.image is not None and first.image.path == "boards/SH010.png"
    assert second.id == "SH_020_b" and second.duration is None  # no frame count yet
    assert second.lines[0].character == NARRATOR and "write SH_020_b" in second.lines[0].text


def test_shot_ids_keep_only_what_a_storyboard_allows() -> None:
    assert shot_id(" sh010 ") == "sh010"
    assert shot_id("???") == "shot"
    assert len(shot_id("x" * 100)) == 64

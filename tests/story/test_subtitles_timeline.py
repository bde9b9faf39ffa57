"""Subtitles from a reel's timing (pure): cues where the lines are, never overlapping."""

from __future__ import annotations

from typing import Any

import srt

from wanhe.story.schema import Storyboard
from wanhe.story.subtitles import to_srt, to_webvtt
from wanhe.story.timing import reel_timing


def _timing(board: dict[str, Any], cmn: float) -> Any:
    board["scenes"][0]["shots"][0]["lines"].append(
        {"character": "Mei", "text": "Yes.", "translations": {"cmn": "是。"}})
    story = Storyboard.model_validate(board)
    return story, reel_timing(story, {("s1.1", "en"): 1.0, ("s1.2", "en"): 0.5,
                                      ("s1.1", "cmn"): cmn, ("s1.2", "cmn"): 0.4})


def test_srt_and_webvtt_cues_are_the_lines(board: dict[str, Any]) -> None:
    _, timing = _timing(board, 1.0)
    cues = list(srt.parse(to_srt(timing.lines["en"])))
    assert [(c.start.total_seconds(), c.end.total_seconds()) for c in cues] == [
        (round(p.start, 3), round(p.end, 3)) for p in timing.lines["en"]]
    assert cues[0].content == "Joe: Hi."
    vtt = to_webvtt(timing.lines["cmn"])
    assert vtt.startswith("WEBVTT") and "00:00:00.300 --> 00:00:01.300" in vtt
    assert "Mei: 是。" in vtt


def test_an_overrunning_dub_never_overlaps_the_next_cue(board: dict[str, Any]) -> None:
    _, timing = _timing(board, 2.0)  # +100 %: flagged, runs into the next line
    cues = list(srt.parse(to_srt(timing.lines["cmn"])))
    assert cues[0].end <= cues[1].start
    assert timing.overruns()[0].line == "s1.1"


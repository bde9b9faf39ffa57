"""Timing: lines follow each other in their shot; dubs fit their slot within ±15 % or are
flagged with how far they overrun."""

from __future__ import annotations

from typing import Any

import pytest

from wanhe.story.schema import Storyboard
from wanhe.story.timing import fit_line, layout_shot, reel_timing


def test_a_translation_10_percent_longer_fits() -> None:
    fit = fit_line(raw=2.2, slot=2.0, max_stretch=0.15)
    assert not fit.flagged
    assert fit.duration == pytest.approx(2.0)
    assert fit.time_ratio == pytest.approx(2.0 / 2.2)


def test_a_translation_30_percent_longer_is_flagged_with_its_overrun() -> None:
    fit = fit_line(raw=2.6, slot=2.0, max_stretch=0.15)
    assert fit.flagged
    assert fit.time_ratio == pytest.approx(0.85)
    assert fit.overrun_s == pytest.approx(2.6 * 0.85 - 2.0)
    assert fit.overrun_pct == pytest.approx(100 * (2.6 * 0.85 - 2.0) / 2.0)


def test_a_shorter_translation_is_left_alone() -> None:
    fit = fit_line(raw=1.5, slot=2.0, max_stretch=0.15)
    assert (fit.time_ratio, fit.duration, fit.flagged) == (1.0, 1.5, False)


def _two_lines(board: dict[str, Any]) -> Storyboard:
    board["scenes"][0]["shots"][0]["lines"].append(
        {"character": "Mei", "text": "Yes.", "translations": {"cmn": "是。"}})
    board["scenes"][0]["shots"].append({"id": "s2", "duration": 1.0, "image": {"path": "b"}})
    return Storyboard.model_validate(board)


def test_lines_follow_each_other_and_shots_are_whole_frames(board: dict[str, Any]) -> None:
    story = _two_lines(board)
    film = story.film
    layout = layout_shot(story.shots[0], film, [1.0, 0.5])
    assert layout.lines[0] == pytest.approx((film.padding, film.padding + 1.0))
    assert layout.lines[1][0] == pytest.approx(layout.lines[0][1] + film.gap)
    assert layout.duration >= layout.lines[1][1] + film.padding - 1e-9
    assert (layout.duration * film.fps) == pytest.approx(round(layout.duration * film.fps))


def test_dubs_start_with_their_original_and_do_not_overlap(board: dict[str, Any]) -> None:
    story = _two_lines(board)
    durations = {("s1.1", "en"): 1.0, ("s1.2", "en"): 0.5,
                 ("s1.1", "cmn"): 1.1, ("s1.2", "cmn"): 0.65}  # +10 %, +30 %
    timing = reel_timing(story, durations)
    en, cmn = timing.lines["en"], timing.lines["cmn"]
    assert cmn[0].start == en[0].start and cmn[0].end == pytest.approx(en[0].end)
    assert cmn[0].end <= cmn[1].start
    assert [p.line for p in timing.overruns()] == ["s1.2"]
    assert timing.duration == pytest.approx(sum(s.layout.duration for s in timing.shots))
    assert timing.shots[1].layout.duration == pytest.approx(1.0)


def test_a_shot_shorter_than_its_dialogue_is_extended(board: dict[str, Any]) -> None:
    board["scenes"][0]["shots"][0]["duration"] = 0.5
    story = Storyboard.model_validate(board)
    layout = layout_shot(story.shots[0], story.film, [2.0])
    assert layout.extended and layout.duration >= 2.0

"""Burn-ins on review reels (`wanhe story render --burn-in`, `film.burn_in`): the shot and its
timecode from 01:00:00:00 at the top, the line being spoken at the bottom, readable (white on
a dark band) over a light board; a reel without them is left untouched."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from tests.story.test_editorial import RAW, _board
from wanhe.engine.executors.story import _burn_in
from wanhe.imaging.burnin import burn, timecode
from wanhe.imaging.reel import write_clip, write_reel
from wanhe.story.timing import reel_timing


def test_timecode_counts_from_one_hour() -> None:
    assert timecode(0, 24) == "01:00:00:00"
    assert timecode(24 * 61 + 5, 24) == "01:01:01:05"
    assert timecode(13, 12) == "01:00:01:01"


def test_the_shot_timecode_and_spoken_line_for_each_frame() -> None:
    timing = reel_timing(_board(), RAW)
    texts = _burn_in(timing, "cmn")
    assert texts(0) == ("s1  01:00:00:00", "")  # the padding before the first line
    first = timing.lines["cmn"][0]
    mid = round((first.start + first.end) / 2 * timing.fps)
    assert texts(mid) == (f"s1  {timecode(mid, 12)}", "s1.1 Joe: 你好。")
    s2 = round(timing.shots[1].start * timing.fps)
    assert texts(s2)[0].startswith("s2  ")


def test_a_burned_in_reel_shows_text_on_a_band(tmp_path: Path) -> None:
    light = np.full((96, 128, 3), 230, np.uint8)
    drawn = burn(light, "s1  01:00:00:00", "s1.1 Joe: Hi.")
    assert drawn[2:12, 2:60].mean() < 200  # the band under the top text
    bottom = drawn[-16:, 2:40]
    assert bottom.min() < 120 and bottom.max() > 150  # light letters on a dark band
    clip = tmp_path / "s1.mp4"
    write_clip([light] * 3, 12, clip)
    plain, burned = tmp_path / "plain.mp4", tmp_path / "burned.mp4"
    silence = [("en", np.zeros(12_000, np.float32))]
    write_reel([clip], silence, 12, 3, (128, 96), plain)
    write_reel([clip], silence, 12, 3, (128, 96), burned,
               burn_in=lambda n: (f"s1  {timecode(n, 12)}", "Joe: Hi."))
    first = {}
    for path in (plain, burned):
        with av.open(str(path)) as container:
            first[path.name] = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert abs(float(first["plain.mp4"][2:12, 2:60].mean()) - 230) < 8
    assert float(first["burned.mp4"][2:12, 2:60].mean()) < 200

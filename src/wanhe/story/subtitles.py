"""Subtitles per language, timed to the synthesized lines: SRT (`srt`) and WebVTT (`webvtt-py`).

Pure: cues in, text out. Times are rounded to the millisecond, both formats' resolution.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import srt
import webvtt

from wanhe.story.timing import Placed


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _cues(lines: Sequence[Placed]) -> list[tuple[float, float, str]]:
    """(start, end, text) in order; a cue ends before the next one starts (players show one
    line at a time), a speaker's name leads the text."""
    ordered = sorted(lines, key=lambda p: p.start)
    cues = []
    for n, p in enumerate(ordered):
        end = p.end
        if n + 1 < len(ordered):
            end = min(end, ordered[n + 1].start)
        cues.append((p.start, max(end, p.start + 0.001), f"{p.character}: {p.text}"))
    return cues


def to_srt(lines: Sequence[Placed]) -> str:
    subs = [
        srt.Subtitle(n + 1, dt.timedelta(milliseconds=round(a * 1000)),
                     dt.timedelta(milliseconds=round(b * 1000)), text)
        for n, (a, b, text) in enumerate(_cues(lines))
    ]
    return str(srt.compose(subs, reindex=False))


def to_webvtt(lines: Sequence[Placed]) -> str:
    vtt = webvtt.WebVTT()
    for a, b, text in _cues(lines):
        vtt.captions.append(webvtt.Caption(_vtt_time(a), _vtt_time(b), text))
    return str(vtt.content)

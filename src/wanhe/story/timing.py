"""Where every shot and line falls in the reel, and how each dubbed line fits its slot (pure).

The original language sets the clock: a shot's lines follow each other (padding before the
first, a gap between two, padding after the last), a shot lasts as long as its dialogue needs
(or its frame range, or the duration it asks for — extended, and said so, when its dialogue
needs more). A translated line starts where the original does and must end by the original's
end: up to `max_stretch` faster without a change of pitch; beyond that it is flagged with how
far it overruns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from wanhe.story.schema import Film, Shot, Storyboard, line_id

STILL_WITHOUT_LINES_S = 2.0


@dataclass(frozen=True, slots=True)
class Fit:
    """How a dubbed line of `raw` seconds fits an original slot of `slot` seconds."""

    raw: float
    slot: float
    time_ratio: float  # output duration / input duration (rubberband --time); 1.0 = untouched
    duration: float  # after stretching
    overrun_s: float  # seconds past the slot's end after the most stretch allowed (0 = fits)

    @property
    def flagged(self) -> bool:
        return self.overrun_s > 1e-6

    @property
    def overrun_pct(self) -> float:
        return 100.0 * self.overrun_s / self.slot if self.slot > 0 else 0.0


def fit_line(raw: float, slot: float, max_stretch: float) -> Fit:
    """Speed a line up (by at most `max_stretch`, e.g. 0.15) to end within its slot."""
    if raw <= slot + 1e-9:
        return Fit(raw, slot, 1.0, raw, 0.0)
    floor = 1.0 - max_stretch
    ratio = max(slot / raw, floor)
    duration = raw * ratio
    return Fit(raw, slot, ratio, duration, max(0.0, duration - slot))


@dataclass(frozen=True, slots=True)
class ShotLayout:
    """One shot on its own clock (seconds from the shot's start)."""

    duration: float
    lines: list[tuple[float, float]]  # (start, end) of each original line
    needed: float  # what the dialogue needs
    extended: bool  # the shot asked for less than its dialogue needs

    def frames(self, fps: float) -> int:
        return max(1, round(self.duration * fps))


def layout_shot(shot: Shot, film: Film, durations: list[float]) -> ShotLayout:
    """Place a shot's original lines of the given durations; say how long the shot lasts."""
    if len(durations) != len(shot.lines):
        raise ValueError(f"shot {shot.id}: {len(shot.lines)} lines but {len(durations)} "
                         "durations")
    spans: list[tuple[float, float]] = []
    at = film.padding
    for n, seconds in enumerate(durations):
        if n:
            at += film.gap
        spans.append((at, at + seconds))
        at += seconds
    needed = at + film.padding if durations else 0.0
    base = shot.duration
    if base is None and shot.blender is not None:
        base = len(shot.blender.frame_list) / film.fps
    if base is None:
        base = needed if durations else STILL_WITHOUT_LINES_S
    extended = needed > base + 1e-9
    duration = max(base, needed)
    # whole frames: a shot starts and ends on a frame boundary
    frames = max(1, round(duration * film.fps))
    if frames / film.fps < needed - 1e-9:
        frames += 1
    return ShotLayout(frames / film.fps, spans, needed, extended)


@dataclass(slots=True)
class Placed:
    """A line in one language, in reel seconds."""

    line: str
    lang: str
    character: str
    text: str
    start: float
    end: float
    fit: Fit | None = None  # None for the original language

    def to_dict(self) -> dict[str, Any]:
        body = {k: v for k, v in asdict(self).items() if k != "fit"}
        if self.fit is not None:
            body.update(raw_s=self.fit.raw, slot_s=self.fit.slot, time_ratio=self.fit.time_ratio,
                        overrun_s=self.fit.overrun_s, overrun_pct=self.fit.overrun_pct,
                        flagged=self.fit.flagged)
        return body


@dataclass(slots=True)
class ShotTiming:
    id: str
    start: float
    layout: ShotLayout

    @property
    def end(self) -> float:
        return self.start + self.layout.duration


@dataclass(slots=True)
class ReelTiming:
    fps: float
    shots: list[ShotTiming]
    lines: dict[str, list[Placed]] = field(default_factory=dict)  # by language

    @property
    def duration(self) -> float:
        return self.shots[-1].end if self.shots else 0.0

    def overruns(self) -> list[Placed]:
        return [p for placed in self.lines.values() for p in placed if p.fit and p.fit.flagged]


def reel_timing(board: Storyboard, durations: Mapping[tuple[str, str], float]) -> ReelTiming:
    """Every shot and line of the reel from each line's synthesized duration in each language
    (`durations[(line id, lang)]`, raw, before any fitting)."""
    film = board.film
    shots: list[ShotTiming] = []
    placed: dict[str, list[Placed]] = {lang: [] for lang in film.languages}
    at = 0.0
    for shot in board.shots:
        ids = [line_id(shot, n) for n in range(len(shot.lines))]
        layout = layout_shot(shot, film, [durations[(i, film.original)] for i in ids])
        shots.append(ShotTiming(shot.id, at, layout))
        for line, lid, (start, end) in zip(shot.lines, ids, layout.lines, strict=True):
            placed[film.original].append(
                Placed(lid, film.original, line.character, line.text, at + start, at + end))
            for lang in film.languages[1:]:
                fit = fit_line(durations[(lid, lang)], end - start, film.max_stretch)
                placed[lang].append(Placed(lid, lang, line.character, line.translations[lang],
                                           at + start, at + start + fit.duration, fit))
        at += layout.duration
    return ReelTiming(film.fps, shots, placed)


def estimate_speech_s(text: str) -> float:
    """A rough length of `text` spoken (for limits checked before anything is synthesized):
    ~14 characters a second, CJK characters ~4 a second."""
    cjk = sum(1 for ch in text if "\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return (len(text) - cjk) / 14.0 + cjk / 4.0 + 0.3


def estimate_reel_s(board: Storyboard) -> float:
    """The reel's length before synthesis, from text lengths: to refuse absurd reels early."""
    total = 0.0
    for shot in board.shots:
        guesses = [estimate_speech_s(line.text) for line in shot.lines]
        total += layout_shot(shot, board.film, guesses).duration
    return total

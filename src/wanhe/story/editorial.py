"""The editorial package, `<output>/editorial/`: what an editor opens in Premiere, Resolve or
Avid without the farm.

- `media/`: every file the timeline uses, human-named and beside it: `s1.mp4` (a shot),
  `s1.1_joe_en_take1.wav` (line s1.1, Joe, English, take 1; 48 kHz, loudness-normalised);
- `reel.otio` (OpenTimelineIO), `reel.xml` (FCP 7 XML: Premiere, Resolve),
  `reel.picture.edl` and `reel.<lang>.edl` (CMX 3600, one per track: the format holds one);
  every path relative to the package, the timeline starting at `start_timecode` (01:00:00:00);
- markers: a line that overruns its slot (on its clip) and a shot extended to fit its lines.

Frame-based formats place clips on whole frames; a line's audio is kept sample-exact by its
file: it starts at the frame at or before the line's first sample, with the few milliseconds
between as silence, and ends on the frame at or after its last (so every export, not just the
OTIO, puts each sample where the reel has it). Lines that would share a frame go on a second
lane of their language (`Dialogue cmn 2`), as editors checkerboard dialogue.

Loudness: each language's dialogue track is measured (EBU R128 integrated loudness,
`pyloudnorm`) and one gain per language brings it to `target_lufs` (at most up to a −1 dBFS
sample peak); the same gain goes to its line files and the reel's tracks.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import opentimelineio as otio
from numpy.typing import NDArray

from wanhe.story.timing import ReelTiming

RATE = 48_000  # the package's audio sample rate
TARGET_LUFS = -23.0  # EBU R128 broadcast programme loudness
PEAK_DBFS = -1.0  # a gain never pushes a sample above this
SMPTE_RATES = (24, 25, 30, 48, 50, 60)  # timecode rates (OTIO's, whole numbers)
START_TIMECODE = "01:00:00:00"

Samples = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Loudness:
    lang: str
    measured_lufs: float | None  # None: silence (nothing to measure)
    gain_db: float
    lufs: float | None  # after the gain
    limited_by_peak: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_lufs(samples: Samples, rate: int) -> float | None:
    """EBU R128 integrated loudness (LUFS); None for silence or under 0.4 s."""
    import pyloudnorm

    if samples.size < int(0.4 * rate):
        return None
    value = float(pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64)))
    return value if math.isfinite(value) else None


def loudness_gain(lang: str, samples: Samples, rate: int,
                  target_lufs: float = TARGET_LUFS) -> Loudness:
    """The one gain that brings a language's track to `target_lufs`, capped by its peak."""
    measured = measure_lufs(samples, rate)
    if measured is None:
        return Loudness(lang, None, 0.0, None, False)
    gain = target_lufs - measured
    peak = float(np.abs(samples).max())
    ceiling = PEAK_DBFS - 20.0 * math.log10(peak) if peak > 0 else gain
    limited = gain > ceiling
    gain = min(gain, ceiling)
    return Loudness(lang, round(measured, 2), round(gain, 3), round(measured + gain, 2),
                    limited)


def apply_gain(samples: Samples, gain_db: float) -> Samples:
    out: Samples = (samples * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)
    return out


def edit_rate(fps: float) -> int:
    """The timeline's rate: the film's when timecode has it, else its smallest timecode
    multiple (a 12 fps animatic edits at 24, each frame twice)."""
    for rate in SMPTE_RATES:
        if abs(rate / fps - round(rate / fps)) < 1e-9:
            return rate
    raise ValueError(f"film.fps {fps:g} has no SMPTE timecode rate (24, 25, 30, 48, 50, 60 or "
                     "a whole fraction of one) — the editorial package needs one")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def line_media_name(line: str, character: str, lang: str, take: int = 1) -> str:
    return f"{line}_{_slug(character)}_{_slug(lang)}_take{take}.wav"


def edl_name(lang: str, lane: int = 1) -> str:
    """A language's EDL (one per lane: the format holds one track)."""
    return f"reel.{_slug(lang)}.edl" if lane == 1 else f"reel.{_slug(lang)}-{lane}.edl"


def _range(start: int, duration: int, rate: int) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(start, rate),
                                   otio.opentime.RationalTime(duration, rate))


def _clip(name: str, url: str, frames: int, rate: int) -> otio.schema.Clip:
    return otio.schema.Clip(name=name, media_reference=otio.schema.ExternalReference(
        target_url=url, available_range=_range(0, frames, rate)),
        source_range=_range(0, frames, rate))


def _marker(name: str, at: int, rate: int, color: str, comment: str) -> otio.schema.Marker:
    marker = otio.schema.Marker(name=name, marked_range=_range(at, 1, rate), color=color)
    marker.metadata["comment"] = comment
    return marker


def _lanes(items: list[tuple[int, int, otio.schema.Clip]], total: tuple[int, int], name: str,
           lang: str) -> list[otio.schema.Track]:
    """(start frame, frames, clip) into as few audio tracks as keep them from overlapping;
    `total`: (the reel's frames, the rate)."""
    lanes: list[tuple[otio.schema.Track, list[int]]] = []
    for start, length, clip in sorted(items, key=lambda item: item[0]):
        lane = next((lane for lane in lanes if lane[1][0] <= start), None)
        if lane is None:
            number = len(lanes) + 1
            track = otio.schema.Track(name=name if number == 1 else f"{name} {number}",
                                      kind=otio.schema.TrackKind.Audio)
            track.metadata["language"] = lang
            track.metadata["lane"] = number
            lane = (track, [0])
            lanes.append(lane)
        track, cursor = lane
        if start > cursor[0]:
            track.append(otio.schema.Gap(source_range=_range(0, start - cursor[0], total[1])))
        track.append(clip)
        cursor[0] = start + length
    for track, cursor in lanes:
        if total[0] > cursor[0]:
            track.append(otio.schema.Gap(source_range=_range(0, total[0] - cursor[0],
                                                             total[1])))
    return [track for track, _ in lanes]


def write_package(
    folder: Path, title: str, timing: ReelTiming, clips: Mapping[str, str],
    audio: Mapping[tuple[str, str], str], gains: Mapping[str, Loudness], *,
    takes: Mapping[tuple[str, str], int] | None = None, start_timecode: str = START_TIMECODE,
) -> dict[str, Any]:
    """Write the package into `folder` (replaced whole); what it holds, for the report.
    `clips[shot id]`: the shot's picture; `audio[(line, lang)]`: the line's (fitted) audio;
    `gains[lang]`: its loudness gain; `takes[(line, lang)]`: the take number (default 1)."""
    from wanhe.imaging.atomic import atomic_write
    from wanhe.voice.audio import read_wav, resample, write_wav

    rate = edit_rate(timing.fps)
    per_frame = RATE / rate  # samples per timeline frame
    scale = rate / timing.fps  # timeline frames per film frame (a whole number)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    media = staging / "media"
    media.mkdir(parents=True)
    timeline = otio.schema.Timeline(name=title, global_start_time=otio.opentime.from_timecode(
        start_timecode, rate))
    picture = otio.schema.Track(name="Picture", kind=otio.schema.TrackKind.Video)
    total = 0
    for shot in timing.shots:
        frames = round(shot.layout.frames(timing.fps) * scale)
        shutil.copyfile(clips[shot.id], media / f"{shot.id}.mp4")
        clip = _clip(shot.id, f"media/{shot.id}.mp4", frames, rate)
        if shot.layout.extended:
            clip.markers.append(_marker(
                f"{shot.id} extended", 0, rate, otio.schema.MarkerColor.YELLOW,
                f"lengthened to {shot.layout.duration:.2f} s to fit its dialogue"))
        picture.append(clip)
        total += frames
    timeline.tracks.append(picture)
    files = [f"media/{shot.id}.mp4" for shot in timing.shots]
    for lang, placed in timing.lines.items():
        gain = gains[lang].gain_db if lang in gains else 0.0
        items: list[tuple[int, int, otio.schema.Clip]] = []
        for p in placed:
            samples, source_rate = read_wav(Path(audio[(p.line, lang)]))
            samples = apply_gain(resample(samples, source_rate, RATE), gain)
            first = round(p.start * RATE)  # the line's first sample on the reel
            start = int(first // per_frame)  # the frame at or before it
            lead = first - round(start * per_frame)
            length = max(1, math.ceil((lead + samples.size) / per_frame))
            padded = np.zeros(round(length * per_frame), np.float32)
            padded[lead:lead + samples.size] = samples
            name = line_media_name(p.line, p.character, lang, (takes or {}).get((p.line, lang),
                                                                                1))
            write_wav(media / name, padded, RATE)
            files.append(f"media/{name}")
            clip = _clip(f"{p.line} {lang}", f"media/{name}", length, rate)
            clip.metadata["wanhe"] = {"line": p.line, "character": p.character, "text": p.text,
                                      "lead_samples": lead, "gain_db": gain}
            if p.fit is not None and p.fit.flagged:
                clip.markers.append(_marker(
                    f"overrun {p.line} {lang}", 0, rate, otio.schema.MarkerColor.RED,
                    f"{p.fit.overrun_s:.2f} s ({p.fit.overrun_pct:.0f} %) past its slot"))
            items.append((start, length, clip))
        for track in _lanes(items, (total, rate), f"Dialogue {lang}", lang):
            timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(staging / "reel.otio"), adapter_name="otio_json")
    otio.adapters.write_to_file(timeline, str(staging / "reel.xml"), adapter_name="fcp_xml")
    exports = ["reel.otio", "reel.xml"]
    for track in timeline.tracks:
        name = "reel.picture.edl" if track.kind == otio.schema.TrackKind.Video else edl_name(
            str(track.metadata["language"]), int(track.metadata["lane"]))
        (staging / name).write_text(_edl(title, track, rate, start_timecode), encoding="utf-8")
        exports.append(name)
    summary = {"folder": folder.name, "start_timecode": start_timecode, "edit_rate": rate,
               "exports": exports, "media": files, "audio_rate": RATE,
               "loudness": {lang: g.to_dict() for lang, g in gains.items()}}
    with atomic_write(staging / "package.json") as tmp:
        import json

        tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return summary


def write_timeline_beside(package: Path, target: Path) -> None:
    """The package's timeline again at `target` (the reel's own `reel.otio`), its media paths
    relative to `target`'s folder: the files the package holds, never a cache's or the farm's
    paths."""
    from wanhe.imaging.atomic import atomic_write

    timeline = otio.adapters.read_from_file(str(package / "reel.otio"))
    prefix = Path(os.path.relpath(package, target.parent))
    for clip in timeline.find_clips():
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ExternalReference):
            ref.target_url = (prefix / ref.target_url).as_posix()
    with atomic_write(target) as tmp:
        otio.adapters.write_to_file(timeline, str(tmp), adapter_name="otio_json")


_EVENT = re.compile(r"^(\d{3,}\s.*?)(\d\d:\d\d:\d\d:\d\d) (\d\d:\d\d:\d\d:\d\d)\s*$")


def _edl(title: str, track: otio.schema.Track, rate: int, start_timecode: str) -> str:
    """One track as a CMX 3600 EDL (the adapter writes one track, and one video track must
    be there), its record timecodes moved to the timeline's start (the adapter starts at 0)."""
    one = otio.schema.Timeline(name=title)
    one.tracks.append(track.clone())
    if track.kind != otio.schema.TrackKind.Video:
        one.tracks.append(otio.schema.Track(kind=otio.schema.TrackKind.Video))
    text = otio.adapters.write_to_string(one, adapter_name="cmx_3600", rate=rate)
    offset = otio.opentime.from_timecode(start_timecode, rate)

    def shift(match: re.Match[str]) -> str:
        record = [otio.opentime.to_timecode(otio.opentime.from_timecode(tc, rate) + offset,
                                            rate) for tc in (match[2], match[3])]
        return f"{match[1]}{record[0]} {record[1]}"

    return "\n".join(_EVENT.sub(shift, line) for line in text.splitlines()) + "\n"

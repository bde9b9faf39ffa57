"""The reel as an OpenTimelineIO timeline: a picture track of the shots' clips and one audio
track per language of the dialogue clips, each pointing at its source file (pure; the caller
writes it with `otio.adapters.write_to_file`)."""

from __future__ import annotations

from collections.abc import Mapping

import opentimelineio as otio

from wanhe.story.timing import ReelTiming


def _range(start: float, duration: float, fps: float) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(
        otio.opentime.RationalTime(round(start * fps), fps),
        otio.opentime.RationalTime(max(1, round(duration * fps)), fps),
    )


def build_timeline(
    title: str,
    timing: ReelTiming,
    clips: Mapping[str, str],
    audio: Mapping[tuple[str, str], str],
) -> otio.schema.Timeline:
    """`clips[shot id]`: the shot's picture file; `audio[(line id, lang)]`: the line's
    (fitted) audio file. Durations are whole frames at the film's rate, as editors count."""
    fps = timing.fps
    timeline = otio.schema.Timeline(name=title)
    picture = otio.schema.Track(name="Picture", kind=otio.schema.TrackKind.Video)
    for shot in timing.shots:
        frames = shot.layout.frames(fps)
        picture.append(otio.schema.Clip(
            name=shot.id,
            media_reference=otio.schema.ExternalReference(
                target_url=clips[shot.id],
                available_range=_range(0, frames / fps, fps)),
            source_range=_range(0, frames / fps, fps),
        ))
    timeline.tracks.append(picture)
    for lang, placed in timing.lines.items():
        track = otio.schema.Track(name=f"Dialogue {lang}", kind=otio.schema.TrackKind.Audio)
        track.metadata["language"] = lang
        cursor = 0  # frames
        for p in sorted(placed, key=lambda q: q.start):
            start = round(p.start * fps)
            length = max(1, round((p.end - p.start) * fps))
            if start < cursor:  # an overrunning dub: the editor sees it trimmed, the report
                length -= cursor - start  # says by how much
                start = cursor
            if length <= 0:
                continue
            if start > cursor:
                track.append(otio.schema.Gap(
                    source_range=_range(0, (start - cursor) / fps, fps)))
            clip = otio.schema.Clip(
                name=f"{p.line} {lang}",
                media_reference=otio.schema.ExternalReference(target_url=audio[(p.line, lang)]),
                source_range=_range(0, length / fps, fps),
            )
            clip.metadata["wanhe"] = {"character": p.character, "text": p.text}
            track.append(clip)
            cursor = start + length
        total = round(timing.duration * fps)
        if total > cursor:
            track.append(otio.schema.Gap(source_range=_range(0, (total - cursor) / fps, fps)))
        timeline.tracks.append(track)
    return timeline

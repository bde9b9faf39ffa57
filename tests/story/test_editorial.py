"""The editorial package read back as an editor's software would: the OTIO, the FCP 7 XML and
each CMX 3600 EDL open with OpenTimelineIO's adapters, every clip's media is in the package
(relative path), every track adds up to the reel, the timeline starts at 01:00:00:00, each
line's audio lands on its exact sample, overruns and extended shots carry markers, and each
language's dialogue is within ±1 LU of −23 LUFS. Lines are tones written here (no synthesis:
the package does not care what speaks), the shots tiny clips."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import opentimelineio as otio
import pytest

from tests.story.conftest import BASE
from wanhe.imaging.reel import write_clip
from wanhe.story.editorial import (
    RATE,
    TARGET_LUFS,
    edit_rate,
    loudness_gain,
    measure_lufs,
    write_package,
)
from wanhe.story.schema import Storyboard
from wanhe.story.timing import line_id, reel_timing
from wanhe.voice.audio import mix, read_wav, write_wav

VOICE_RATE = 22_050
RAW = {("s1.1", "en"): 0.9, ("s1.2", "en"): 0.7, ("s2.1", "en"): 1.1,
       ("s1.1", "cmn"): 0.8, ("s1.2", "cmn"): 3.0, ("s2.1", "cmn"): 1.0}  # s1.2 cmn overruns
LEVEL = {"en": 0.5, "cmn": 0.08}  # the two languages far apart in loudness


def _board() -> Storyboard:
    data: dict[str, Any] = copy.deepcopy(BASE)
    data["film"]["title"] = "Harbour"
    shot = data["scenes"][0]["shots"][0]
    shot["lines"].append({"character": "Mei", "text": "Yes.", "translations": {"cmn": "是。"}})
    data["scenes"][0]["shots"].append({"id": "s2", "duration": 0.5, "image": {"path": "b.png"},
                                       "lines": [{"character": "Joe", "text": "Go.",
                                                  "translations": {"cmn": "走。"}}]})
    return Storyboard.model_validate(data)


def _tone(seconds: float, level: float, pitch: float) -> np.ndarray:
    t = np.arange(round(seconds * VOICE_RATE)) / VOICE_RATE
    return (level * np.cos(2 * math.pi * pitch * t)).astype(np.float32)  # non-zero at 0


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("editorial")
    board = _board()
    timing = reel_timing(board, RAW)
    audio: dict[tuple[str, str], str] = {}
    for lang, placed in timing.lines.items():
        for n, p in enumerate(placed):
            wav = tmp / "cache" / f"{p.line}.{lang}.wav"  # a hash-named cache in real life
            write_wav(wav, _tone(p.end - p.start, LEVEL[lang], 220 + 40 * n), VOICE_RATE)
            audio[(p.line, lang)] = str(wav)
    clips = {}
    for shot in timing.shots:
        frames = shot.layout.frames(timing.fps)
        clips[shot.id] = str(tmp / "shots" / f"{shot.id}.mp4")
        write_clip([np.full((48, 64, 3), 90, np.uint8)] * frames, timing.fps,
                   Path(clips[shot.id]))
    gains = {}
    for lang, placed in timing.lines.items():
        track = mix(timing.duration, [(p.start, Path(audio[(p.line, lang)])) for p in placed])
        gains[lang] = loudness_gain(lang, track, RATE)
    summary = write_package(tmp / "out" / "editorial", "Harbour", timing, clips, audio, gains)
    return {"folder": tmp / "out" / "editorial", "timing": timing, "summary": summary,
            "board": board}


def _read(folder: Path, name: str) -> otio.schema.Timeline:
    if name.endswith(".edl"):
        return otio.adapters.read_from_file(str(folder / name), rate=24)
    return otio.adapters.read_from_file(str(folder / name))


def test_every_export_reads_back_with_its_media_in_the_package(package: dict[str, Any]) -> None:
    folder, timing = package["folder"], package["timing"]
    summary = package["summary"]
    assert summary["exports"] == ["reel.otio", "reel.xml", "reel.picture.edl", "reel.en.edl",
                                  "reel.cmn.edl", "reel.cmn-2.edl"]
    assert sorted(p.name for p in (folder / "media").iterdir()) == sorted(
        ["s1.mp4", "s2.mp4", "s1.1_joe_en_take1.wav", "s1.2_mei_en_take1.wav",
         "s2.1_joe_en_take1.wav", "s1.1_joe_cmn_take1.wav", "s1.2_mei_cmn_take1.wav",
         "s2.1_joe_cmn_take1.wav"])
    reel_frames = sum(s.layout.frames(timing.fps) for s in timing.shots) * 2  # 12 fps at 24
    reference: dict[tuple[str, str], tuple[int, int]] = {}  # (track, clip) -> (start, frames)
    clips_seen = 0
    for name in summary["exports"]:
        timeline = _read(folder, name)
        tracks = [t for t in timeline.tracks if len(t)]
        assert tracks, name
        offsets = set()
        for track in tracks:
            for clip in track.find_clips():
                url = clip.media_reference.target_url
                assert url.startswith("media/") or "/media/" in url, (name, url)
                relative = url[url.index("media/"):]
                assert (folder / relative).is_file(), (name, url)
                clips_seen += 1
                placed = clip.range_in_parent()
                at = (int(placed.start_time.rescaled_to(24).value),
                      int(placed.duration.rescaled_to(24).value))
                key = (str(track.kind), relative)
                if name == "reel.otio":
                    reference[key] = at
                else:  # the same clip at the same place for the same length (an EDL may
                    assert at[1] == reference[key][1], (name, key)  # count from 01:00:00:00)
                    offsets.add(at[0] - reference[key][0])
            if name == "reel.otio":  # every track lasts the reel
                assert track.duration().rescaled_to(24).value == reel_frames, track.name
            else:  # the XML and EDLs end at their last clip
                assert track.duration().rescaled_to(24).value <= reel_frames
        assert len(offsets) == (name != "reel.otio"), (name, offsets)  # all moved alike (an
        # EDL's reader
        if name.endswith(".edl"):  # starts at its first event): its record timecode is right
            first = min(reference[(str(t.kind), c.media_reference.target_url)][0]
                        for t in tracks for c in t.find_clips())
            record = otio.opentime.to_timecode(otio.opentime.RationalTime(86_400 + first, 24))
            assert f" {record} " in (folder / name).read_text(), (name, record)
        elif name == "reel.xml":
            assert offsets == {0}, (name, offsets)
        if not name.endswith(".edl"):
            assert otio.opentime.to_timecode(timeline.global_start_time, 24) == "01:00:00:00"
    assert clips_seen == 3 * (2 + 6)  # the OTIO, the XML and the EDLs: 2 shots + 6 lines each
    assert sum(f for (kind, _), (_, f) in reference.items() if kind == "Video") == reel_frames
    picture_edl = (folder / "reel.picture.edl").read_text()
    assert "00:00:00:00 00:00:01:" in picture_edl and " 01:00:00:00 01:00:0" in picture_edl


def test_audio_is_sample_exact_and_markers_say_overrun_and_extended(
        package: dict[str, Any]) -> None:
    folder, timing = package["folder"], package["timing"]
    timeline = otio.adapters.read_from_file(str(folder / "reel.otio"))
    starts = {(p.line, p.lang): round(p.start * RATE) for ps in timing.lines.values()
              for p in ps}
    per_frame = RATE // edit_rate(timing.fps)
    checked = 0
    for track in timeline.audio_tracks():
        for clip in track.find_clips():
            meta = clip.metadata["wanhe"]
            lang = track.metadata["language"]
            at = clip.range_in_parent().start_time.value  # whole frames at 24
            samples, rate = read_wav(folder / clip.media_reference.target_url)
            first_sound = int(np.flatnonzero(np.abs(samples) > 1e-3)[0])
            assert rate == RATE and first_sound == meta["lead_samples"]
            assert at * per_frame + first_sound == starts[(meta["line"], lang)]
            checked += 1
    assert checked == 6
    markers = {m.name: m for clip in timeline.find_clips() for m in clip.markers}
    assert "overrun s1.2 cmn" in markers and markers["overrun s1.2 cmn"].color == "RED"
    assert "past its slot" in markers["overrun s1.2 cmn"].metadata["comment"]
    assert "s2 extended" in markers
    assert [t.name for t in timeline.audio_tracks()] == ["Dialogue en", "Dialogue cmn",
                                                          "Dialogue cmn 2"]


def test_each_language_is_within_one_lu_of_the_target(package: dict[str, Any]) -> None:
    folder, timing = package["folder"], package["timing"]
    loudness = package["summary"]["loudness"]
    assert abs(loudness["en"]["gain_db"] - loudness["cmn"]["gain_db"]) > 10  # they differed
    timeline = otio.adapters.read_from_file(str(folder / "reel.otio"))
    total = round(timing.duration * RATE)
    for lang in ("en", "cmn"):
        track = np.zeros(total + RATE, np.float32)
        for lane in timeline.audio_tracks():
            if lane.metadata["language"] != lang:
                continue
            for clip in lane.find_clips():
                samples, _ = read_wav(folder / clip.media_reference.target_url)
                at = int(clip.range_in_parent().start_time.value) * (RATE // 24)
                track[at:at + samples.size] += samples
        measured = measure_lufs(track[:total], RATE)
        assert measured is not None and abs(measured - TARGET_LUFS) <= 1.0, (lang, measured)
        assert abs(loudness[lang]["lufs"] - TARGET_LUFS) <= 1.0


def test_a_film_rate_without_timecode_is_one_clear_error() -> None:
    assert edit_rate(12) == 24 and edit_rate(25) == 25 and edit_rate(8) == 24
    with pytest.raises(ValueError, match="has no SMPTE timecode rate"):
        edit_rate(7)


def test_line_ids_match_the_report() -> None:
    board = _board()
    assert [line_id(s, n) for s in board.shots for n in range(len(s.lines))] == [
        "s1.1", "s1.2", "s2.1"]

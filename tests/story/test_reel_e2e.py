"""The example storyboard (4 shots, two characters, English + Mandarin + Spanish, a rigged talking head
from examples/make_scenes.py) made into a reel by `wanhe story render`'s library call, at a
tiny size: real Piper/espeak-ng voices, rubberband dubs, Blender lip sync and renders, PyAV.

Checked: the MP4's streams, tags and durations; subtitles against the synthesized lines; the
OTIO timeline read back; a re-run with one line changed re-synthesizes one voice; the lip
sync measured against the audio's loudness and in the rendered pixels."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from wanhe.config import Settings

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
FPS = 12


def _make_story() -> Any:
    spec = importlib.util.spec_from_file_location("make_story", ROOT / "examples" /
                                                  "make_story.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_story"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("bpy")
    pytest.importorskip("piper")
    from wanhe.runs.story import render_story

    root = tmp_path_factory.mktemp("story")
    story = _make_story().build(root / "src", size=(96, 64), fps=FPS, samples=1)
    settings = Settings(home=root / "home")
    first = render_story(story, root / "out", settings=settings, workers=2)
    assert first.job.state.value == "done", first.job.message
    report = json.loads((root / "out" / "report.json").read_text())
    return {"root": root, "story": story, "settings": settings, "first": first,
            "report": report, "out": root / "out"}


def test_mp4_has_one_video_and_a_tagged_audio_stream_per_language(reel: dict[str, Any]) -> None:
    import av

    duration = reel["report"]["duration_s"]
    with av.open(str(reel["out"] / "reel.mp4")) as mp4:
        streams = list(mp4.streams)
        assert [s.type for s in streams] == ["video", "audio", "audio", "audio"]
        assert streams[0].codec_context.name == "h264"
        assert [s.metadata.get("language") for s in streams[1:]] == ["eng", "cmn", "spa"]
        for s in streams:
            assert float(s.duration * s.time_base) == pytest.approx(duration, abs=0.1)
        frames = sum(1 for _ in mp4.decode(video=0))
    assert frames == round(duration * FPS)


def test_subtitles_match_the_synthesized_lines_within_a_frame(reel: dict[str, Any]) -> None:
    import srt

    for lang in ("en", "cmn", "es"):
        lines = sorted(reel["report"]["lines"][lang], key=lambda p: p["start"])
        cues = list(srt.parse((reel["out"] / "subtitles" / f"{lang}.srt").read_text()))
        vtt = (reel["out"] / "subtitles" / f"{lang}.vtt").read_text()
        assert vtt.startswith("WEBVTT") and vtt.count("-->") == len(lines)
        assert len(cues) == len(lines) == 4
        for n, (cue, line) in enumerate(zip(cues, lines, strict=True)):
            end = line["end"] if n + 1 == len(lines) else min(line["end"], lines[n + 1]["start"])
            assert cue.start.total_seconds() == pytest.approx(line["start"], abs=1 / FPS)
            assert cue.end.total_seconds() == pytest.approx(end, abs=1 / FPS)
            assert line["text"] in cue.content
    en = reel["report"]["lines"]["en"]
    wav = {t.key: t.output for t in reel["first"].tasks if t.kind == "voice"}
    for line in en:  # the cue lasts as long as the synthesized audio
        assert line["end"] - line["start"] == pytest.approx(
            wav[f"voice/{line['line']}/en"]["seconds"], abs=1e-6)


def test_otio_reads_back_and_adds_up(reel: dict[str, Any]) -> None:
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(reel["out"] / "reel.otio"))
    frames = round(reel["report"]["duration_s"] * FPS)
    picture, *dialogue = timeline.tracks
    assert [c.name for c in picture.find_clips()] == ["s1", "s2", "s3", "s4"]
    assert sum(c.duration().value for c in picture) == frames
    assert picture.duration().value == frames
    assert [t.metadata["language"] for t in dialogue] == ["en", "cmn", "es"]
    for track in dialogue:
        assert track.duration().value == frames
        assert len(list(track.find_clips())) == 4
    assert (reel["out"] / "contact_sheet.png").stat().st_size > 0


def _pearson(a: Any, b: Any) -> float:
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


def test_lip_sync_by_visemes_shows_in_the_frames(reel: dict[str, Any]) -> None:
    """The rig's open/wide keys carry the line's mouth shapes (visemes from espeak-ng's
    phoneme timing of the take): shut in silence, open while it speaks, and the rendered
    mouth follows the key."""
    from wanhe.blender.shapekeys import read_shape_key
    from wanhe.imaging.exr import read_layers
    from wanhe.voice.audio import read_wav

    report = reel["report"]
    shot = next(s for s in report["shots"] if s["id"] == "s2")
    line = next(p for p in report["lines"]["en"] if p["line"] == "s2.1")
    wav = next(t.output["wav"] for t in reel["first"].tasks if t.key == "voice/s2.1/en")
    samples, rate = read_wav(Path(wav))
    frames = 2 * FPS
    offset = line["start"] - shot["start_s"]
    loud = np.zeros(frames)  # the loudness envelope: RMS per frame, in dB above -45 dBFS
    for n in range(frames):
        a = round((n / FPS - offset) * rate)
        b = round(a + rate / FPS)
        part = samples[max(0, a):max(0, b)]
        if len(part):
            rms = float(np.sqrt(np.mean(part.astype(float) ** 2)))
            loud[n] = max(0.0, 20 * np.log10(max(rms, 1e-9)) + 45)
    tasks = {t.key: t for t in reel["first"].tasks}
    from wanhe.voice.visemes import OPEN_WIDE

    blend = Path(tasks["lipsync/s2"].payload["output"])
    opened = np.array(read_shape_key(blend, "Mouth", "MouthOpen", list(range(1, frames + 1))))
    mouth = tasks["lipsync/s2"].output["mouths"]["Mei"]
    assert mouth["mode"] == "visemes"
    assert np.allclose(opened, [OPEN_WIDE[s][0] for s in mouth["shapes"]], atol=1e-4)
    silent = (loud == 0) & (np.roll(loud, -1) == 0) & (np.roll(loud, 1) == 0)  # lead aside
    assert silent.sum() >= 3 and np.all(opened[silent] < 0.05)
    assert opened.max() > 0.5
    dark = []  # the mouth region's darkness in the rendered frames
    for n in range(frames):
        exr = Path(tasks[f"render/s2/{n + 1}"].payload["output"])
        rgb = read_layers(exr).rgba("Combined")[..., :3]
        region = rgb[30:62, 16:80].mean(axis=2)
        dark.append(float((region < 0.3).mean()))
    print(f"lip sync: r(shape key, mouth pixels) = {_pearson(opened, dark):.3f}")
    assert _pearson(opened, dark) >= 0.7


def test_the_same_command_again_resumes_and_runs_nothing(reel: dict[str, Any]) -> None:
    from wanhe.runs.story import render_story

    again = render_story(reel["story"], reel["out"], settings=reel["settings"], workers=2)
    assert again.resumed and again.job.id == reel["first"].job.id
    assert again.tasks_skipped == again.tasks_total and again.attempts == []
    (reel["out"] / "reel.mp4").unlink()  # a deleted output: the clips and the reel again
    third = render_story(reel["story"], reel["out"], settings=reel["settings"], workers=2)
    assert third.job.state.value == "done" and (reel["out"] / "reel.mp4").is_file()
    assert {a["kind"] for a in third.attempts} == {"clip", "reel"}


def test_a_shot_lip_synced_in_the_dubbed_language(reel: dict[str, Any]) -> None:
    import av

    from wanhe.blender.shapekeys import read_shape_key
    from wanhe.voice.audio import read_wav
    from wanhe.voice.visemes import OPEN_WIDE

    with av.open(str(reel["out"] / "reel.cmn.mp4")) as mp4:
        streams = list(mp4.streams)
        assert [s.type for s in streams] == ["video", "audio", "audio", "audio"]
        assert [s.metadata.get("language") for s in streams[1:]] == ["cmn", "eng", "spa"]
    tasks = {t.key: t for t in reel["first"].tasks}
    report = reel["report"]
    shot = next(s for s in report["shots"] if s["id"] == "s2")
    line = next(p for p in report["lines"]["cmn"] if p["line"] == "s2.1")
    samples, rate = read_wav(Path(tasks["dub/s2.1/cmn"].output["wav"]))
    frames = 2 * FPS
    offset = line["start"] - shot["start_s"]
    loud = np.zeros(frames)
    for n in range(frames):
        a = round((n / FPS - offset) * rate)
        part = samples[max(0, a):max(0, round(a + rate / FPS))]
        if len(part):
            rms = float(np.sqrt(np.mean(part.astype(float) ** 2)))
            loud[n] = max(0.0, 20 * np.log10(max(rms, 1e-9)) + 45)
    blend = Path(tasks["lipsync/s2.cmn"].payload["output"])
    opened = np.array(read_shape_key(blend, "Mouth", "MouthOpen", list(range(1, frames + 1))))
    mouth = tasks["lipsync/s2.cmn"].output["mouths"]["Mei"]
    assert mouth["mode"] == "visemes"
    assert np.allclose(opened, [OPEN_WIDE[s][0] for s in mouth["shapes"]], atol=1e-4)
    speaking = np.array([s != "X" for s in mouth["shapes"]])
    print(f"lip sync (cmn): r(mouth moving, loudness) = {_pearson(speaking, loud):.3f}")
    assert _pearson(speaking, loud) >= 0.6  # the dub's mouths move while the dub speaks
    english = tasks["lipsync/s2"].output["mouths"]["Mei"]["shapes"]
    assert mouth["shapes"] != english  # another language, other mouths


def test_rerun_with_one_line_changed_synthesizes_one_voice(reel: dict[str, Any]) -> None:
    from wanhe.runs.story import render_story

    story: Path = reel["story"]
    board = yaml.safe_load(story.read_text())
    board["scenes"][1]["shots"][0]["lines"][1]["translations"]["cmn"] = "好了，走吧。"
    story.write_text(yaml.safe_dump(board, allow_unicode=True, sort_keys=False))
    again = render_story(story, reel["root"] / "out2", settings=reel["settings"], workers=2)
    assert again.job.state.value == "done", again.job.message
    assert not again.resumed
    assert again.synthesized() == ["voice/s3.2/cmn"]
    report = json.loads((reel["root"] / "out2" / "report.json").read_text())
    assert report["voice_tasks"] == {"total": 12, "synthesized_this_run": ["voice/s3.2/cmn"]}
    assert set(report["core_hours_by_kind"]) >= {"voice", "dub", "clip", "reel"}
    # the Blender shot's scene, rig and dialogue did not change: its lip sync and frames
    # come from the cache (the shot with the changed line is a still)
    assert not any(t.kind in ("render", "lipsync") for t in again.tasks)

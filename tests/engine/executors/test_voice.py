"""The voice executor with real espeak-ng, Piper and rubberband: synthesis named by content
(a second run is a cache hit), dubs fitted to the original's slot within ±15 % of tempo (and
flagged beyond, with how far they overrun), pitch without a change of timing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wanhe.engine.executors.base import TaskContext, WorkerInfo
from wanhe.engine.executors.voice import VoiceExecutor
from wanhe.story.schema import Voice
from wanhe.voice.stretch import pitch_shift, time_stretch
from wanhe.voice.tts import synthesis_key, wav_seconds


def _voice(tmp: Path, text: str, voice: Voice, lang: str = "en") -> dict[str, Any]:
    key = synthesis_key(text, voice, lang, None)
    return {"line": "s1.1", "lang": lang, "text": text, "voice": voice.model_dump(),
            "output": str(tmp / f"{key}.wav")}


def test_synthesis_is_cached_by_content(tmp_path: Path) -> None:
    executor = VoiceExecutor(WorkerInfo())
    payload = _voice(tmp_path, "Hello there.", Voice(engine="espeak", voice="en"))
    first = executor.run("voice", payload, TaskContext())
    assert first.output["cached"] is False and first.output["seconds"] > 0.3
    again = executor.run("voice", payload, TaskContext())
    assert again.output == {**again.output, "cached": True, "seconds": first.output["seconds"]}
    other = _voice(tmp_path, "Hello there.", Voice(engine="espeak", voice="en", speed=1.5))
    assert other["output"] != payload["output"]  # a setting changed: a new file
    assert executor.run("voice", other, TaskContext()).output["seconds"] < first.output[
        "seconds"]


def test_mandarin_and_cantonese_speak_with_espeak(tmp_path: Path) -> None:
    executor = VoiceExecutor(WorkerInfo())
    for lang, text in (("cmn", "你好，朋友。"), ("yue", "你好。")):
        out = executor.run("voice", _voice(tmp_path, text, Voice(engine="espeak", voice=lang),
                                           lang), TaskContext())
        assert out.output["seconds"] > 0.3


def test_piper_pitch_keeps_the_timing(tmp_path: Path) -> None:
    """A pitched voice is the same line, as long. Piper's durations are stochastic (its
    duration predictor samples noise), so two syntheses of one line differ in length by tens
    of ms: the shift is checked on one synthesis, and the pitched task for a length that
    Piper gives."""
    pytest.importorskip("piper")
    executor = VoiceExecutor(WorkerInfo())
    payload = _voice(tmp_path, "Then we go.", Voice())
    plain = executor.run("voice", payload, TaskContext())
    shifted = tmp_path / "shifted.wav"
    pitch_shift(Path(payload["output"]), shifted, 4)
    assert wav_seconds(shifted) == pytest.approx(plain.output["seconds"], abs=0.01)
    higher = executor.run("voice", _voice(tmp_path, "Then we go.", Voice(pitch=4)),
                          TaskContext())
    assert higher.output["seconds"] == pytest.approx(plain.output["seconds"], rel=0.25)
    assert executor.warm_key({"voice": Voice().model_dump()}) == "piper:bundled"


@pytest.mark.parametrize(("longer", "flagged"), [(1.10, False), (1.30, True)])
def test_dubs_fit_their_slot_or_are_flagged(tmp_path: Path, longer: float,
                                            flagged: bool) -> None:
    executor = VoiceExecutor(WorkerInfo())
    original = executor.run("voice", _voice(tmp_path, "The boat is ready now.",
                                            Voice(engine="espeak", voice="en")), TaskContext())
    slot = original.output["seconds"]
    dubbed = tmp_path / f"long{longer}.wav"  # a translation `longer` × the slot
    time_stretch(Path(original.output["wav"]), dubbed, longer)
    raw = wav_seconds(dubbed)
    assert raw == pytest.approx(slot * longer, rel=0.01)
    out = executor.run("dub", {"line": "s1.1", "lang": "cmn", "input": str(dubbed),
                               "original": original.output["wav"], "max_stretch": 0.15,
                               "output": str(tmp_path / f"fit{longer}.wav")}, TaskContext())
    fitted = wav_seconds(Path(out.output["wav"]))
    assert out.output["flagged"] is flagged
    if flagged:
        assert out.output["time_ratio"] == pytest.approx(0.85)
        assert out.output["overrun_s"] == pytest.approx(raw * 0.85 - slot, abs=0.01)
        assert fitted == pytest.approx(raw * 0.85, abs=0.03)
    else:
        assert fitted <= slot + 0.03  # fits: no overlap with what follows
        assert out.output["overrun_s"] == 0


def test_a_take_keeps_its_phoneme_timings_beside_it(tmp_path: Path) -> None:
    """What lip sync keys on: espeak-ng's phoneme events for the take, in the take's time
    (its silence cut), ending with its speech."""
    import json

    from wanhe.voice.tts import phonemes_path

    executor = VoiceExecutor(WorkerInfo())
    payload = _voice(tmp_path, "Maybe Bob will pay.", Voice(engine="espeak", voice="en"))
    out = executor.run("voice", payload, TaskContext()).output
    assert out["phoneme_source"] == "espeak-ng phoneme events" and out["phonemes"] > 8
    timed = json.loads(phonemes_path(Path(out["wav"])).read_text())
    ends = [end for _, _, end in timed["phonemes"]]
    assert ends == sorted(ends) and ends[-1] == pytest.approx(out["seconds"], abs=0.03)
    assert [p for p, _, _ in timed["phonemes"]][:2] == ["m", "eɪ"]

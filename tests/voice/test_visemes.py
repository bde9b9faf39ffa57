"""Lip sync by visemes: phonemes with known times (espeak-ng's own phoneme events, real
libespeak-ng) keyed as Preston Blair / Rhubarb mouth shapes — the shape keyed within one frame
of each phoneme for at least 90 % of them, closures on m/b/p, a lead of a frame, rest in
silence and on a held frame; loudness rigs still follow loudness."""

from __future__ import annotations

import numpy as np
import pytest

from wanhe.voice.espeak_events import Phoneme, phonemes
from wanhe.voice.lipsync import SpokenLine, rig_keys
from wanhe.voice.phonemes import espeak_input
from wanhe.voice.visemes import LEAD_FRAMES, REST, held_rest_from, shape_of, viseme_frames

FPS = 24.0
LINES = [("Then we go tonight, before the boats leave.", "en"),
         ("Maybe Bob will pay for the lamps.", "en"),
         ("灯笼亮了，我们走吧。", "cmn"), ("船好了吗？", "yue")]


def _timed(text: str, voice: str) -> list[Phoneme]:
    name, spoken = espeak_input(text, voice)
    return phonemes(spoken, name, 175)[0]


def test_the_chart() -> None:
    assert [shape_of(p) for p in ("m", "b", "p", "f", "v", "uː", "w", "ɔː", "ɑː", "aɪ",
                                   "ɛ", "l", "t", "s", "iː", "", "ˈ")] == list("AAAGGFFEDDCHBBBXX")


def test_keyed_shapes_match_the_phonemes_within_a_frame() -> None:
    hits = total = 0
    for text, voice in LINES:
        timed = _timed(text, voice)
        assert len(timed) > 5
        start = 0.3
        frames = int((start + timed[-1].end) * FPS) + 8
        shapes = viseme_frames([(start, timed)], FPS, frames)
        for p in timed:
            want = shape_of(p.ipa)
            if want == REST:
                continue
            a = int((start + p.start) * FPS) - LEAD_FRAMES - 1
            b = int((start + p.end) * FPS) - LEAD_FRAMES + 1
            total += 1
            hits += want in shapes[max(0, a):b + 1]
    share = hits / total
    print(f"visemes: {hits}/{total} phonemes keyed within a frame ({100 * share:.1f} %)")
    assert share >= 0.9


def test_closures_lead_and_rest() -> None:
    timed = _timed("Maybe Bob will pay.", "en")
    start = 0.5
    frames = int((start + timed[-1].end) * FPS) + 10
    shapes = viseme_frames([(start, timed)], FPS, frames)
    for p in timed:
        if p.ipa[0] in "mbp":  # every closure shows, however short
            n = int((start + p.start) * FPS) - LEAD_FRAMES
            assert "A" in shapes[max(0, n - 1):n + 2], p
    first = int((start + timed[0].start) * FPS)
    assert shapes[first - LEAD_FRAMES] != REST  # the mouth moves a frame before the sound
    assert set(shapes[:first - LEAD_FRAMES]) == {REST}  # silence before: at rest
    assert set(shapes[-6:]) == {REST}  # silence after


def test_a_held_frame_is_at_rest_in_both_modes() -> None:
    """A shot of 24 rendered frames extended to 40 holds frame 24: its mouth is shut."""
    timed = _timed("Then we go tonight, before the boats leave.", "en")
    held = held_rest_from(24, 40)
    assert held == 23 and held_rest_from(24, 24) is None
    rate = 16_000
    samples = (0.3 * np.sin(np.arange(2 * rate) / rate * 2 * np.pi * 200)).astype(np.float32)
    line = SpokenLine(0.2, samples, rate, timed)
    rig = {"object": "Mouth", "open": "MouthOpen", "wide": "MouthWide"}
    keys, info = rig_keys(rig, [line], FPS, 24, held)
    assert info["mode"] == "visemes" and info["shapes"][-1] == REST
    assert keys["MouthOpen"][-1] == 0.0 and max(keys["MouthOpen"]) > 0.5
    loud, info = rig_keys({**rig, "mouth": "loudness"}, [line], FPS, 24, held)
    assert info["mode"] == "loudness" and loud["MouthOpen"][-1] == 0.0
    assert min(loud["MouthOpen"][8:20]) > 0.5  # a loudness rig still follows the sound


def test_a_rig_with_a_key_per_shape() -> None:
    timed = _timed("Bob.", "en")
    rig = {"object": "Face", "open": "Open",
           "visemes": {s: f"mouth_{s}" for s in "ABCDEFGH"}}
    keys, info = rig_keys(rig, [SpokenLine(0.1, np.zeros(10, np.float32), 16_000, timed)],
                          FPS, 20, None)
    shapes = info["shapes"]
    for n, shape in enumerate(shapes):  # one shape key on per frame, none at rest
        on = [k for k, v in keys.items() if v[n] == 1.0]
        assert on == ([] if shape == REST else [f"mouth_{shape}"])
    assert "A" in shapes


@pytest.mark.parametrize("fps", [12.0, 30.0])
def test_other_rates(fps: float) -> None:
    timed = _timed("Maybe Bob will pay for the lamps.", "en")
    shapes = viseme_frames([(0.0, timed)], fps, int(timed[-1].end * fps) + 4)
    assert "A" in shapes and shapes[-1] == REST

"""Takes that stay put and are their speech: real Piper (the bundled voice) and espeak-ng."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wanhe.story.schema import Voice
from wanhe.voice.audio import read_wav, speech_bounds
from wanhe.voice.tts import PiperVoices, bundled_model, synthesize

ROOT = Path(__file__).resolve().parents[2]


def test_speech_bounds_leave_out_the_silence_around_it() -> None:
    rate = 16_000
    t = np.arange(int(0.5 * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    quiet = np.zeros(int(0.3 * rate), np.float32)
    samples = np.concatenate([quiet, tone, quiet, quiet])
    first, end = speech_bounds(samples, rate)
    assert first / rate == pytest.approx(0.29, abs=0.011)
    assert end / rate == pytest.approx(0.81, abs=0.011)
    assert speech_bounds(np.zeros(rate, np.float32), rate) == (0, 0)


def test_a_take_starts_and_ends_with_its_speech(tmp_path: Path) -> None:
    made = synthesize("Is the boat ready?", Voice(engine="espeak", voice="en"), "en", None,
                      tmp_path / "take.wav", PiperVoices())
    samples, rate = read_wav(made.path)
    assert made.trimmed_s[1] > 0.05  # espeak-ng ends a sentence with silence: cut
    ten_ms = rate // 100
    for edge in (samples[: 3 * ten_ms], samples[-3 * ten_ms:]):  # sound within 30 ms
        assert float(np.sqrt(np.mean(edge.astype(np.float64) ** 2))) > 10 ** (-50 / 20)
    assert made.seconds == pytest.approx(len(samples) / rate)


_OTHER_WORKER = """
import sys
from pathlib import Path
from wanhe.story.schema import Voice
from wanhe.voice.tts import PiperVoices, bundled_model, synthesize
synthesize("Is the boat ready?", Voice(), "en", bundled_model(), Path(sys.argv[1]),
           PiperVoices(), 1)
"""


def test_piper_takes_are_the_same_bytes_for_the_same_seed(tmp_path: Path) -> None:
    """Piper samples noise: unseeded, four syntheses of one line ran 1.045–1.091 s. Seeded,
    the same recipe is the same file."""
    pytest.importorskip("piper")
    model, voices = bundled_model(), PiperVoices()
    one = synthesize("Is the boat ready?", Voice(), "en", model, tmp_path / "a.wav", voices, 1)
    two = synthesize("Is the boat ready?", Voice(), "en", model, tmp_path / "b.wav", voices, 1)
    assert one.path.read_bytes() == two.path.read_bytes()


@pytest.mark.slow  # a second Python with Piper and onnxruntime loaded: ~10 s on a busy box
def test_another_worker_makes_the_same_take(tmp_path: Path) -> None:
    """What a farm worker makes from the same recipe is the local take, byte for byte;
    another seed is another take."""
    pytest.importorskip("piper")
    voices = PiperVoices()
    one = synthesize("Is the boat ready?", Voice(), "en", bundled_model(), tmp_path / "a.wav",
                     voices, 1)
    other = synthesize("Is the boat ready?", Voice(), "en", bundled_model(),
                       tmp_path / "c.wav", voices, 2)
    assert other.path.read_bytes() != one.path.read_bytes()
    subprocess.run([sys.executable, "-c", _OTHER_WORKER, str(tmp_path / "d.wav")],
                   check=True, timeout=120, env={"PYTHONPATH": str(ROOT / "src")})
    assert (tmp_path / "d.wav").read_bytes() == one.path.read_bytes()

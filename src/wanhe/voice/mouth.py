"""Mouth shapes from a line's audio (pure NumPy): how open (loudness) and how wide (bright,
high-frequency sounds such as "ee" and "s") the mouth is at each frame of the shot.

The loudness envelope is the RMS of the audio in each frame's window, on a dB scale from a
noise floor to the line's loud end, lightly smoothed and gated: the mouth closes in silence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

Curve = NDArray[np.float64]
FLOOR_DB = -45.0  # below this (relative to full scale) the mouth is closed


def rms_per_frame(samples: NDArray[np.float32], rate: int, fps: float, frames: int,
                  offset_s: float = 0.0) -> Curve:
    """RMS of the audio in each frame's window; the audio starts `offset_s` after frame 0."""
    out = np.zeros(frames)
    hop = rate / fps
    for n in range(frames):
        a = round((n / fps - offset_s) * rate)
        b = round(a + hop)
        a, b = max(0, a), min(len(samples), b)
        if b > a:
            window = samples[a:b].astype(np.float64)
            out[n] = float(np.sqrt(np.mean(window * window)))
    return out


def brightness_per_frame(samples: NDArray[np.float32], rate: int, fps: float, frames: int,
                         offset_s: float = 0.0) -> Curve:
    """Share of each frame's energy above 2.5 kHz (0..1): wide lips for bright sounds."""
    out = np.zeros(frames)
    hop = rate / fps
    for n in range(frames):
        a = max(0, round((n / fps - offset_s) * rate))
        b = min(len(samples), round((n / fps - offset_s) * rate + hop))
        if b - a < 16:
            continue
        spectrum = np.abs(np.fft.rfft(samples[a:b].astype(np.float64))) ** 2
        freqs = np.fft.rfftfreq(b - a, 1.0 / rate)
        total = spectrum.sum()
        if total > 0:
            out[n] = float(spectrum[freqs > 2500].sum() / total)
    return out


def openness(rms: Curve) -> Curve:
    """0 (closed) .. 1 (open) from an RMS envelope."""
    db = 20.0 * np.log10(np.maximum(rms, 1e-9))
    loud = max(float(np.percentile(db[db > FLOOR_DB], 95)) if (db > FLOOR_DB).any() else 0.0,
               FLOOR_DB + 6.0)
    value = np.clip((db - FLOOR_DB) / (loud - FLOOR_DB), 0.0, 1.0)
    smooth = np.convolve(value, [0.25, 0.5, 0.25], mode="same")
    smooth[rms <= 10 ** (FLOOR_DB / 20.0)] = 0.0  # silence: closed, not smoothed open
    return smooth


def mouth_curves(clips: Sequence[tuple[float, NDArray[np.float32], int]], fps: float,
                 frames: int) -> tuple[Curve, Curve]:
    """(open, wide) per frame for one character's lines: (start seconds, samples, rate)."""
    rms = np.zeros(frames)
    bright = np.zeros(frames)
    for start, samples, rate in clips:
        rms = np.maximum(rms, rms_per_frame(samples, rate, fps, frames, start))
        bright = np.maximum(bright, brightness_per_frame(samples, rate, fps, frames, start))
    opened = openness(rms)
    gate = np.where(opened > 0.05, 1.0, 0.0)
    wide: Curve = np.clip(bright * 2.0, 0.0, 1.0) * gate
    return opened, wide

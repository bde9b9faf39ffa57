"""One character's mouth keys for a shot (pure): from the lines' phonemes (visemes) where the
takes' phoneme timings are known and the rig asks for visemes, else from their loudness.

Either way the mouth is at rest in silence and on a held frame (a shot longer than its frame
range holds its last frame: that frame is keyed at rest, never frozen open).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from wanhe.voice.espeak_events import Phoneme
from wanhe.voice.mouth import mouth_curves
from wanhe.voice.visemes import OPEN_WIDE, REST, viseme_frames


@dataclass(frozen=True, slots=True)
class SpokenLine:
    """A line in the shot: where it starts (s), its audio, its phonemes (None: unknown)."""

    start: float
    samples: NDArray[np.float32]
    rate: int
    phonemes: Sequence[Phoneme] | None


def rig_keys(rig: dict[str, Any], lines: Sequence[SpokenLine], fps: float, frames: int,
             held_from: int | None) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """(shape key -> a value per frame, what was done: mode, shapes per frame)."""
    visemes = rig.get("mouth", "visemes") == "visemes" and all(
        line.phonemes is not None for line in lines)
    keys: dict[str, list[float]] = {}
    if visemes:
        shapes = viseme_frames([(line.start, line.phonemes or []) for line in lines], fps,
                               frames, held_from=held_from)
        by_shape: dict[str, str] = rig.get("visemes") or {}
        if by_shape:
            for shape, key in by_shape.items():
                keys[key] = [1.0 if s == shape else 0.0 for s in shapes]
        else:
            keys[rig["open"]] = [OPEN_WIDE[s][0] for s in shapes]
            if rig.get("wide"):
                keys[rig["wide"]] = [OPEN_WIDE[s][1] for s in shapes]
        return keys, {"mode": "visemes", "shapes": "".join(shapes)}
    opened, wide = mouth_curves([(ln.start, ln.samples, ln.rate) for ln in lines], fps, frames)
    if held_from is not None:
        opened[held_from:] = 0.0
        wide[held_from:] = 0.0
    keys[rig["open"]] = [round(float(v), 4) for v in opened]
    if rig.get("wide"):
        keys[rig["wide"]] = [round(float(v), 4) for v in wide]
    return keys, {"mode": "loudness",
                  "shapes": "".join(REST if v < 0.05 else "?" for v in opened)}

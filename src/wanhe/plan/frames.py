"""Frame ranges: parse `1-48`, `1,5,10-20`, `1-100x5`; check them against a scene; chunk them.

Pure functions. Errors are `FrameSpecError` with a message that names the problem and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_PART = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*(?:x\s*(\d+)\s*)?)?$")
_HELP = "use e.g. 1-48, 1,5,10-20 or 1-100x5 (every 5th frame)"
MAX_FRAMES = 1_000_000


class FrameSpecError(ValueError):
    """A frame range the user typed is malformed or outside the scene."""


def parse_frames(spec: str) -> list[int]:
    """Frames named by `spec`, sorted, each once.

    >>> parse_frames("1-5x2,10")
    [1, 3, 5, 10]
    """
    if not spec or not spec.strip():
        raise FrameSpecError(f"empty frame range — {_HELP}")
    frames: set[int] = set()
    for part in spec.split(","):
        match = _PART.match(part)
        if match is None:
            raise FrameSpecError(f"malformed frame range {part.strip()!r} — {_HELP}")
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else start
        step = int(match.group(3)) if match.group(3) is not None else 1
        if end < start:
            raise FrameSpecError(
                f"frame range {part.strip()!r} runs backwards — write it low to high, "
                f"e.g. {end}-{start}"
            )
        if step < 1:
            raise FrameSpecError(f"step in {part.strip()!r} must be at least 1 — {_HELP}")
        if (end - start) // step + 1 + len(frames) > MAX_FRAMES:
            raise FrameSpecError(f"frame range {spec!r} names more than {MAX_FRAMES:,} frames")
        frames.update(range(start, end + 1, step))
    return sorted(frames)


def check_frames_in_scene(frames: Sequence[int], scene_start: int, scene_end: int) -> None:
    """Raise if any frame lies outside the scene's own range."""
    outside = [f for f in frames if f < scene_start or f > scene_end]
    if outside:
        shown = ", ".join(str(f) for f in outside[:5]) + (" …" if len(outside) > 5 else "")
        raise FrameSpecError(
            f"frame(s) {shown} outside the scene's range {scene_start}-{scene_end} — "
            f"pick frames inside it, or change the scene's frame range in Blender"
        )


def scene_frames(scene_start: int, scene_end: int, step: int = 1) -> list[int]:
    """The scene's own frame range (the default when the user names none)."""
    return list(range(scene_start, scene_end + 1, max(1, step)))


def format_frames(frames: Sequence[int]) -> str:
    """Compact text for a list of frames: [1,2,3,7] -> '1-3,7'."""
    out: list[str] = []
    ordered = sorted(set(frames))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def chunk_frames(frames: Sequence[int], size: int) -> list[list[int]]:
    """Consecutive groups of at most `size` frames, in order."""
    if size < 1:
        raise FrameSpecError("chunk size must be at least 1")
    return [list(frames[i : i + size]) for i in range(0, len(frames), size)]


def expand_output_pattern(pattern: str, frame: int) -> str:
    """Blender's convention: a run of `#` is the frame number zero-padded to its length.

    Without any `#`, Blender appends the frame number padded to 4 digits.
    """
    runs = list(re.finditer(r"#+", pattern))
    if not runs:
        return f"{pattern}{frame:04d}"
    last = runs[-1]
    width = len(last.group(0))
    number = f"{frame:0{width}d}" if frame >= 0 else f"-{-frame:0{width - 1}d}"
    return pattern[: last.start()] + number + pattern[last.end() :]

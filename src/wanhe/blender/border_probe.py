"""Are Cycles border renders of this scene exact? A tiny probe, rendered whole and as two tiles.

Some scene features make a border render differ from the same pixels of the whole frame
(docs/tiles.md: volumes, path guiding, a render time limit). The probe renders one frame at
``PROBE_WIDTH`` pixels wide and ``PROBE_SAMPLES`` samples (adaptive sampling off — its
overscan is sized by rule, wanhe.plan.overscan), once whole and as its left and right halves
with no overscan, and compares them bit for bit. It takes a few tiny renders in a warm Blender.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

PROBE_WIDTH = 64
PROBE_SAMPLES = 8
PROBE_VERSION = 1  # bump when the probe changes: cached answers are keyed on it


@dataclass(frozen=True, slots=True)
class BorderProbe:
    exact: bool
    max_diff: float
    size: tuple[int, int]
    samples: int
    frame: int
    wall_s: float
    hints: tuple[str, ...] = ()  # scene features known to make borders inexact

    def why_not(self) -> str:
        """Why tiles would not be exact, in a clause ('' when they are)."""
        if self.exact:
            return ""
        found = f" — the scene has {', '.join(self.hints)}" if self.hints else ""
        return (f"a {self.size[0]}x{self.size[1]} probe's tiles differ from its whole frame by "
                f"up to {self.max_diff:.3g}{found}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"] = list(self.size)
        data["hints"] = list(self.hints)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BorderProbe:
        return cls(bool(data["exact"]), float(data["max_diff"]),
                   (int(data["size"][0]), int(data["size"][1])), int(data["samples"]),
                   int(data["frame"]), float(data["wall_s"]), tuple(data.get("hints") or ()))


def border_hints(
    *, volumes: list[str] | tuple[str, ...] = (), path_guiding: bool = False,
    time_limit: float = 0.0,
) -> tuple[str, ...]:
    """The scene features that made border renders inexact when measured (docs/tiles.md)."""
    hints: list[str] = []
    if volumes:
        shown = ", ".join(volumes[:3]) + (" …" if len(volumes) > 3 else "")
        hints.append(f"volumes ({shown})")
    if path_guiding:
        hints.append("path guiding on")
    if time_limit > 0:
        hints.append(f"a {time_limit:g} s render time limit")
    return tuple(hints)


def probe_size(resolution_x: int, resolution_y: int) -> tuple[int, int]:
    """The probe's size: PROBE_WIDTH wide (or the frame's width if smaller), same aspect."""
    width = min(PROBE_WIDTH, max(2, resolution_x))
    height = max(2, round(width * resolution_y / max(1, resolution_x)))
    return width, height


def probe_borders(
    blender: Any, *, scene: str, frame: int, resolution: tuple[int, int],
    camera: str | None = None, threads: int | None = None, hints: tuple[str, ...] = (),
    scratch: Path | None = None,
) -> BorderProbe:
    """Render the probe in `blender` (a BlenderProcess) and compare tiles with the whole.
    `scratch`: where its renders go (a sandboxed Blender's own writable folder)."""
    from wanhe.blender.protocol import RenderRequest
    from wanhe.imaging.exr import read_layers
    from wanhe.plan.tiles import TileGrid, plan_tiles

    started = time.monotonic()
    width, height = probe_size(*resolution)
    common: dict[str, Any] = {
        "scene": scene, "frame": frame, "resolution": (width, height),
        "resolution_percentage": 100, "samples": PROBE_SAMPLES, "seed": 0, "camera": camera,
        "threads": threads, "adaptive_sampling": False,
    }
    worst = 0.0
    exact = True
    with tempfile.TemporaryDirectory(prefix="wanhe-border-", dir=scratch) as tmp:
        if scratch is not None:  # the sandbox's user writes the renders
            os.chown(tmp, scratch.stat().st_uid, scratch.stat().st_gid)
        whole_path = Path(tmp) / "whole.exr"
        _render(blender, RenderRequest(output=str(whole_path), **common))
        whole = read_layers(whole_path).channels
        for tile in plan_tiles(width, height, TileGrid(2, 1), overscan=0):
            out = Path(tmp) / f"tile{tile.index}.exr"
            _render(blender, RenderRequest(output=str(out), border=tile.border(width, height),
                                           expected_size=tile.render_size, **common))
            got = read_layers(out).channels
            x0, y0, x1, y1 = tile.core_box
            for name, pixels in whole.items():
                if name not in got:
                    continue
                part = pixels[y0:y1, x0:x1]
                if not np.array_equal(got[name], part, equal_nan=True):
                    exact = False
                    diff = np.abs(got[name].astype(np.float64) - part)
                    worst = max(worst, float(np.nanmax(diff)))
    return BorderProbe(exact, worst, (width, height), PROBE_SAMPLES, frame,
                       time.monotonic() - started, hints if not exact else ())


def _render(blender: Any, request: Any) -> None:
    reply = blender.render(request)
    if not reply.ok:
        raise RuntimeError(f"the border probe's render failed: {reply.error}")


def check_scene_borders(
    *, scene: Path, frame: int, resolution: tuple[int, int], camera: str | None,
    hints: tuple[str, ...] = (), blender: str | None = None, process: Any = None,
    cache_dir: Path | None = None, digest: str | None = None, scratch: Path | None = None,
) -> BorderProbe:
    """:func:`probe_borders`, cached in `cache_dir` per scene content (`digest`), frame, camera
    and size: running the same job again reuses the answer. `process`: a warm BlenderProcess
    (left running); else one is started for the probe."""
    import hashlib
    import json

    cache: Path | None = None
    if cache_dir is not None and digest is not None:
        basis = f"border:{PROBE_VERSION}:{digest}:{frame}:{camera}:{probe_size(*resolution)}"
        cache = cache_dir / f"border-{hashlib.sha256(basis.encode()).hexdigest()[:32]}.json"
        try:
            return BorderProbe.from_dict(json.loads(cache.read_text()))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            pass  # none yet, or unreadable: probe again
    from wanhe.blender.runner import BlenderProcess

    own = process is None
    bp = BlenderProcess(blender) if own else process
    try:
        result = probe_borders(bp, scene=str(scene), frame=frame, resolution=resolution,
                               camera=camera, hints=hints, scratch=scratch)
    finally:
        if own:
            bp.close()
    if cache is not None:
        from wanhe.imaging.atomic import atomic_write

        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(cache) as tmp:
            tmp.write_text(json.dumps(result.to_dict()))
    return result

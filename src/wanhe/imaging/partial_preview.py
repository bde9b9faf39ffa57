"""Progressive preview: the frame at the samples finished so far, while its chunks render.

Each finished sample-chunk render task calls :func:`write_partial_preview` with the frame's
plan (every tile's chunk files and their sample counts). Chunks that exist are merged
(sample-weighted, as the final merge does), tiles are put in place (tiles with no finished
chunk stay black) and an 8-bit sRGB PNG is written atomically. Chunks of one frame run on
different workers, so each of them writes the preview from what is on disk; the last writer
wins and a preview is never half-written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wanhe.imaging.atomic import atomic_write
from wanhe.imaging.exr import read_layers
from wanhe.imaging.preview import to_display_8bit

__all__ = ["write_partial_preview"]


def write_partial_preview(plan: dict[str, Any]) -> dict[str, Any]:
    """``plan`` = ``{"output", "width", "height", "placements": [{"paths", "samples", "src",
    "dst"}]}`` (the assemble task's placements). Returns what it wrote and how many samples
    the least advanced tile has."""
    width, height = int(plan["width"]), int(plan["height"])
    canvas = np.zeros((height, width, 3), dtype=np.float32)
    done: list[int] = []
    total = 0
    for place in plan["placements"]:
        pairs = list(zip(place["paths"], place["samples"], strict=True))
        total = max(total, sum(int(s) for _, s in pairs))
        present = [(Path(p), int(s)) for p, s in pairs if Path(p).is_file()]
        done.append(sum(s for _, s in present))
        if not present:
            continue
        acc = np.zeros_like(read_layers(present[0][0]).rgb("Combined"), dtype=np.float64)
        for path, count in present:
            acc += read_layers(path).rgb("Combined").astype(np.float64) * count
        merged = (acc / sum(s for _, s in present)).astype(np.float32)
        x0, y0, x1, y1 = (int(v) for v in place["src"])
        dx, dy = (int(v) for v in place["dst"])
        canvas[dy : dy + y1 - y0, dx : dx + x1 - x0] = merged[y0:y1, x0:x1]
    out = Path(plan["output"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        Image.fromarray(to_display_8bit(canvas)).save(tmp, format="PNG")
    return {"png": str(out), "samples_done": min(done) if done else 0, "samples_total": total}

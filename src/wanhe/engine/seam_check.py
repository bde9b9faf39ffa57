"""QC for tiled frames: do the tiles agree with what a whole frame gives at their seams?

For every interior tile border, one thin strip across it is rendered as a single border render
(`margin` pixels each side, the tiles' own samples and seed), so the seam's two pixel rows or
columns lie inside it, away from the strip's own edges. On a scene whose border renders are
exact those pixels must equal the assembled frame's bit for bit; tiles that disagree (volumes,
path guiding, a too-small overscan) differ there, and the frame is flagged with the
difference. Frames split into sample chunks too are not checked this way (their merge is a
weighted sum, not bit-exact).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from wanhe.engine.executors.base import TaskContext
from wanhe.engine.frame_steps import run_render


def check_seams_by_render(plan: dict[str, Any], blender: Any, log: Any) -> dict[str, Any]:
    """Render the strips and compare their seam pixels with the assembled frame.

    Returns {"checked": n, "disagree": [...], "max_diff": x, "cpu_s": s, "skipped": reason}."""
    from wanhe.imaging.exr import read_layers
    from wanhe.plan.tiles import box_border

    assembled_path = Path(plan["assembled"])
    if not assembled_path.is_file():
        return {"checked": 0, "disagree": [], "max_diff": 0.0, "cpu_s": 0.0,
                "skipped": f"the assembled frame {assembled_path.name} is gone"}
    frame = read_layers(assembled_path).channels
    width, height = int(plan["width"]), int(plan["height"])
    disagree: list[dict[str, Any]] = []
    worst = 0.0
    cpu_s = 0.0
    with tempfile.TemporaryDirectory(prefix="wanhe-seams-") as tmp:
        for i, strip in enumerate(plan["strips"]):
            x0, y0, x1, y1 = (int(v) for v in strip["box"])
            border = list(box_border((x0, y0, x1, y1), width, height))
            out = Path(tmp) / f"strip{i}.exr"
            done = run_render({**plan["render"], "output": str(out), "border": border,
                               "expected_size": [x1 - x0, y1 - y0], "partial": None},
                              blender, TaskContext(log=log))
            cpu_s += done.cpu_s
            got = read_layers(out).channels
            at = int(strip["at"])
            diff = 0.0
            for name, pixels in frame.items():
                if name not in got:
                    continue
                if strip["axis"] == "x":
                    mine = got[name][:, at - 1 - x0: at + 1 - x0]
                    theirs = pixels[y0:y1, at - 1: at + 1]
                else:
                    mine = got[name][at - 1 - y0: at + 1 - y0, :]
                    theirs = pixels[at - 1: at + 1, x0:x1]
                if not np.array_equal(mine, theirs, equal_nan=True):
                    delta = np.abs(mine.astype(np.float64) - theirs)
                    diff = max(diff, float(np.nanmax(delta)))
            if diff > 0:
                disagree.append({"axis": strip["axis"], "at": at, "max_diff": diff})
                worst = max(worst, diff)
    return {"checked": len(plan["strips"]), "disagree": disagree, "max_diff": worst,
            "cpu_s": cpu_s, "skipped": None}


def seam_reason(result: dict[str, Any]) -> str | None:
    """The flag's reason when tiles disagree with a whole render at their seams."""
    bad = result.get("disagree") or []
    if not bad:
        return None
    where = ", ".join(f"{'x' if b['axis'] == 'x' else 'y'}={b['at']}" for b in bad[:4])
    return (f"tiles disagree with a whole render at {len(bad)} of {result['checked']} seam(s) "
            f"({where}; up to {result['max_diff']:.3g}): this scene's border renders are not "
            "exact — render it with sample chunks (--split N) instead")

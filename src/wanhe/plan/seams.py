"""Where a tiled frame's seams are checked: one thin strip across every interior tile border,
and the plan the QC task carries to render them (`wanhe.engine.seam_check` renders and
compares them). Pure planning: the job type builds the plan when it compiles a job."""

from __future__ import annotations

from typing import Any

Box = tuple[int, int, int, int]
STRIP_MARGIN = 2  # pixels past the overscan that the strip extends on each side of a seam


def seam_strips(width: int, height: int, cores: list[Box], overscan: int) -> list[dict[str, Any]]:
    """One strip per interior tile border: its box, and the seam's two rows or columns."""
    margin = overscan + STRIP_MARGIN
    xs = sorted({b[0] for b in cores if b[0] > 0})
    ys = sorted({b[1] for b in cores if b[1] > 0})
    strips = [{"box": [max(0, x - margin), 0, min(width, x + margin), height], "axis": "x",
               "at": x} for x in xs]
    strips += [{"box": [0, max(0, y - margin), width, min(height, y + margin)], "axis": "y",
                "at": y} for y in ys]
    return strips


def seam_plan(
    render: dict[str, Any], assembled: str, width: int, height: int, cores: list[Box],
    overscan: int,
) -> dict[str, Any]:
    """The QC payload's `seams` entry: a render template (one tile's payload) and the strips."""
    template = {k: v for k, v in render.items()
                if k not in ("border", "expected_size", "output", "partial")}
    return {"render": template, "assembled": assembled, "width": width, "height": height,
            "strips": seam_strips(width, height, cores, overscan)}

"""A job's kept estimate against its actual cost so far, as the job's detail shows it
(`JobDetail.estimate`): the estimate and its range, what the frames have cost, the total
projected from the finished frames' actual / estimate, and the ETA at the rate the job has
been burning core-seconds (`wanhe.estimate.progress.versus_frames`)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from wanhe.api.schemas import FrameOut
from wanhe.model import JobState
from wanhe.store.store import JobRow


def estimate_vs_actual(job: JobRow, frames: list[FrameOut],
                       now: float | None = None) -> dict[str, Any] | None:
    """None when the job keeps no estimate (`spec["estimate"]`)."""
    from wanhe.estimate.progress import versus_frames

    kept = job.spec.get("estimate") if isinstance(job.spec, dict) else None
    if not isinstance(kept, dict):
        return None
    end = job.finished_at if job.finished_at is not None else (now or time.time())
    elapsed = max(0.0, end - job.started_at) if job.started_at is not None else 0.0
    seen = versus_frames(kept, ((f.frame, f.state == "done", f.core_seconds) for f in frames),
                         elapsed)
    running = job.state is JobState.RUNNING
    return {
        "core_hours": float(kept.get("core_hours") or 0.0),
        "core_hours_range": list(kept.get("core_hours_range") or []),
        "made_by": str(kept.get("made_by") or ""),
        "actual_core_hours": seen.actual_core_h,
        "projected_core_hours": seen.projected_core_h,
        "ratio": seen.ratio,
        "frames_done": sum(1 for f in frames if f.state == "done"),
        "eta_s": seen.eta_s if running else None,
        "text": replace(seen, eta_s=None).describe() if running else _final(seen),
    }


def _final(seen: Any) -> str:
    """The estimate against what a job that is not running has cost."""
    text = f"estimate {seen.estimate_core_h:.4g} core-h; actual {seen.actual_core_h:.4g}"
    if seen.estimate_core_h > 0 and seen.actual_core_h > 0:
        text += f" ({100 * (seen.actual_core_h / seen.estimate_core_h - 1):+.0f} %)"
    return text

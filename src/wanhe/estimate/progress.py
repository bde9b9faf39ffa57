"""A running job against its estimate: the projected total and finish time from the actual
cost so far, and whether an estimate fits a project's remaining budget.

The projection scales the estimate of the frames not yet done by how the done frames
compared with their own estimates (actual / estimated core-seconds), so a job that runs
20 % over keeps being projected 20 % over; the ETA is the remaining projected work over the
rate the job has been burning core-seconds at. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["BudgetVerdict", "Projection", "check_budget", "frame_estimates", "project",
           "versus_frames"]


@dataclass(frozen=True)
class Projection:
    estimate_core_h: float
    actual_core_h: float  # metered so far
    projected_core_h: float  # actual so far + the rest of the estimate, corrected
    ratio: float | None  # actual / estimate over the finished frames (None: none yet)
    eta_s: float | None  # seconds to the end at the rate so far (None: no rate yet)

    def describe(self) -> str:
        text = (f"estimate {self.estimate_core_h:.4g} core-h; actual so far "
                f"{self.actual_core_h:.4g}; projected {self.projected_core_h:.4g}")
        if self.ratio is not None:
            text += f" ({100 * (self.ratio - 1):+.0f} % on the finished frames)"
        if self.eta_s is not None:
            text += f"; ETA {self.eta_s / 60:.1f} min"
        return text


def project(
    frame_estimate_core_s: Mapping[int, float],
    done_actual_core_s: Mapping[int, float],
    *,
    running_actual_core_s: float = 0.0,
    elapsed_s: float = 0.0,
) -> Projection:
    """Project a job's total from its per-frame estimate and the actual core-seconds of the
    frames done (and what the running ones metered so far), and its ETA from the burn rate
    over ``elapsed_s``."""
    total_estimate = sum(frame_estimate_core_s.values())
    done_estimate = sum(frame_estimate_core_s.get(f, 0.0) for f in done_actual_core_s)
    done_actual = sum(done_actual_core_s.values())
    ratio = done_actual / done_estimate if done_estimate > 0 and done_actual > 0 else None
    rest = (total_estimate - done_estimate) * (ratio if ratio is not None else 1.0)
    actual = done_actual + running_actual_core_s
    projected = max(done_actual + rest, actual)
    eta = None
    if elapsed_s > 0 and actual > 0:
        eta = (projected - actual) / (actual / elapsed_s)
    return Projection(total_estimate / 3600, actual / 3600, projected / 3600, ratio, eta)


def frame_estimates(kept: Mapping[str, object], frames: Iterable[int]) -> dict[int, float]:
    """A kept estimate's core-seconds per frame of the job: its `frame_core_s` (frame →
    core-seconds, keys as JSON has them), or, where it has none, its `core_hours` spread
    evenly over `frames`."""
    wanted = list(frames)
    per_frame = kept.get("frame_core_s")
    if isinstance(per_frame, Mapping) and per_frame:
        return {int(f): float(s) for f, s in per_frame.items()}  # type: ignore[arg-type]
    total = float(kept.get("core_hours") or 0.0) * 3600  # type: ignore[arg-type]
    return {f: total / len(wanted) for f in wanted} if wanted else {}


def versus_frames(
    kept: Mapping[str, object], frames: Iterable[tuple[int, bool, float]], elapsed_s: float,
) -> Projection:
    """A job's kept estimate against its frames as they stand — (frame, done, actual
    core-seconds so far) — after `elapsed_s` of running: `project()` with the done frames'
    actual cost and the unfinished frames' metered so far (the ETA is the burn rate's)."""
    rows = list(frames)
    estimate = frame_estimates(kept, (f for f, _done, _s in rows))
    done = {f: s for f, finished, s in rows if finished}
    running = sum(s for _f, finished, s in rows if not finished)
    return project(estimate, done, running_actual_core_s=running, elapsed_s=elapsed_s)


@dataclass(frozen=True)
class BudgetVerdict:
    fits: bool
    message: str


def check_budget(
    estimate_core_h: float, high_core_h: float, budget_core_h: float | None, used_core_h: float,
) -> BudgetVerdict:
    """Whether a job estimated at ``estimate_core_h`` (up to ``high_core_h``) fits what is left
    of a project's budget; a project without a budget always fits."""
    if budget_core_h is None:
        return BudgetVerdict(True, "the project has no core-hour budget")
    left = max(budget_core_h - used_core_h, 0.0)
    if estimate_core_h > left:
        return BudgetVerdict(False, (
            f"the estimate, {estimate_core_h:.4g} core-hours, is more than the project has "
            f"left ({left:.4g} of {budget_core_h:.4g}) — raise the budget (wanhe project "
            f"budget) or render fewer frames"))
    if high_core_h > left:
        return BudgetVerdict(True, (
            f"the estimate, {estimate_core_h:.4g} core-hours, fits the {left:.4g} left, but "
            f"its high end ({high_core_h:.4g}) does not"))
    return BudgetVerdict(True, f"fits: {estimate_core_h:.4g} of {left:.4g} core-hours left")

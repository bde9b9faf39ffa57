"""PNG plots of a simulation (matplotlib, Agg backend). Optional: without matplotlib the
functions raise `PlotsUnavailable` with a one-line explanation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wanhe.sim.metrics import SimReport, SweepPoint

__all__ = ["PlotsUnavailable", "plot_scheduler_cost", "plot_utilisation"]


class PlotsUnavailable(RuntimeError):
    pass


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise PlotsUnavailable(
            "plots need matplotlib: pip install matplotlib (or leave out --plots)"
        ) from e
    return plt


def plot_utilisation(report: SimReport, path: Path, title: str | None = None) -> Path:
    """Busy and available cores over time, with the lower bound marked."""
    plt = _pyplot()
    hours = [t / 3600 for t, _, _ in report.timeline]
    busy = [b for _, b, _ in report.timeline]
    up = [u for _, _, u in report.timeline]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    ax.fill_between(hours, busy, step="post", alpha=0.5, label="busy cores")
    ax.step(hours, up, where="post", color="black", linewidth=1, label="cores in the pool")
    ax.axvline(report.lower_bound_s / 3600, color="red", linestyle="--", label="lower bound")
    ax.axvline(report.makespan_s / 3600, color="green", linestyle=":", label="makespan")
    ax.set_xlabel("hours")
    ax.set_ylabel("cores")
    ax.set_title(
        title
        or (
            f"{report.machines:,} machines × {report.cores} cores, {report.frames:,} frames: "
            f"utilisation {report.utilisation:.1%}, makespan/LB {report.ratio:.3f}"
        ),
        fontsize=9,
    )
    ax.legend(loc="lower center", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_scheduler_cost(points: list[SweepPoint], path: Path) -> Path:
    """µs per scheduling decision vs farm size (log x), with each repeat as a dot."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    xs = [p.machines for p in points]
    ax.plot(xs, [p.us_per_decision for p in points], marker="o", label="median µs / decision")
    for p in points:
        ax.scatter(
            [p.machines] * len(p.us_per_decision_runs), p.us_per_decision_runs, s=8, color="gray"
        )
    ax.axhline(100, color="red", linestyle="--", label="target: 10,000 decisions/s")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("machines")
    ax.set_ylabel("µs per pick() decision")
    ax.set_title("wanhe.sched policy cost vs farm size (inside pick only)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

"""`wanhe story render`: check a storyboard, make (or resume) its job in the local database and
run it on this machine's cores (or a Ray cluster) with the farm's own dispatcher.

Every check runs before the job exists; a job for the same storyboard and files resumes (its
finished tasks are not run again), and voices made by any earlier run are reused from the
cache (`~/.wanhe/cache/story`), so a changed line re-synthesizes that line alone.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.config import Settings
from wanhe.model import JobState
from wanhe.store.usage import core_seconds
from wanhe.story.load import load_storyboard

if TYPE_CHECKING:
    from wanhe.runs.local import LocalJob
    from wanhe.store.store import JobRow, Store, TaskRow


@dataclass(slots=True)
class StoryOutcome:
    job: JobRow
    output: Path
    resumed: bool
    tasks_total: int
    tasks_skipped: int
    wall_s: float
    attempts: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[TaskRow] = field(default_factory=list)

    def synthesized(self) -> list[str]:
        """Keys of the voice tasks that synthesized (not taken from the cache) in this run."""
        return sorted(t.key for t in self.tasks if t.kind == "voice"
                      and t.output.get("cached") is False and t.key in self._ran())

    def _ran(self) -> set[str]:
        return {a["key"] for a in self.attempts if a.get("outcome") == "ok"}


def core_hours_by_kind(attempts: list[dict[str, Any]]) -> dict[str, float]:
    hours: dict[str, float] = {}
    for a in attempts:
        hours[a["kind"]] = hours.get(a["kind"], 0.0) + core_seconds(a) / 3600.0
    return dict(sorted(hours.items()))


def prepare(storyboard: Path, output: Path, cache: Path,
            db_url: str) -> tuple[Any, dict[str, Any], Any]:
    """Load and check the storyboard (raises StoryError); (board, facts, layout)."""
    from wanhe.localrender import ensure_writable_folder
    from wanhe.story.checks import check_storyboard, local_models
    from wanhe.story.plan import Layout

    board = load_storyboard(storyboard)
    facts = check_storyboard(board, storyboard.parent, models=local_models(db_url))
    ensure_writable_folder(output)
    return board, facts, Layout(output, output / ".work", cache)


def open_or_resume_story(store: Store, storyboard: Path, board: Any, facts: dict[str, Any],
                   layout: Any) -> LocalJob:
    import hashlib

    from wanhe.runs.local import NewJob, open_or_resume
    from wanhe.story.plan import compile_with_cache, deliverables, fingerprint

    key = hashlib.sha256(f"{fingerprint(board, facts)}:{layout.output}".encode()).hexdigest()

    def new_job() -> NewJob:
        spec = {"storyboard": str(storyboard), "board": board.model_dump(mode="json"),
                "facts": facts, "output": str(layout.output), "work": str(layout.work),
                "cache": str(layout.cache), "deliverables": deliverables(layout, board)}
        return NewJob(name=storyboard.name, kind="story", spec=spec,
                      tasks=compile_with_cache(board, storyboard.parent, facts, layout),
                      work_dir=str(layout.work))

    def redo(job: JobRow, rows: list[TaskRow]) -> list[int]:
        """A finished reel whose outputs were deleted since: its clips and reel again."""
        missing = [p for p in job.spec.get("deliverables", []) if not Path(p).exists()]
        if job.state is not JobState.DONE or not missing:
            return []
        return [t.id for t in rows if t.kind in ("clip", "reel")]

    return open_or_resume(store, key, new_job, redo=redo)


def render_story(
    storyboard: Path,
    output: Path,
    *,
    settings: Settings,
    workers: int | None = None,
    on_prepared: Callable[[JobRow, bool, int, list[TaskRow]], None] | None = None,
    on_event: Callable[[Any], None] | None = None,
    burn_in: bool = False,
) -> StoryOutcome:
    """The whole of `wanhe story render`, minus the terminal. `burn_in`: as the storyboard's
    `film.burn_in: true` (shot, timecode and line drawn on the reels)."""
    from wanhe.runs.local import run_local_job
    from wanhe.store.store import Store

    started = time.monotonic()
    storyboard = storyboard.expanduser().resolve()
    output = output.expanduser().resolve()
    board, facts, layout = prepare(storyboard, output, settings.home / "cache" / "story",
                                   settings.db_url)
    if burn_in and not board.film.burn_in:
        board = board.model_copy(update={"film": board.film.model_copy(
            update={"burn_in": True})})
    store = Store(settings.db_url)
    try:
        local = open_or_resume_story(store, storyboard, board, facts, layout)
        job, resumed, done_before, tasks = (local.job, local.resumed, local.done_before,
                                            local.tasks)
        if on_prepared is not None:
            on_prepared(job, resumed, done_before, tasks)
        begun = time.time()
        run_local_job(store, local, settings=settings, threads=1,
                      workers=workers or os.cpu_count() or 1, on_event=on_event)
        final = store.job(job.id)
        assert final is not None
        attempts = store.attempts(job.id)
        rows = store.tasks(job.id)
        outcome = StoryOutcome(
            job=final, output=output, resumed=resumed, tasks_total=len(tasks),
            tasks_skipped=done_before, wall_s=time.monotonic() - started,
            attempts=[a for a in attempts if (a.get("started_at") or 0) >= begun - 1],
            tasks=rows)
        if final.state is JobState.DONE:
            _add_usage(output / "report.json", outcome, attempts)
        return outcome
    finally:
        store.dispose()


def _add_usage(path: Path, outcome: StoryOutcome, attempts: list[dict[str, Any]]) -> None:
    """The reel task wrote durations and overruns; the metering is the store's."""
    from wanhe.imaging.atomic import atomic_write

    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    report["job"] = outcome.job.id
    report["core_hours_by_kind"] = core_hours_by_kind(attempts)
    report["core_hours"] = sum(report["core_hours_by_kind"].values())
    report["voice_tasks"] = {
        "total": sum(1 for t in outcome.tasks if t.kind == "voice"),
        "synthesized_this_run": outcome.synthesized(),
    }
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")

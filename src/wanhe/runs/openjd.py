"""`wanhe run`: an OpenJD template or job bundle run on this machine's cores, like `wanhe render`
for scenes — the same store (resume), dispatcher, job type and executor as the farm, with
workers of this process (no Ray, no server). Sessions run as the user who runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.config import Settings
from wanhe.jobtypes.base import JobFolder
from wanhe.jobtypes.openjd import KIND, compile_plan, write_job_file
from wanhe.openjd.localrun import Source, ask_plan
from wanhe.openjd.template import Plan, TemplateError
from wanhe.store.usage import core_seconds

if TYPE_CHECKING:
    from wanhe.store.store import Store


@dataclass(slots=True)
class RunOutcome:
    job: Any
    plan: Plan
    resumed: bool
    tasks_total: int
    tasks_skipped: int
    wall_s: float
    attempts: list[dict[str, Any]]
    logs: Path | None = None
    """The folder holding this run's task logs."""

    @property
    def core_seconds(self) -> float:
        return sum(core_seconds(a) for a in self.attempts)


def local_slots(made: Plan, cores: int, workers: int | None) -> tuple[int, int]:
    """(workers, cores each): enough cores per worker for the greediest step."""
    from wanhe.openjd.hostreq import resources

    need = max((resources(s.host).cpus for s in made.steps), default=1.0)
    each = max(1, min(cores, int(need)))
    return (workers or max(1, cores // each)), each


def run(
    source: Source, *, settings: Settings, workers: int | None = None,
    on_prepared: Callable[[Plan, Any, bool, int, list[Any]], None] | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> RunOutcome:
    from wanhe.openjd import hostpool
    from wanhe.store.store import Store

    started = time.monotonic()
    planned = ask_plan(source)
    try:
        store = Store(settings.db_url)  # opened while the spawner plans (`ask_plan`)
        try:
            return _run(source, planned(), store, started, settings=settings,
                        workers=workers, on_prepared=on_prepared, on_event=on_event)
        finally:
            store.dispose()
    finally:
        hostpool.close()  # hosts started ahead for workers that never had a session


def _run(
    source: Source, made: Plan, store: Store, started: float, *, settings: Settings,
    workers: int | None,
    on_prepared: Callable[[Plan, Any, bool, int, list[Any]], None] | None,
    on_event: Callable[[Any], None] | None,
) -> RunOutcome:
    from wanhe.openjd.hostreq import FarmFacts, unmet
    from wanhe.runs.local import NewJob, open_or_resume, run_local_job

    farm = FarmFacts(max_cpus=float(os.cpu_count() or 1))
    for step in made.steps:
        why = unmet(step.host, farm)
        if why is not None:
            raise TemplateError("template", f"step {step.name!r} cannot run on this machine: "
                                f"its host requirement {why}")
    digest = hashlib.sha256(json.dumps(made.job_file(), sort_keys=True).encode()).hexdigest()
    root = settings.storage_root / "work" / f"openjd-{digest[:16]}"
    folder = JobFolder(input=root / "input", output=root / "output", work=root / "work")
    tasks, key = compile_plan(made, folder, rules=[], sessions=root / "sessions")
    write_job_file(made, folder)
    local = open_or_resume(store, digest, lambda: NewJob(
        name=made.job_name, kind=KIND,
        spec={"name": made.job_name, "job": key, "template": str(source.template_path),
              "max_attempts": 1, "parameters": made.parameters},
        tasks=tasks, work_dir=str(folder.work)))
    if not local.resumed:  # a new job here (a new database): nothing of an old run's
        _forget_old_run(root / "logs", tasks)
    if on_prepared is not None:
        on_prepared(made, local.job, local.resumed, local.done_before, local.tasks)
    count, each = local_slots(made, os.cpu_count() or 1, workers)
    # sessions run here: their paths are this machine's, whatever cluster is configured
    run_local_job(store, local, settings=settings, threads=each, workers=count,
                  on_event=on_event, log_root=root / "logs", join_cluster=False)
    final = store.job(local.job.id)
    return RunOutcome(final, made, local.resumed, len(local.tasks), local.done_before,
                      time.monotonic() - started, store.attempts(local.job.id),
                      root / "logs" / f"job{local.job.id}")


def _forget_old_run(logs: Path, tasks: list[Any]) -> None:
    """Remove what an earlier run of the same template left in its folder (its task logs, its
    adaptive chunk ledgers) so this job's logs are its own."""
    import shutil

    shutil.rmtree(logs, ignore_errors=True)
    for task in tasks:
        ledger = task.payload.get("ledger") if isinstance(task.payload, dict) else None
        if ledger:
            Path(ledger).unlink(missing_ok=True)


def write_report(path: Path, outcome: RunOutcome, settings: Settings) -> None:
    from wanhe.imaging.atomic import atomic_write
    from wanhe.localrender import attempt_records
    from wanhe.store.store import Store

    store = Store(settings.db_url, migrate=False)
    try:
        records = attempt_records(store, outcome.job.id)
        tasks = [{"key": t.key, "kind": t.kind, "state": t.state.value,
                  "status": t.output.get("status"), "error": t.error}
                 for t in store.tasks(outcome.job.id)]
    finally:
        store.dispose()
    body = {
        "job": outcome.job.id, "name": outcome.plan.job_name, "state": outcome.job.state.value,
        "resumed": outcome.resumed, "steps": [s.name for s in outcome.plan.steps],
        "tasks": tasks, "attempts": records,
        "totals": {"wall_s": outcome.wall_s, "attempts": len(records),
                   "core_seconds": sum(r["core_seconds"] for r in records),
                   "core_hours": sum(r["core_seconds"] for r in records) / 3600,
                   "cpu_seconds": sum(r["cpu_s"] or 0 for r in records),
                   "gpu_hours": sum(r["gpu_seconds"] for r in records) / 3600},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(body, indent=2, default=str))

"""`wanhe gen …` without `--server`: the job in the local database (project `local`), run by
a worker of this process on every core, as `wanhe render` runs a scene. The same job type,
executors, store and dispatcher as the farm."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanhe.ai import catalog
from wanhe.ai.capacity import detect
from wanhe.ai.spec import GenSpec
from wanhe.config import Settings
from wanhe.jobtypes.base import IntakeContext, JobFolder
from wanhe.jobtypes.registry import job_type
from wanhe.store.store import JobRow, Store


@dataclass(slots=True)
class GenOutcome:
    job: JobRow
    results: dict[str, Any]
    wall_s: float
    resumed: bool


def local_context(store: Store, project_id: int) -> IntakeContext:
    return IntakeContext(models=lambda name: catalog.find_model(store, name, project_id),
                         capacity=lambda: detect(0), local_paths=True)


def run_local(
    spec: GenSpec, *, settings: Settings, output: Path, name: str = "gen",
    on_event: Callable[[Any], None] | None = None,
    on_job: Callable[[JobRow, list[Any]], None] | None = None,
) -> GenOutcome:
    from wanhe.ai.results import job_results
    from wanhe.runs.local import LOCAL_PROJECT, NewJob, open_or_resume, run_local_job

    started = time.monotonic()
    output = output.expanduser().resolve()
    store = Store(settings.db_url)
    try:
        project = store.ensure_project(LOCAL_PROJECT)
        kind = job_type("gen")
        kind.check(spec)
        inspected = kind.inspect(local_context(store, project.id), None, spec)
        output.mkdir(parents=True, exist_ok=True)
        folder = JobFolder(input=output, output=output, work=output / ".work")
        compiled = kind.compile(spec, inspected, None, folder)
        local = open_or_resume(store, compiled.fingerprint, lambda: NewJob(
            name=name, kind="gen", spec=compiled.spec, tasks=compiled.tasks,
            work_dir=str(folder.work)))
        if on_job is not None:
            on_job(local.job, local.tasks)
        # one worker given every core, as before: candidates run one after another
        run_local_job(store, local, settings=settings, threads=os.cpu_count() or 1, workers=1,
                      on_event=on_event, join_cluster=False)
        final = store.job(local.job.id)
        assert final is not None
        return GenOutcome(final, job_results(store, local.job.id),
                          time.monotonic() - started, local.resumed)
    finally:
        store.dispose()

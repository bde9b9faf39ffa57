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
from wanhe.jobtypes.registry import job_type, retry_rules
from wanhe.model import JobState
from wanhe.store.store import JobRow, Store

LOCAL_PROJECT = "local"


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
    from wanhe.engine.dispatcher import Dispatcher
    from wanhe.engine.handles import LocalWorker

    started = time.monotonic()
    output = output.expanduser().resolve()
    store = Store(settings.db_url)
    dispatcher: Dispatcher | None = None
    try:
        project = store.ensure_project(LOCAL_PROJECT)
        kind = job_type("gen")
        kind.check(spec)
        inspected = kind.inspect(local_context(store, project.id), None, spec)
        output.mkdir(parents=True, exist_ok=True)
        folder = JobFolder(input=output, output=output, work=output / ".work")
        compiled = kind.compile(spec, inspected, None, folder)
        existing = store.find_job(project.id, compiled.fingerprint)
        resumed = existing is not None
        if existing is None:
            job_id = store.create_job(
                project_id=project.id, name=name, kind="gen", spec=compiled.spec,
                fingerprint=compiled.fingerprint, tasks=compiled.tasks, priority=50,
                submitter=os.environ.get("USER", ""), work_dir=str(folder.work),
            )
        else:
            job_id = existing.id
            store.recover_interrupted([job_id], rules_for=retry_rules)
            if existing.state in (JobState.FAILED, JobState.CANCELLED):
                store.retry_failed(job_id)
        job = store.job(job_id)
        assert job is not None
        if on_job is not None:
            on_job(job, store.tasks(job_id))
        if not job.state.is_final:
            threads = os.cpu_count() or 1
            dispatcher = Dispatcher(
                store, threads=threads, workers=1, log_root=settings.storage_root / "logs",
                on_event=on_event, local_workers=[LocalWorker("w0")], use_ray=False,
            )
            dispatcher.run_jobs([job_id])
        final = store.job(job_id)
        assert final is not None
        return GenOutcome(final, job_results(store, job_id), time.monotonic() - started,
                          resumed)
    finally:
        if dispatcher is not None:
            dispatcher.close()
        store.dispose()

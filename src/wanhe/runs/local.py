"""One job of any kind on this machine: found by its fingerprint in the local project and
resumed, or created; run to the end by one dispatcher.

Resuming is the same for every kind: tasks a killed run left running go back to the queue,
finished tasks whose outputs went missing run again (`redo`), a failed or cancelled job's
unfinished tasks are queued again, and a paused job is queued (running the command again is
the way to resume it). Finished tasks never run twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.config import Settings
from wanhe.jobtypes.registry import retry_rules
from wanhe.lifecycle import resume_plan
from wanhe.model import TaskSpec, TaskState

if TYPE_CHECKING:
    from wanhe.engine.cluster import EmbeddedStart
    from wanhe.engine.dispatcher import Dispatcher
    from wanhe.engine.handles import LocalWorker
    from wanhe.store.store import JobRow, Store, TaskRow

LOCAL_PROJECT = "local"


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a local job is made of, when none with its fingerprint exists yet."""

    name: str
    kind: str
    spec: dict[str, Any]
    tasks: Sequence[TaskSpec]
    work_dir: str


@dataclass(frozen=True, slots=True)
class LocalJob:
    """The job a local run drives: `resumed` when it existed before this run."""

    job: JobRow
    resumed: bool
    done_before: int  # tasks finished before this run (after any redo)
    tasks: list[TaskRow]

    @property
    def unfinished(self) -> bool:
        return self.done_before < len(self.tasks)


def open_or_resume(
    store: Store,
    fingerprint: str,
    new_job: Callable[[], NewJob],
    *,
    redo: Callable[[JobRow, list[TaskRow]], Sequence[int]] | None = None,
) -> LocalJob:
    """The local project's job with this fingerprint, resumed (see the module); else the one
    `new_job()` describes, created (it is called only then: compiling may be costly).

    `redo(job, tasks)`: ids of finished tasks to run again (their outputs went missing).
    """
    project = store.ensure_project(LOCAL_PROJECT)
    existing = store.find_job(project.id, fingerprint)
    if existing is None:
        made = new_job()
        job_id = store.create_job(
            project_id=project.id, name=made.name, kind=made.kind, spec=made.spec,
            fingerprint=fingerprint, tasks=made.tasks, priority=50,
            submitter=os.environ.get("USER", ""), work_dir=made.work_dir,
        )
    else:
        job_id = existing.id
        resume(store, existing, redo=redo)
    job = store.job(job_id)
    assert job is not None
    tasks = store.tasks(job_id)
    done = sum(1 for t in tasks if t.state is TaskState.DONE)
    return LocalJob(job, existing is not None, done, tasks)


def resume(
    store: Store,
    job: JobRow,
    *,
    redo: Callable[[JobRow, list[TaskRow]], Sequence[int]] | None = None,
) -> None:
    """Make an existing local job runnable again, its finished work kept (see the module)."""
    store.recover_interrupted([job.id], rules_for=retry_rules)
    stale = list(redo(job, store.tasks(job.id))) if redo is not None else []
    store.restart_job(job.id, resume_plan(job.state, stale))


def local_workers(count: int, tools: Mapping[str, str]) -> list[LocalWorker]:
    """`count` workers in this process (no Ray), named w0, w1, …, holding `tools`."""
    from wanhe.engine.handles import LocalWorker

    return [LocalWorker(f"w{n}", tools) for n in range(count)]


def make_dispatcher(
    store: Store,
    *,
    settings: Settings,
    threads: int,
    workers: int | None,
    on_event: Callable[[Any], None] | None = None,
    local_workers: Sequence[LocalWorker] = (),
    ray_start: EmbeddedStart | None = None,
    use_ray: bool = True,
    log_root: Path | None = None,
    **farm: Any,
) -> Dispatcher:
    """The one place a dispatcher is built, for local runs and the farm service (`farm`: its
    own options, elastic and caps)."""
    from wanhe.engine.dispatcher import Dispatcher

    return Dispatcher(
        store, threads=threads, workers=workers, tools=settings.worker_tools(),
        log_root=log_root or settings.storage_root / "logs", on_event=on_event,
        local_workers=local_workers, ray_start=ray_start, use_ray=use_ray, **farm,
    )


def run_to_end(
    dispatcher: Dispatcher, job_ids: list[int], *, warm: tuple[str, str] | None = None
) -> None:
    """Drive the jobs until each is finished or stopped (paused, cancelled); the dispatcher
    is closed either way, Ctrl-C included."""
    try:
        dispatcher.run_jobs(job_ids, warm=warm)
    finally:
        dispatcher.close()


def run_local_job(
    store: Store,
    local: LocalJob,
    *,
    settings: Settings,
    threads: int,
    workers: int,
    on_event: Callable[[Any], None] | None = None,
    log_root: Path | None = None,
    join_cluster: bool = True,
) -> None:
    """Run what is unfinished of `local` on `workers` workers of this process, or on the Ray
    cluster at `settings.ray_address` when one is set (and `join_cluster`)."""
    if not local.unfinished:
        return
    joined = join_cluster and settings.ray_address is not None
    if joined:
        from wanhe.engine import cluster

        cluster.connect(settings.ray_address)
    dispatcher = make_dispatcher(
        store, settings=settings, threads=threads, workers=workers, on_event=on_event,
        local_workers=[] if joined else local_workers(workers, settings.worker_tools()),
        use_ray=joined, log_root=log_root,
    )
    run_to_end(dispatcher, [local.job.id])

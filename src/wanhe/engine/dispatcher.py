"""The dispatcher: keeps every worker slot busy with the task the policy picks, on Ray.

Ray decides where, wanhe decides what. The dispatcher never floods Ray: it submits one task to
each idle worker actor, chosen by `sched.SchedulingPolicy`, records the attempt in the database
first, and records the outcome when the actor answers. A worker that dies (node lost, process
killed) loses its attempt, which is retried elsewhere, and is replaced.

The same dispatcher serves `wanhe render` (run until given jobs finish) and `wanhe serve`
(run until stopped, picking up jobs other processes put in the database). `wanhe render` may
also hand it local workers (`engine.handles.LocalWorker`) that take tasks from the first
second, while its embedded Ray is still starting; the Ray workers join once Ray is up.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.engine.handles import LocalWorker, RayWorker, WorkerHandle
from wanhe.model import AttemptOutcome, JobState, Resources, TaskKind, TaskState
from wanhe.sched.policy import QueuedTask, SchedulingPolicy
from wanhe.store.store import (
    JobRow,
    ProjectRow,
    ReadyTask,
    Store,
    StoreError,
    TaskRow,
    TrackedJob,
    Usage,
)

if TYPE_CHECKING:
    # Imported where used, not here: importing Ray costs 0.3-0.5 s, and a `wanhe render`
    # whose one worker takes every core never starts it.
    from wanhe.engine import cluster

log = logging.getLogger(__name__)

BLOCKLIST_AFTER = 3  # failures of one job's tasks on one node
LOST_RETRY_LIMIT = 6  # a task whose worker keeps dying is failed after this many losses
SYNC_INTERVAL_S = 0.5
# The safety net: a full resync this often, for a writer that changed the database without
# stamping the change (see `wanhe.store.tables` on change tracking).
FULL_SYNC_INTERVAL_S = 30.0
PROGRESS_INTERVAL_S = 1.0
_BIG_MEMORY = 1 << 50
_MAY_RUN = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.PAUSED})


class RayStartError(RuntimeError):
    """The embedded Ray, started in the background, failed to start."""


@dataclass(slots=True)
class Running:
    queued: QueuedTask
    task: TaskRow
    attempt_id: int
    slot: Slot
    future: Future[Any]
    started: float


@dataclass(slots=True)
class Slot:
    name: str
    worker: WorkerHandle
    cpus: float
    gpus: float = 0.0
    node: str = ""
    light: bool = False  # takes only tasks that reserve no cores (assemble, denoise, preview…)
    local: bool = False  # a worker of this process, not a Ray actor
    busy: Running | None = None
    progress: float = 0.0
    warm_scenes: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """What the dispatcher tells its observer (the CLI's progress bar, metrics)."""

    # "started", "finishing" (succeeded, not yet recorded), "done", "failed", "retry", "lost",
    # "cancelled", "progress"
    kind: str
    task: TaskRow
    job_id: int
    node: str = ""
    result: dict[str, Any] | None = None
    message: str = ""


EventSink = Callable[[TaskEvent], None]


def _metered_cores(slot: Slot, task: TaskRow) -> float:
    """Cores billed for an attempt: what the slot reserves, or one core for a light task."""
    return slot.cpus if task.resources.cpus > 0 else 1.0


class Dispatcher:
    def __init__(
        self,
        store: Store,
        *,
        threads: int = 1,
        workers: int | None = None,
        blender: str | None = None,
        log_root: Path,
        on_event: EventSink | None = None,
        local_workers: Sequence[LocalWorker] = (),
        ray_start: cluster.EmbeddedStart | None = None,
        use_ray: bool = True,
    ) -> None:
        """`local_workers`: render workers of this process, usable at once, each reserving
        `threads` cores beside Ray's. `ray_start`: Ray starting in the background; Ray's
        workers are made once it is up (without it, Ray must be up already). `use_ray=False`:
        no Ray at all; the local workers render and a local image worker does the rest."""
        self.store = store
        self.threads = threads
        self.requested_workers = workers
        self.blender = blender
        self.log_root = log_root
        self.on_event = on_event
        self.policy = SchedulingPolicy()
        self.slots: list[Slot] = [
            Slot(name=w.worker.name, worker=w, cpus=float(threads), node=w.worker.node(),
                 local=True)
            for w in local_workers
        ]
        self._ray_start = ray_start
        self._use_ray = use_ray
        self._ray_pool_started = False
        self._warm_scene: str | None = None
        self._pending: dict[Future[Any], Slot] = {}  # worker ready() -> slot not yet usable
        self._running: dict[Future[Any], Running] = {}  # run() -> running attempt
        self._queued: dict[int, QueuedTask] = {}  # task id -> what the policy holds
        self._queued_by_job: dict[int, set[int]] = {}  # job id -> its task ids in _queued
        self._job_cache: dict[int, JobRow] = {}
        # jobs whose ready tasks the policy mirrors -> the tasks revision that mirror reflects
        self._tasks_revision: dict[int, int] = {}
        self._revision = -1  # the database's change counter as the last sync read it
        self._scope: frozenset[int] | None = None  # the jobs this dispatcher runs; None: all
        self._blocked_messages: dict[int, str] = {}
        self._last_sync = 0.0
        self._last_full_sync = -math.inf
        self._last_progress = 0.0
        self._serial = 0
        self.poke_event = threading.Event()
        self.dispatch_latencies: list[float] = []
        self._ready_since: dict[int, float] = {}
        self._project_names: dict[int, str] = {}

    # ------------------------------------------------------------------ worker pool

    def pool_size(self) -> int:
        """Render workers wanted on Ray (beside the local ones)."""
        local = sum(1 for s in self.slots if s.local and not s.light)
        if self.requested_workers:
            return max(0, self.requested_workers - local)
        from wanhe.engine import cluster

        return max(0 if local else 1, int(cluster.total_cpus() // self.threads))

    def ray_up(self) -> bool:
        """Whether Ray can take workers now; raises RayStartError if its start failed."""
        start = self._ray_start
        if start is None or not start.done():
            return start is None
        if start.error is not None:
            raise RayStartError(f"could not start Ray: {start.error}") from start.error
        return True

    def start_pool(self, warm_scene: str | None = None) -> None:
        """Make the Ray workers the pool lacks (none while Ray is still starting)."""
        if warm_scene:
            self._warm_scene = warm_scene
        if not self._use_ray:
            if not any(s.light for s in self.slots):
                self.slots.append(self._local_slot(light=True))
            self._ray_pool_started = True
            return
        if not self.ray_up():
            return
        self._ray_pool_started = True
        warm_scene = warm_scene or self._warm_scene
        render_slots = [
            s for s in [*self.slots, *self._pending.values()] if not s.light and not s.local
        ]
        for _ in range(self.pool_size() - len(render_slots)):
            self._add_slot(warm_scene)
        if not any(s.light for s in [*self.slots, *self._pending.values()]):
            # Frame N assembles, denoises and previews while frame N+1 renders: these short
            # tasks reserve no cores and get a worker of their own (they are metered as 1 core).
            self._add_slot(light=True)

    def _next_slot(self, *, light: bool) -> tuple[str, float]:
        """A new slot's name and the cores it reserves: a render slot, or (light) one for
        image work."""
        self._serial += 1
        return (f"img{self._serial}", 0.0) if light else (f"w{self._serial}", float(self.threads))

    def _add_slot(self, warm_scene: str | None = None, *, light: bool = False) -> Slot:
        name, cpus = self._next_slot(light=light)
        from wanhe.engine import cluster

        worker = RayWorker(cluster.make_worker(name, cpus=cpus, blender=self.blender))
        slot = Slot(name=name, worker=worker, cpus=cpus, light=light)
        self._pending[worker.call("ready")] = slot
        if warm_scene:
            worker.call("warm", warm_scene)  # loads the scene before the first task
            slot.warm_scenes.add(warm_scene)
        return slot

    def _admit_pending(self, timeout: float = 0.0) -> None:
        if not self._pending:
            return
        done, _ = wait_for(list(self._pending), timeout=timeout)
        for future in done:
            slot = self._pending.pop(future)
            try:
                info = future.result()
            except Exception as exc:
                log.warning("worker %s failed to start: %s", slot.name, exc)
                continue
            slot.node = info["node"]
            self.slots.append(slot)
            log.info("worker %s ready on %s", slot.name, slot.node)

    def _local_slot(self, *, light: bool = False) -> Slot:
        """A fresh worker of this process: a render slot, or (light) one for image work."""
        name, cpus = self._next_slot(light=light)
        worker = LocalWorker(name, self.blender)
        return Slot(name=name, worker=worker, cpus=cpus, node=worker.worker.node(),
                    light=light, local=True)

    def _replace(self, slot: Slot) -> None:
        if slot in self.slots:
            self.slots.remove(slot)
        slot.worker.kill()
        if slot.local:
            fresh = self._local_slot(light=slot.light)
            fresh.cpus = slot.cpus
            self.slots.append(fresh)
        else:
            self._add_slot(light=slot.light)

    # ------------------------------------------------------------------ database -> policy

    def _job(self, job_id: int) -> JobRow:
        job = self._job_cache.get(job_id)
        if job is None:
            found = self.store.job(job_id)
            if found is None:
                raise StoreError(f"job {job_id} vanished")
            job = self._job_cache[job_id] = found
        return job

    def _queue(self, task: TaskRow | ReadyTask, job: JobRow) -> None:
        if task.id in self._queued:
            return
        project = self._project_name(job.project_id)
        queued = QueuedTask(
            task_id=task.id, job_id=str(job.id), project=project, priority=job.priority,
            job_seq=job.id, task_seq=task.seq, resources=task.resources,
        )
        self.policy.push(queued)
        self._queued[task.id] = queued
        self._queued_by_job.setdefault(job.id, set()).add(task.id)
        self._ready_since.setdefault(task.id, time.monotonic())

    def _dequeued(self, task_id: int) -> None:
        """Forget a task the policy no longer holds (it was picked or discarded)."""
        queued = self._queued.pop(task_id, None)
        if queued is not None:
            self._queued_by_job[int(queued.job_id)].discard(task_id)

    def _unqueue(self, task_id: int) -> None:
        self.policy.discard(task_id)
        self._dequeued(task_id)
        self._ready_since.pop(task_id, None)

    def _project_name(self, project_id: int) -> str:
        if project_id not in self._project_names:
            project = self.store.project(project_id)
            self._project_names[project_id] = project.name if project else str(project_id)
        return self._project_names[project_id]

    # The policy mirrors the ready tasks of every job that may run (a paused job's are held,
    # hidden). The dispatcher keeps the mirror current itself for what it causes (a finished
    # task frees its children, a failed one is retried) and learns the rest from the
    # database's change tracking: a sync reads the change counter and, only when it moved,
    # the jobs and projects stamped since, so it costs O(changes), not O(tasks).

    def sync(self, job_ids: Sequence[int] | None = None, *, full: bool = False) -> None:
        """Bring the policy in line with the database: new, paused, cancelled, re-prioritised.

        `job_ids` limits the dispatcher to those jobs. A full resync (the first sync, a new
        `job_ids`, `full`, or every FULL_SYNC_INTERVAL_S) also re-reads usage and compares
        every job's ready tasks with the queue by checksum.
        """
        now = time.monotonic()
        self._last_sync = now
        scope = None if job_ids is None else frozenset(job_ids)
        if full or scope != self._scope or now - self._last_full_sync >= FULL_SYNC_INTERVAL_S:
            self._full_sync(scope)
        else:
            self._sync_changes()
        self._note_budget_blocks()
        if self.requested_workers is None and not job_ids:
            self.start_pool()  # the cluster may have grown

    def _sync_changes(self) -> None:
        """Apply what others changed since the last sync; one query when nothing changed."""
        job_ids = None if self._scope is None else sorted(self._scope)
        changes = self.store.changes_since(self._revision, job_ids)
        for project in changes.projects:
            self._apply_project(project, used_core_seconds=None)  # keep the running total
        self._apply_jobs(changes.jobs, reload=set())
        if changes.jobs:
            self._cancel_stale_running()
        self._revision = changes.revision  # last: a round that failed half-way is read again

    def _full_sync(self, scope: frozenset[int] | None) -> None:
        """Re-read projects, usage and the jobs that may run; re-read ready tasks only for
        jobs whose ready-task checksum differs from what the queue holds."""
        job_ids = None if scope is None else sorted(scope)
        revision = self.store.revision()  # read first: what is stamped later is read next time
        used = self.store.used_core_seconds()
        for project in self.store.projects():
            self._apply_project(project, used_core_seconds=used.get(project.id, 0.0))
        active = self.store.active_jobs(job_ids)
        still_active = {tracked.job.id for tracked in active}
        for job_id in {*self._tasks_revision, *self._queued_by_job} - still_active:
            self._forget_job(job_id)
        checksums = self.store.ready_checksums(job_ids)
        differ = {
            tracked.job.id for tracked in active
            if checksums.get(tracked.job.id, (0, 0)) != self._checksum(tracked.job.id)
        }
        self._apply_jobs(active, reload=differ)
        self._cancel_stale_running()
        # last: a full resync that failed half-way is done again by the next sync
        self._revision, self._scope = revision, scope
        self._last_full_sync = time.monotonic()

    def _checksum(self, job_id: int) -> tuple[int, int]:
        """(number, sum of ids) of the job's queued tasks, as `Store.ready_checksums` counts."""
        task_ids = self._queued_by_job.get(job_id, set())
        return len(task_ids), sum(task_ids)

    def _apply_project(self, project: ProjectRow, *, used_core_seconds: float | None) -> None:
        self._project_names[project.id] = project.name
        self.policy.set_project(
            project.name, weight=project.weight,
            budget_core_seconds=(
                None if project.budget_core_hours is None else project.budget_core_hours * 3600
            ),
            used_core_seconds=used_core_seconds,
        )

    def _apply_jobs(self, tracked_jobs: Sequence[TrackedJob], *, reload: set[int]) -> None:
        """Follow the jobs' rows; re-read ready tasks of those new here, stamped with a new
        tasks revision, or in `reload`."""
        to_read: list[JobRow] = []
        for tracked in tracked_jobs:
            job = tracked.job
            if job.state not in _MAY_RUN:
                self._forget_job(job.id)
                continue
            self._apply_job_row(job)
            if job.id in reload or self._tasks_revision.get(job.id) != tracked.tasks_revision:
                self._tasks_revision[job.id] = tracked.tasks_revision
                to_read.append(job)
        self._read_ready(to_read)

    def _apply_job_row(self, job: JobRow) -> None:
        """Priority, pause and resume: O(lanes) in the policy, whatever the job's size."""
        was = self._job_cache.get(job.id)
        self._job_cache[job.id] = job
        key = str(job.id)
        self.policy.set_job_priority(key, job.priority)
        if job.state is JobState.PAUSED:
            self.policy.pause_job(key)
        else:
            self.policy.resume_job(key)
            if was is not None and was.state is JobState.PAUSED:
                # time spent paused is not time waiting for a worker
                now = time.monotonic()
                for task_id in self._queued_by_job.get(job.id, set()):
                    self._ready_since[task_id] = now
        if self._blocked_messages.get(job.id) != job.message:
            self._blocked_messages.pop(job.id, None)  # rewritten: note the budget again if due

    def _read_ready(self, jobs: Sequence[JobRow]) -> None:
        """Make the queue hold exactly the database's ready tasks of these jobs."""
        if not jobs:
            return
        ready: dict[int, list[ReadyTask]] = {job.id: [] for job in jobs}
        for task in self.store.ready_tasks_of(list(ready)):
            ready[task.job_id].append(task)
        for job in jobs:
            ids = {task.id for task in ready[job.id]}
            for task_id in self._queued_by_job.get(job.id, set()) - ids:
                self._unqueue(task_id)
            for task in ready[job.id]:
                # one still running here (the database requeued it behind our back) is
                # cancelled by _cancel_stale_running and queued again when its answer comes
                if not self.policy.is_running(task.id):
                    self._queue(task, job)

    def _forget_job(self, job_id: int) -> None:
        """The job cannot run any more (done, failed, cancelled, out of scope): drop its queue.

        Its tasks are discarded one by one rather than `remove_job`, so the policy keeps the
        job's node blocklist should it be retried, and its running tasks stay counted.
        """
        for task_id in self._queued_by_job.pop(job_id, set()):
            self.policy.discard(task_id)
            self._queued.pop(task_id, None)
            self._ready_since.pop(task_id, None)
        self._job_cache.pop(job_id, None)
        self._tasks_revision.pop(job_id, None)
        self._blocked_messages.pop(job_id, None)

    def _cancel_stale_running(self) -> None:
        """Running attempts whose task the database no longer wants (job cancelled) stop now."""
        if not self._running:
            return
        stale = self.store.not_running([running.task.id for running in self._running.values()])
        for running in self._running.values():
            if running.task.id in stale:
                running.slot.worker.call("cancel")

    def _note_budget_blocks(self) -> None:
        for job_id, task_ids in self._queued_by_job.items():
            job = self._job_cache.get(job_id)
            if not task_ids or job is None or job.state is JobState.PAUSED:
                continue
            reason = self.policy.blocked_reason(self._project_name(job.project_id))
            if reason and self._blocked_messages.get(job_id) != reason:
                self.store.set_job_message(job_id, reason)
                self._blocked_messages[job_id] = reason
            elif not reason and job_id in self._blocked_messages:
                self.store.set_job_message(job_id, "")
                del self._blocked_messages[job_id]

    # ------------------------------------------------------------------ dispatching

    def _log_path(self, task: TaskRow, attempt: int) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", task.key)
        return self.log_root / f"job{task.job_id}" / f"{safe}.{attempt}.log"

    def dispatch(self) -> int:
        """Give every idle slot the best task that fits it; return how many started."""
        started = 0
        # Light slots first, so image work goes to them and render slots keep rendering.
        for slot in sorted(self.slots, key=lambda s: not s.light):
            if slot.busy is not None:
                continue
            free = Resources(cpus=slot.cpus, memory=_BIG_MEMORY, gpus=slot.gpus)
            queued = self.policy.pick(free, node=slot.node)
            if queued is None:
                continue
            self._dequeued(queued.task_id)
            task = self.store.task(queued.task_id)
            if task is None or task.state is not TaskState.READY:
                self.policy.finished(queued, 0.0)
                continue
            log_path = self._log_path(task, task.attempts + 1)
            try:
                attempt_id = self.store.start_attempt(
                    task.id, node=slot.node, worker=slot.name, cores=_metered_cores(slot, task),
                    log_path=str(log_path),
                )
            except StoreError:
                self.policy.finished(queued, 0.0)
                continue
            since = self._ready_since.pop(task.id, None)
            if since is not None:
                self.dispatch_latencies.append(time.monotonic() - since)
            future = slot.worker.call(
                "run",
                {"kind": task.kind, "key": task.key, "payload": task.payload,
                 "log_path": str(log_path)},
            )
            running = Running(queued, task, attempt_id, slot, future, time.monotonic())
            slot.busy = running
            slot.progress = 0.0
            self._running[future] = running
            started += 1
            log.info("start %s (job %s) on %s", task.key, task.job_id, slot.name)
            self._emit(TaskEvent("started", task, task.job_id, node=slot.node))
        return started

    def collect(self, timeout: float) -> int:
        """Wait up to `timeout` for answers from workers and record them; return how many."""
        self._admit_pending()
        if not self._running:
            if timeout > 0:
                # wake on a poke, but leave it set: the next step() must sync to see the change
                self.poke_event.wait(timeout)
            return 0
        done, _ = wait_for(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            running = self._running.pop(future)
            running.slot.busy = None
            log.info("answer for %s from %s", running.task.key, running.slot.name)
            try:
                result = future.result()
            except Exception as exc:
                died = running.slot.worker.lost(exc)
                if died is None:
                    self._lost(running, f"the attempt was lost: {exc}")
                    continue
                self._lost(running, f"worker {running.slot.name} on {running.slot.node} died: "
                           f"{died}")
                self._replace(running.slot)
                continue
            if result.get("ok"):
                self._succeeded(running, result)
            else:
                self._failed(running, result)
        return len(done)

    def _usage(self, running: Running, result: dict[str, Any] | None) -> Usage:
        wall = (result or {}).get("wall_s") or (time.monotonic() - running.started)
        return Usage(
            wall_s=float(wall), cores=_metered_cores(running.slot, running.task),
            cpu_s=(result or {}).get("cpu_s"), peak_rss=(result or {}).get("peak_rss"),
        )

    def _succeeded(self, running: Running, result: dict[str, Any]) -> None:
        usage = self._usage(running, result)
        self.policy.finished(running.queued, usage.cores * usage.wall_s)
        # Before the database says done: whoever publishes the task's files queues them now,
        # so a reader who sees the task done finds its files published or on their way.
        self._emit(TaskEvent("finishing", running.task, running.task.job_id,
                             node=running.slot.node, result=result))
        ready = self.store.finish_attempt(
            running.attempt_id, running.task.id, usage, result.get("output", {})
        )
        if running.task.kind == TaskKind.RENDER.value:
            scene = running.task.payload.get("scene")
            if scene:
                running.slot.warm_scenes.add(scene)
        job = self._refresh_job(running.task.job_id)
        # Only the tasks this one freed: re-reading every ready task of a big job after each
        # finish made dispatch cost grow with the job's size.
        for task in self.store.tasks_by_ids(ready):
            if task.state is TaskState.READY:
                self._queue(task, job)
        self._emit(TaskEvent("done", running.task, running.task.job_id,
                             node=running.slot.node, result=result))
        if job.state is JobState.DONE:
            self._forget_job(job.id)
            if self.store.release_jobs_waiting_on(job.id):
                self._sync_changes()  # the released jobs are stamped: queue their tasks now

    def _refresh_job(self, job_id: int) -> JobRow:
        self._job_cache.pop(job_id, None)
        return self._job(job_id)

    def _failed(self, running: Running, result: dict[str, Any]) -> None:
        task = running.task
        message = str(result.get("error") or "failed")
        usage = self._usage(running, result)
        self.policy.finished(running.queued, usage.cores * usage.wall_s)
        if result.get("cancelled"):
            self.store.fail_attempt(running.attempt_id, task.id, outcome=AttemptOutcome.CANCELLED,
                                    usage=usage, message=message, retry=False)
            self._requeue_if_ready(task.id)
            self._emit(TaskEvent("cancelled", task, task.job_id, node=running.slot.node))
            return
        outcome = AttemptOutcome.TIMEOUT if "timed out" in message or "silent" in message \
            else AttemptOutcome.FAILED
        job = self._refresh_job(task.job_id)
        max_attempts = int(job.spec.get("max_attempts", 3))
        retry = task.attempts < max_attempts
        self.store.fail_attempt(running.attempt_id, task.id, outcome=outcome, usage=usage,
                                message=message, retry=retry)
        failures = self.store.node_failures(task.job_id).get(running.slot.node, 0)
        if failures >= BLOCKLIST_AFTER:
            self.policy.blocklist(str(task.job_id), running.slot.node)
        if retry:
            fresh = self.store.task(task.id)
            if fresh is not None and fresh.state is TaskState.READY:
                self._queue(fresh, job)
            self._emit(TaskEvent("retry", task, task.job_id, node=running.slot.node,
                                 message=message))
            return
        self._fail_job(task, message)

    def _requeue_if_ready(self, task_id: int) -> None:
        """A cancelled attempt whose task the database made ready again (another process's
        crash recovery) runs again, without waiting for the next full resync."""
        fresh = self.store.task(task_id)
        if fresh is not None and fresh.state is TaskState.READY:
            job = self._refresh_job(fresh.job_id)
            if job.state in _MAY_RUN:
                self._queue(fresh, job)

    def _fail_job(self, task: TaskRow, message: str) -> None:
        reason = f"task {task.key} failed {task.attempts} time(s); last error: {message}"
        self._forget_job(task.job_id)
        self.store.cancel_job(task.job_id, message=reason)
        self.store.set_job_state(task.job_id, JobState.FAILED, reason)
        self._emit(TaskEvent("failed", task, task.job_id, message=reason))

    def _lost(self, running: Running, message: str) -> None:
        task = running.task
        usage = self._usage(running, None)
        self.policy.finished(running.queued, usage.cores * usage.wall_s)
        retry = task.attempts < LOST_RETRY_LIMIT
        self.store.fail_attempt(running.attempt_id, task.id, outcome=AttemptOutcome.LOST,
                                usage=usage, message=message, retry=retry)
        if retry:
            fresh = self.store.task(task.id)
            if fresh is not None and fresh.state is TaskState.READY:
                self._queue(fresh, self._refresh_job(task.job_id))
            self._emit(TaskEvent("lost", task, task.job_id, node=running.slot.node,
                                 message=message))
        else:
            self._fail_job(task, message)

    def _emit(self, event: TaskEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def poll_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        busy = [slot for slot in self.slots if slot.busy is not None]
        if not busy:
            return
        futures = [slot.worker.call("progress") for slot in busy]
        done, _ = wait_for(futures, timeout=0.2)
        for slot, future in zip(busy, futures, strict=True):
            if future in done and slot.busy is not None:
                try:
                    slot.progress = float(future.result())
                except Exception:
                    continue
                self._emit(TaskEvent("progress", slot.busy.task, slot.busy.task.job_id,
                                     node=slot.node, result={"progress": slot.progress}))

    # ------------------------------------------------------------------ loops

    def step(self, timeout: float = 0.2, job_ids: Sequence[int] | None = None) -> None:
        if not self._ray_pool_started:
            self.start_pool()  # Ray came up since the last step: its workers join now
        if self.poke_event.is_set() or time.monotonic() - self._last_sync > SYNC_INTERVAL_S:
            self.poke_event.clear()
            self.sync(job_ids)
        self.dispatch()
        self.collect(timeout)
        self.dispatch()
        self.poll_progress()

    def run_jobs(self, job_ids: Sequence[int], *, warm_scene: str | None = None) -> None:
        """Run until every job in `job_ids` is done, failed or cancelled."""
        self.store.recover_interrupted(job_ids)
        self.start_pool(warm_scene)
        log.info("waiting for %d worker(s) to start", len(self._pending))
        self._admit_pending(timeout=120.0 if not self.slots else 0.0)
        log.info("%d worker(s) ready", len(self.slots))
        self.sync(job_ids)
        while True:
            self.step(0.2, job_ids)
            if not self._running and all(
                (job := self.store.job(j)) is None or job.state.is_final for j in job_ids
            ):
                return
            # a paused job's tasks are held in the queue, hidden: ready_count leaves them out
            if not self._running and not self.policy.ready_count() and not self._pending \
                    and self.slots:
                # nothing ready, nothing running: re-read once in case a dependency freed work
                self.sync(job_ids)
                if not self.policy.ready_count() and all(
                    (job := self.store.job(j)) is None or job.state.is_final
                    or job.state is JobState.PAUSED for j in job_ids
                ):
                    return

    def serve(self, stop: threading.Event) -> None:
        """Run until `stop` is set, serving every project's jobs."""
        self.store.recover_interrupted()
        self.start_pool()
        self.sync()
        while not stop.is_set():
            self.step(0.2)

    def poke(self) -> None:
        """Something changed in the database (new job, cancel, …): sync on the next step."""
        self.poke_event.set()

    def close(self) -> None:
        # Killing a Ray actor is enough: its Blender process reads EOF on stdin and exits.
        for slot in [*self.slots, *self._pending.values()]:
            slot.worker.kill()
        self.slots.clear()
        self._pending.clear()

    def workers(self) -> list[dict[str, Any]]:
        return [
            {
                "name": slot.name, "node": slot.node, "cpus": slot.cpus, "gpus": slot.gpus,
                "light": slot.light,
                "task": None if slot.busy is None else slot.busy.task.key,
                "job_id": None if slot.busy is None else slot.busy.task.job_id,
                "progress": slot.progress,
            }
            for slot in self.slots
        ]

"""The queue mirror: the scheduling policy's picture of the database's ready tasks.

The policy mirrors the ready tasks of every job that may run (a paused job's are held,
hidden). The dispatcher keeps the mirror current itself for what it causes (a finished task
frees its children, a failed one is retried) and the mirror learns the rest from the
database's change tracking: a sync reads the change counter and, only when it moved, the jobs
and projects stamped since, so it costs O(changes), not O(tasks).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from wanhe.jobtypes import registry as job_types
from wanhe.model import JobState, Resources, TaskState
from wanhe.sched.policy import QueuedTask, SchedulingPolicy
from wanhe.store.store import JobRow, ProjectRow, ReadyTask, Store, StoreError, TaskRow, TrackedJob

# The safety net: a full resync this often, for a writer that changed the database without
# stamping the change (see `wanhe.store.tables` on change tracking).
FULL_SYNC_INTERVAL_S = 30.0
MAY_RUN = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.PAUSED})


class QueueMirror:
    def __init__(self, store: Store, policy: SchedulingPolicy) -> None:
        self.store = store
        self.policy = policy
        self.queued: dict[int, QueuedTask] = {}  # task id -> what the policy holds
        self.queued_by_job: dict[int, set[int]] = {}  # job id -> its task ids in queued
        # job id -> {resource shape: queued tasks of that shape}: what placement checks, in
        # O(jobs × shapes) rather than O(tasks)
        self.shapes_by_job: dict[int, dict[Resources, int]] = {}
        self.shapes_revision = 0  # grows when a job gets a shape it had none of
        self._job_cache: dict[int, JobRow] = {}
        # jobs whose ready tasks the policy mirrors -> the tasks revision that mirror reflects
        self._tasks_revision: dict[int, int] = {}
        self._revision = -1  # the database's change counter as the last sync read it
        self.scope: frozenset[int] | None = None  # the jobs this dispatcher runs; None: all
        self._blocked_messages: dict[int, str] = {}
        self._last_full_sync = -math.inf
        self.ready_since: dict[int, float] = {}
        # job id -> why it cannot progress although it has ready tasks (set by the dispatcher)
        self.wait_reasons: dict[int, str] = {}
        self._project_names: dict[int, str] = {}
        self._any_cache: dict[int, bool] = {}  # job id -> its core tasks may take a GPU slot

    # ------------------------------------------------------------------ jobs and tasks

    def job(self, job_id: int) -> JobRow:
        job = self._job_cache.get(job_id)
        if job is None:
            found = self.store.job(job_id)
            if found is None:
                raise StoreError(f"job {job_id} vanished")
            job = self._job_cache[job_id] = found
        return job

    def refresh_job(self, job_id: int) -> JobRow:
        self._job_cache.pop(job_id, None)
        return self.job(job_id)

    def queue(self, task: TaskRow | ReadyTask, job: JobRow) -> None:
        if task.id in self.queued:
            return
        project = self.project_name(job.project_id)
        res = task.resources
        any_device = res.cpus > 0 and res.gpus <= 0 and self._any_device(job)
        queued = QueuedTask(
            task_id=task.id, job_id=str(job.id), project=project, priority=job.priority,
            job_seq=job.id, task_seq=task.seq, resources=res,
            any_device=any_device, group=task.frame if any_device else None,
            affinity=task.affinity,
        )
        self.policy.push(queued)
        self.queued[task.id] = queued
        self.queued_by_job.setdefault(job.id, set()).add(task.id)
        shapes = self.shapes_by_job.setdefault(job.id, {})
        if task.resources not in shapes:
            self.shapes_revision += 1
        shapes[task.resources] = shapes.get(task.resources, 0) + 1
        self.ready_since.setdefault(task.id, time.monotonic())

    def _any_device(self, job: JobRow) -> bool:
        found = self._any_cache.get(job.id)
        if found is None:
            found = self._any_cache[job.id] = job_types.any_device(job.kind, job.spec)
        return found

    def any_device_queued(self) -> int:
        """Queued tasks that may run on a CPU or a GPU slot (`--device any`), in O(jobs)."""
        return sum(
            count
            for job_id, shapes in self.shapes_by_job.items() if self._any_cache.get(job_id)
            for shape, count in shapes.items() if shape.cpus > 0 and shape.gpus <= 0
        )

    def queue_if_ready(self, task_id: int) -> None:
        """Queue a task the database has ready (retried, or re-readied by another process's
        crash recovery), if its job may run."""
        fresh = self.store.task(task_id)
        if fresh is not None and fresh.state is TaskState.READY:
            job = self.refresh_job(fresh.job_id)
            if job.state in MAY_RUN:
                self.queue(fresh, job)

    def dequeued(self, task_id: int) -> None:
        """Forget a task the policy no longer holds (it was picked or discarded)."""
        queued = self.queued.pop(task_id, None)
        if queued is not None:
            job_id = int(queued.job_id)
            self.queued_by_job[job_id].discard(task_id)
            shapes = self.shapes_by_job.get(job_id, {})
            left = shapes.get(queued.resources, 0) - 1
            if left > 0:
                shapes[queued.resources] = left
            else:
                shapes.pop(queued.resources, None)

    def unqueue(self, task_id: int) -> None:
        self.policy.discard(task_id)
        self.dequeued(task_id)
        self.ready_since.pop(task_id, None)

    def queued_of_shape(self, job_id: int, shape: Resources) -> int | None:
        """One queued task of the job asking for `shape` (to name it in a reason)."""
        for task_id in self.queued_by_job.get(job_id, set()):
            if self.queued[task_id].resources == shape:
                return task_id
        return None

    def project_name(self, project_id: int) -> str:
        if project_id not in self._project_names:
            project = self.store.project(project_id)
            self._project_names[project_id] = project.name if project else str(project_id)
        return self._project_names[project_id]

    def forget_job(self, job_id: int) -> None:
        """The job cannot run any more (done, failed, cancelled, out of scope): drop its queue.

        Its tasks are discarded one by one rather than `remove_job`, so the policy keeps the
        job's node blocklist should it be retried, and its running tasks stay counted.
        """
        for task_id in self.queued_by_job.pop(job_id, set()):
            self.policy.discard(task_id)
            self.queued.pop(task_id, None)
            self.ready_since.pop(task_id, None)
        self.shapes_by_job.pop(job_id, None)
        self._job_cache.pop(job_id, None)
        self._tasks_revision.pop(job_id, None)
        self._blocked_messages.pop(job_id, None)
        self.wait_reasons.pop(job_id, None)

    # ------------------------------------------------------------------ database -> policy

    def sync(self, scope: frozenset[int] | None, *, full: bool = False) -> bool:
        """Bring the policy in line with the database: new, paused, cancelled, re-prioritised.

        A full resync (the first sync, a new scope, `full`, or every FULL_SYNC_INTERVAL_S)
        also re-reads usage and compares every job's ready tasks with the queue by checksum.
        Returns whether any job changed (running attempts may then be stale).
        """
        now = time.monotonic()
        if full or scope != self.scope or now - self._last_full_sync >= FULL_SYNC_INTERVAL_S:
            self._full_sync(scope)
            changed = True
        else:
            changed = self._sync_changes()
        self._note_budget_blocks()
        return changed

    def sync_changes(self) -> bool:
        return self._sync_changes()

    def _sync_changes(self) -> bool:
        """Apply what others changed since the last sync; one query when nothing changed."""
        job_ids = None if self.scope is None else sorted(self.scope)
        changes = self.store.changes_since(self._revision, job_ids)
        for project in changes.projects:
            self._apply_project(project, used=None)  # keep the running total
        self._apply_jobs(changes.jobs, reload=set())
        self._revision = changes.revision  # last: a round that failed half-way is read again
        return bool(changes.jobs)

    def _full_sync(self, scope: frozenset[int] | None) -> None:
        """Re-read projects, usage and the jobs that may run; re-read ready tasks only for
        jobs whose ready-task checksum differs from what the queue holds."""
        job_ids = None if scope is None else sorted(scope)
        revision = self.store.revision()  # read first: what is stamped later is read next time
        used = self.store.used_seconds()
        for project in self.store.projects():
            self._apply_project(project, used=used.get(project.id, (0.0, 0.0)))
        active = self.store.active_jobs(job_ids)
        still_active = {tracked.job.id for tracked in active}
        for job_id in {*self._tasks_revision, *self.queued_by_job} - still_active:
            self.forget_job(job_id)
        checksums = self.store.ready_checksums(job_ids)
        differ = {
            tracked.job.id for tracked in active
            if checksums.get(tracked.job.id, (0, 0)) != self._checksum(tracked.job.id)
        }
        self._apply_jobs(active, reload=differ)
        # last: a full resync that failed half-way is done again by the next sync
        self._revision, self.scope = revision, scope
        self._last_full_sync = time.monotonic()

    def _checksum(self, job_id: int) -> tuple[int, int]:
        """(number, sum of ids) of the job's queued tasks, as `Store.ready_checksums` counts."""
        task_ids = self.queued_by_job.get(job_id, set())
        return len(task_ids), sum(task_ids)

    def _apply_project(self, project: ProjectRow, *, used: tuple[float, float] | None) -> None:
        self._project_names[project.id] = project.name
        self.policy.set_project(
            project.name, weight=project.weight,
            budget_core_seconds=(
                None if project.budget_core_hours is None else project.budget_core_hours * 3600
            ),
            used_core_seconds=None if used is None else used[0],
            budget_gpu_seconds=(
                None if project.budget_gpu_hours is None else project.budget_gpu_hours * 3600
            ),
            used_gpu_seconds=None if used is None else used[1],
        )

    def _apply_jobs(self, tracked_jobs: Sequence[TrackedJob], *, reload: set[int]) -> None:
        """Follow the jobs' rows; re-read ready tasks of those new here, stamped with a new
        tasks revision, or in `reload`."""
        to_read: list[JobRow] = []
        for tracked in tracked_jobs:
            job = tracked.job
            if job.state not in MAY_RUN:
                self.forget_job(job.id)
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
        if was is None:
            # back after being forgotten (finished, then retried): its old blocklist goes, as
            # the store's failure counts since the retry do (a node that fails it again is
            # blocklisted again by those)
            self.policy.clear_blocklist(key)
        self.policy.set_job_priority(key, job.priority)
        if job.state is JobState.PAUSED:
            self.policy.pause_job(key)
        else:
            self.policy.resume_job(key)
            if was is not None and was.state is JobState.PAUSED:
                # time spent paused is not time waiting for a worker
                now = time.monotonic()
                for task_id in self.queued_by_job.get(job.id, set()):
                    self.ready_since[task_id] = now
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
            for task_id in self.queued_by_job.get(job.id, set()) - ids:
                self.unqueue(task_id)
            for task in ready[job.id]:
                # one still running here (the database requeued it behind our back) is
                # cancelled by the dispatcher's stale check and queued again when its answer
                # comes
                if not self.policy.is_running(task.id):
                    self.queue(task, job)

    def note_job_message(self, job_id: int, message: str) -> None:
        """Say on the job why it waits (or clear it), writing only when it changes."""
        if message and self._blocked_messages.get(job_id) != message:
            self.store.set_job_message(job_id, message)
            self._blocked_messages[job_id] = message
        elif not message and job_id in self._blocked_messages:
            self.store.set_job_message(job_id, "")
            del self._blocked_messages[job_id]

    def _note_budget_blocks(self) -> None:
        for job_id, task_ids in self.queued_by_job.items():
            job = self._job_cache.get(job_id)
            if not task_ids or job is None or job.state is JobState.PAUSED:
                continue
            reason = self.policy.blocked_reason(self.project_name(job.project_id))
            self.note_job_message(job_id, reason or self.wait_reasons.get(job_id, ""))

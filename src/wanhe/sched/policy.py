"""The scheduling policy: which ready task runs next on a slot with free resources.

Pure and in-memory: no I/O, no Ray, no database. The dispatcher in `wanhe.engine` and the
simulator in `wanhe.sim` drive the same object. The dispatcher keeps the cluster exactly full:
whenever a node has free resources it calls `pick(free, node=...)` and submits what it gets.

Rules, in the order they apply:

1. **Priority** (0–100, per job): higher first. A lower priority only gets a slot when no task of
   a higher priority can use it (nothing ready, budget used up, does not fit, blocklisted).
2. **Weighted fair share** between the projects with ready work at that priority: the project
   furthest below its weighted share of the running cores goes first (its deficit
   ``running − (R + c)·weight / W`` over those projects; see `_fair_order`), which is the
   "lowest running cores ÷ weight" rule made exact to within one task. Ties go to the lower
   ``metered core-seconds / weight``, then the name. A project with nothing ready takes no
   share, so its share goes to the others.
3. **Submission order** inside a project: the earliest job first (``job_seq``), then task order
   inside the job (``task_seq``).
4. **Budgets**: a project whose metered core-seconds reached its budget gets no new tasks
   (running ones finish); `blocked_reason` says why.
5. **Resources**: a task is picked only if it fits the offered free resources. Inside a job the
   tasks are kept in *lanes*, one per resource shape, so a big task waiting at the head of its
   lane never hides the small tasks of the next lane, job or project. Skipping: when the head of
   a lane does not fit, the policy looks at the next lane of the project (up to
   ``max_scan`` lanes per project and priority, which bounds the cost of a decision), then at the
   other projects, then at lower priorities.
   *No starvation*: every time a lane's head is passed over because it did not fit, its skip
   count grows. When it reaches ``starvation_limit`` and the caller says what the node holds in
   total (``pick(free, node=..., capacity=...)``), the node is **reserved** for that task: it
   gets no other work until enough of it is free, then the starving task runs there (like
   backfilling with a reservation). Without ``capacity`` the policy cannot know whether a task
   will ever fit a node, so it only skips.
6. **Devices**: a task that asks for no GPU never runs on a GPU slot (``pick(...,
   gpu_only=True)``), so GPUs stay free for the work that needs them — except a task that
   may run on either (``any_device``, `wanhe render --device any`). CPU and GPU Cycles do
   not give identical pixels, so the tasks of one frame (``group``) never mix them: each
   frame of such a job is a lane of its own, bound to the kind of device (`sched.devices`)
   of the first slot that takes one of its tasks; its other tasks and retries then run only
   on that kind.
7. **Affinity**: a task may name what it needs loaded (``affinity``, e.g. a model); such
   tasks keep a lane per (resources, affinity). ``pick(..., warm=keys)`` names what the slot
   holds: inside the bucket it would take a task from (same priority and project, so priority
   and fair share are unchanged), a lane whose affinity the slot holds goes before the
   submission order (looking at up to ``max_scan`` lanes). A slot holding nothing takes the
   usual order.
8. **Blocklists**: `blocklist(job_id, node)` (the dispatcher calls it after 3 failures of a
   job's tasks on a node); ``pick(..., node=node)`` never returns a task of that job there.
9. **Pause, resume, cancel**: `pause_job` hides a job's ready tasks, `resume_job` shows them
   again (in their old order), `remove_job` drops them.

Cost: `push`, `discard`, `pick` and `finished` are O(log n) in the number of queued tasks
(heaps with lazy deletion), plus a scan over the projects present at the priorities tried
(projects are few). `pause_job`, `resume_job` and `set_job_priority` cost O(lanes of the job ·
log n), independent of the number of tasks in the job.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

from wanhe.model import Resources
from wanhe.sched.devices import SlotKind, kind_of_slot, may_take

__all__ = [
    "PolicyStats",
    "ProjectState",
    "QueuedTask",
    "SchedulingPolicy",
]

MIN_PRIORITY = 0
MAX_PRIORITY = 100
ONE_CPU = Resources()  # the default need of a task: one CPU, no memory, no GPU


@dataclass(frozen=True, slots=True)
class QueuedTask:
    """A task that is ready to run, as the policy sees it.

    ``job_seq`` orders jobs by submission (smaller = earlier); ``task_seq`` orders the tasks of
    one job. ``priority`` is the job's priority when the task was pushed; `set_job_priority`
    overrides it and the task `pick` returns then carries the job's current priority.
    """

    task_id: int
    job_id: str
    project: str
    priority: int
    job_seq: int
    task_seq: int
    resources: Resources = ONE_CPU
    # may run on a CPU or a GPU slot; all tasks of one `group` (a frame) on the same kind
    any_device: bool = False
    group: int | None = None
    affinity: str | None = None  # what a worker keeps warm for it (a model)

    @property
    def lane_key(self) -> LaneKey:
        return (self.resources, self.group if self.any_device else None, self.any_device,
                self.affinity)


LaneKey = tuple[Resources, int | None, bool, str | None]


@dataclass(frozen=True, slots=True)
class ProjectState:
    """A read-only view of one project's standing in the policy."""

    name: str
    weight: float
    budget_core_seconds: float | None
    used_core_seconds: float
    running_cores: float
    running_tasks: int
    ready_tasks: int


@dataclass(frozen=True, slots=True)
class PolicyStats:
    """Counters, for metrics and the simulator."""

    picks: int  # pick() calls
    picked: int  # pick() calls that returned a task
    pushes: int
    skipped_no_fit: int  # lane heads passed over because they did not fit
    skipped_blocklist: int  # lane heads passed over because of a node blocklist
    reservations: int  # nodes reserved for starving tasks
    skipped_device: int = 0  # lane heads passed over: their frame is bound to the other kind


class _Project:
    __slots__ = ("budget", "gpu_budget", "gpu_used", "name", "ready", "running_cores",
                 "running_tasks", "used", "weight")

    def __init__(self, name: str) -> None:
        self.name = name
        self.weight = 1.0
        self.budget: float | None = None
        self.used = 0.0
        self.gpu_budget: float | None = None  # GPU-seconds
        self.gpu_used = 0.0
        self.running_cores = 0.0
        self.running_tasks = 0
        self.ready = 0  # queued tasks of non-paused jobs

    def blocked(self) -> bool:
        return (self.budget is not None and self.used >= self.budget) or (
            self.gpu_budget is not None and self.gpu_used >= self.gpu_budget
        )


class _Lane:
    """The queued tasks of one job that ask for the same resources, by task_seq."""

    __slots__ = ("affinity", "any_device", "bound", "gen", "heap", "job", "live", "resources",
                 "skips", "uid")

    def __init__(self, job: _Job, resources: Resources, uid: int, any_device: bool = False,
                 affinity: str | None = None) -> None:
        self.job = job
        self.resources = resources
        self.any_device = any_device
        self.bound: SlotKind | None = None  # the device kind its frame renders on, once picked
        self.affinity = affinity
        self.uid = uid
        self.heap: list[tuple[int, int, QueuedTask]] = []  # (task_seq, serial, task)
        self.live = 0
        self.gen = 0  # bumped when the lane leaves its bucket; older bucket entries are stale
        self.skips = 0


class _Job:
    __slots__ = (
        "blocked_nodes",
        "job_id",
        "job_seq",
        "lanes",
        "live",
        "paused",
        "priority",
        "project",
    )

    def __init__(self, job_id: str, project: _Project, priority: int, job_seq: int) -> None:
        self.job_id = job_id
        self.project = project
        self.priority = priority
        self.job_seq = job_seq
        self.paused = False
        self.live = 0
        self.lanes: dict[LaneKey, _Lane] = {}
        self.blocked_nodes: set[str] = set()


# A bucket holds the lanes of one (priority, project): a heap of
# (job_seq, head task_seq, lane uid, lane gen, lane); the uid keeps lanes from being compared.
_Entry = tuple[int, int, int, int, _Lane]


class _Bucket:
    __slots__ = ("heap", "live", "priority", "project")

    def __init__(self, priority: int, project: _Project) -> None:
        self.priority = priority
        self.project = project
        self.heap: list[_Entry] = []
        self.live = 0


class _Hold:
    """Returned internally when a node is reserved: give it nothing."""


_HOLD = _Hold()


def _check_priority(priority: int) -> None:
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(
            f"priority {priority} is outside {MIN_PRIORITY}..{MAX_PRIORITY}; use a value in "
            "that range (higher runs first)"
        )


class SchedulingPolicy:
    """Priority → weighted fair share → submission order, with budgets, resources, blocklists.

    See the module docstring for the rules. Not thread-safe: call it from one thread (the
    dispatcher's loop).
    """

    def __init__(self, *, starvation_limit: int = 100, max_scan: int = 64) -> None:
        if starvation_limit < 1:
            raise ValueError("starvation_limit must be at least 1")
        if max_scan < 1:
            raise ValueError("max_scan must be at least 1")
        self.starvation_limit = starvation_limit
        self.max_scan = max_scan
        self._projects: dict[str, _Project] = {}
        self._jobs: dict[str, _Job] = {}
        self._live: dict[int, int] = {}  # queued task_id -> serial of its current heap entry
        self._queued: dict[int, QueuedTask] = {}  # queued task_id -> task
        self._running: dict[int, QueuedTask] = {}
        self._levels: dict[int, dict[str, _Bucket]] = {}  # priority -> project -> bucket
        self._prio_desc: list[int] = []
        self._prio_dirty = False
        self._serial = itertools.count()
        self._lane_uid = itertools.count()
        self._ready = 0  # queued tasks of non-paused jobs
        self._reserved_node: dict[str, int] = {}  # node -> task_id
        self._reserving_task: dict[int, str] = {}  # task_id -> node
        self._paused_early: set[str] = set()  # paused before any of their tasks was pushed
        self._picks = 0
        self._picked = 0
        self._pushes = 0
        self._skip_fit = 0
        self._skip_block = 0
        self._reservations = 0
        self._skip_device = 0

    # ------------------------------------------------------------------ projects and usage

    def set_project(
        self,
        name: str,
        *,
        weight: float = 1.0,
        budget_core_seconds: float | None = None,
        used_core_seconds: float | None = None,
        budget_gpu_seconds: float | None = None,
        used_gpu_seconds: float | None = None,
    ) -> None:
        """Declare or update a project. ``used_*_seconds=None`` keeps the metered usage. A
        project with both budgets gets no new tasks once either is used up."""
        if not (weight > 0 and math.isfinite(weight)):
            raise ValueError(f"project {name!r}: weight must be a positive number, got {weight}")
        if budget_core_seconds is not None and not budget_core_seconds >= 0:
            raise ValueError(
                f"project {name!r}: budget must be ≥ 0 core-seconds, got {budget_core_seconds}"
            )
        if used_core_seconds is not None and not used_core_seconds >= 0:
            raise ValueError(
                f"project {name!r}: used core-seconds must be ≥ 0, got {used_core_seconds}"
            )
        project = self._project(name)
        project.weight = float(weight)
        project.budget = None if budget_core_seconds is None else float(budget_core_seconds)
        if used_core_seconds is not None:
            project.used = float(used_core_seconds)
        if budget_gpu_seconds is not None and not budget_gpu_seconds >= 0:
            raise ValueError(
                f"project {name!r}: GPU budget must be ≥ 0 GPU-seconds, got {budget_gpu_seconds}"
            )
        project.gpu_budget = None if budget_gpu_seconds is None else float(budget_gpu_seconds)
        if used_gpu_seconds is not None:
            project.gpu_used = max(0.0, float(used_gpu_seconds))

    def add_usage(self, project: str, core_seconds: float) -> None:
        """Meter core-seconds used outside `finished` (e.g. a lost attempt's partial usage)."""
        if not core_seconds >= 0:
            raise ValueError(f"core_seconds must be ≥ 0, got {core_seconds}")
        self._project(project).used += core_seconds

    def blocked_reason(self, project: str) -> str | None:
        """Why `project` gets no new tasks, or None if it may get them."""
        p = self._projects.get(project)
        if p is None or not p.blocked():
            return None
        if p.budget is not None and p.used >= p.budget:
            return (
                f"budget of {p.budget / 3600:.1f} core-hours used up ({p.used / 3600:.1f} "
                f"core-hours metered) — raise it with `wanhe project budget`"
            )
        assert p.gpu_budget is not None
        return (
            f"budget of {p.gpu_budget / 3600:.2f} GPU-hours used up ({p.gpu_used / 3600:.2f} "
            f"GPU-hours metered) — raise it with `wanhe project budget --gpu-hours`"
        )

    def budget_left(self, project: str) -> tuple[float | None, float | None]:
        """(core-seconds, GPU-seconds) the project may still use; None where it has no budget."""
        p = self._projects.get(project)
        if p is None:
            return None, None
        return (None if p.budget is None else max(0.0, p.budget - p.used),
                None if p.gpu_budget is None else max(0.0, p.gpu_budget - p.gpu_used))

    def running_cores(self, project: str) -> float:
        p = self._projects.get(project)
        return 0.0 if p is None else p.running_cores

    def used_core_seconds(self, project: str) -> float:
        p = self._projects.get(project)
        return 0.0 if p is None else p.used

    def project_state(self, project: str) -> ProjectState:
        p = self._project(project)
        return ProjectState(
            p.name, p.weight, p.budget, p.used, p.running_cores, p.running_tasks, p.ready
        )

    def projects(self) -> list[str]:
        return sorted(self._projects)

    # ------------------------------------------------------------------ queue

    def push(self, task: QueuedTask) -> None:
        """`task` became ready. A task id may be queued or running only once at a time."""
        tid = task.task_id
        if tid in self._live:
            raise ValueError(f"task {tid} is already queued")
        if tid in self._running:
            raise ValueError(
                f"task {tid} is running; call finished() before pushing it again for a retry"
            )
        job = self._jobs.get(task.job_id)
        if job is None:
            _check_priority(task.priority)
            job = _Job(task.job_id, self._project(task.project), task.priority, task.job_seq)
            self._jobs[task.job_id] = job
            if self._paused_early:
                job.paused = task.job_id in self._paused_early
                self._paused_early.discard(task.job_id)
        elif job.project.name != task.project:
            raise ValueError(
                f"task {tid}: job {task.job_id} belongs to project {job.project.name!r}, "
                f"not {task.project!r}"
            )
        if task.priority != job.priority or task.job_seq != job.job_seq:
            task = replace(task, priority=job.priority, job_seq=job.job_seq)
        lane = job.lanes.get(task.lane_key)
        if lane is None:
            lane = _Lane(job, task.resources, next(self._lane_uid), task.any_device,
                         task.affinity)
            job.lanes[task.lane_key] = lane
        serial = next(self._serial)
        self._live[tid] = serial
        self._queued[tid] = task
        was_head = not lane.heap or task.task_seq < lane.heap[0][0]
        heapq.heappush(lane.heap, (task.task_seq, serial, task))
        lane.live += 1
        job.live += 1
        self._pushes += 1
        if job.paused:
            return
        bucket = self._bucket(job.priority, job.project)
        bucket.live += 1
        job.project.ready += 1
        self._ready += 1
        if lane.live == 1 or was_head:
            # the lane is new in the bucket or has a new head: (re-)enter it with its new key
            lane.gen += 1
            heapq.heappush(bucket.heap, (job.job_seq, task.task_seq, lane.uid, lane.gen, lane))

    def push_many(self, tasks: Iterator[QueuedTask] | list[QueuedTask]) -> None:
        for task in tasks:
            self.push(task)

    def discard(self, task_id: int) -> bool:
        """Drop a queued task (cancelled, or no longer ready). Returns whether it was queued."""
        if self._live.pop(task_id, None) is None:
            return False
        task = self._queued.pop(task_id)
        job = self._jobs[task.job_id]
        lane = job.lanes[task.lane_key]
        lane.live -= 1
        job.live -= 1
        if not job.paused:
            self._unready(job.priority, job.project, 1)
        self._drop_reservation(task_id)
        return True

    def set_job_priority(self, job_id: str, priority: int) -> None:
        """Change a job's priority; its queued tasks move with it, keeping their order."""
        _check_priority(priority)
        job = self._jobs.get(job_id)
        if job is None or job.priority == priority:
            return
        if job.paused:
            job.priority = priority
            return
        self._hide(job)
        job.priority = priority
        self._show(job)

    def pause_job(self, job_id: str) -> None:
        """Hide the job's ready tasks (also those pushed later) until `resume_job`."""
        job = self._jobs.get(job_id)
        if job is None:
            self._paused_early.add(job_id)
            return
        if job.paused:
            return
        self._hide(job)
        job.paused = True

    def resume_job(self, job_id: str) -> None:
        self._paused_early.discard(job_id)
        job = self._jobs.get(job_id)
        if job is None or not job.paused:
            return
        job.paused = False
        self._show(job)

    def remove_job(self, job_id: str) -> int:
        """Drop all queued tasks of a job (cancel) and forget it. Returns how many were dropped.

        Its running tasks stay counted until `finished` is called for them.
        """
        self._paused_early.discard(job_id)
        job = self._jobs.pop(job_id, None)
        if job is None:
            return 0
        if not job.paused:
            self._hide(job)
        dropped = 0
        for lane in job.lanes.values():
            for _, serial, task in lane.heap:
                if self._live.get(task.task_id) == serial:
                    del self._live[task.task_id]
                    del self._queued[task.task_id]
                    self._drop_reservation(task.task_id)
                    dropped += 1
            lane.heap.clear()
            lane.live = 0
        job.live = 0
        return dropped

    def is_paused(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        return job.paused if job is not None else job_id in self._paused_early

    def blocklist(self, job_id: str, node: str) -> None:
        """Never give a task of `job_id` to `node` again (until the job is removed)."""
        job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(f"unknown job {job_id!r}: push its tasks before blocklisting nodes")
        job.blocked_nodes.add(node)
        tid = self._reserved_node.get(node)
        if tid is not None and (t := self._queued.get(tid)) is not None and t.job_id == job_id:
            self._drop_reservation(tid)

    def clear_blocklist(self, job_id: str) -> None:
        """The job starts afresh (a user retried it): every node may run it again."""
        job = self._jobs.get(job_id)
        if job is not None:
            job.blocked_nodes.clear()

    def blocked_nodes(self, job_id: str) -> frozenset[str]:
        job = self._jobs.get(job_id)
        return frozenset() if job is None else frozenset(job.blocked_nodes)

    def ready_count(self, *, include_paused: bool = False) -> int:
        """Queued tasks; paused jobs' tasks only with ``include_paused``."""
        return len(self._live) if include_paused else self._ready

    def running_count(self) -> int:
        return len(self._running)

    def is_queued(self, task_id: int) -> bool:
        return task_id in self._live

    def is_running(self, task_id: int) -> bool:
        return task_id in self._running

    def stats(self) -> PolicyStats:
        return PolicyStats(
            self._picks,
            self._picked,
            self._pushes,
            self._skip_fit,
            self._skip_block,
            self._reservations,
            self._skip_device,
        )

    # ------------------------------------------------------------------ decisions

    def pick(
        self,
        free: Resources,
        node: str | None = None,
        *,
        capacity: Resources | None = None,
        gpu_only: bool = False,
        warm: set[str] | frozenset[str] | None = None,
    ) -> QueuedTask | None:
        """The best ready task that fits `free` on `node`; it is dequeued and counted running.

        ``gpu_only``: the slot is a GPU's, and a task that asks for no GPU never holds one.
        ``warm``: what the slot holds loaded; tasks with that affinity go first (rule 7).

        ``capacity`` (optional) is everything `node` has, busy or not; with it the policy can
        reserve the node for a task that has been passed over too often (see the module doc).
        Returns None when nothing may run there now.
        """
        self._picks += 1
        if node is not None and self._reserved_node and not gpu_only:
            tid = self._reserved_node.get(node)
            if tid is not None:
                got = self._pick_reserved(tid, free, node, capacity)
                if got is _HOLD:
                    return None
                if isinstance(got, QueuedTask):
                    return self._start(got)
        if self._prio_dirty:
            self._prio_desc = sorted(self._levels, reverse=True)
            self._prio_dirty = False
        for prio in self._prio_desc:
            level = self._levels[prio]
            if len(level) == 1:
                for bucket in level.values():
                    if bucket.project.blocked():
                        continue
                    got = self._pick_in(bucket, free, node, capacity, gpu_only, warm)
                    if got is _HOLD:
                        return None
                    if isinstance(got, QueuedTask):
                        return self._start(got)
                continue
            for bucket in self._fair_order(level):
                got = self._pick_in(bucket, free, node, capacity, gpu_only, warm)
                if got is _HOLD:
                    return None
                if isinstance(got, QueuedTask):
                    return self._start(got)
        return None

    def finished(
        self, task: QueuedTask, core_seconds: float = 0.0, gpu_seconds: float = 0.0
    ) -> None:
        """A picked task stopped running (done, failed, lost or cancelled); meter its usage.

        Push it again afterwards to retry it.
        """
        if not core_seconds >= 0:
            raise ValueError(f"core_seconds must be ≥ 0, got {core_seconds}")
        running = self._running.pop(task.task_id, None)
        if running is None:
            raise ValueError(f"task {task.task_id} is not running (never picked, or finished)")
        project = self._project(running.project)
        project.running_cores -= running.resources.cpus
        if project.running_cores < 1e-9:
            project.running_cores = 0.0
        project.running_tasks -= 1
        project.used += core_seconds
        project.gpu_used += max(0.0, gpu_seconds)

    # ------------------------------------------------------------------ internals

    def _project(self, name: str) -> _Project:
        p = self._projects.get(name)
        if p is None:
            p = _Project(name)
            self._projects[name] = p
        return p

    def _bucket(self, priority: int, project: _Project) -> _Bucket:
        level = self._levels.get(priority)
        if level is None:
            level = {}
            self._levels[priority] = level
            self._prio_dirty = True
        bucket = level.get(project.name)
        if bucket is None:
            bucket = _Bucket(priority, project)
            level[project.name] = bucket
        return bucket

    def _unready(self, priority: int, project: _Project, n: int) -> None:
        """`n` tasks of (priority, project) stopped being ready; drop empty buckets/levels."""
        project.ready -= n
        self._ready -= n
        level = self._levels[priority]
        bucket = level[project.name]
        bucket.live -= n
        if bucket.live == 0:
            # only stale entries remain in its heap: drop the whole bucket
            del level[project.name]
            if not level:
                del self._levels[priority]
                self._prio_dirty = True

    def _hide(self, job: _Job) -> None:
        """Take a job's lanes out of its bucket (pause, re-prioritise, remove)."""
        for lane in job.lanes.values():
            lane.gen += 1  # its bucket entries become stale
        if job.live:
            self._unready(job.priority, job.project, job.live)

    def _show(self, job: _Job) -> None:
        if not job.live:
            return
        bucket = self._bucket(job.priority, job.project)
        bucket.live += job.live
        job.project.ready += job.live
        self._ready += job.live
        for lane in job.lanes.values():
            self._clean_head(lane)
            if lane.heap:
                lane.gen += 1
                heapq.heappush(
                    bucket.heap, (job.job_seq, lane.heap[0][0], lane.uid, lane.gen, lane)
                )

    def _clean_head(self, lane: _Lane) -> None:
        heap = lane.heap
        live = self._live
        while heap:
            _, serial, task = heap[0]
            if live.get(task.task_id) == serial:
                return
            heapq.heappop(heap)

    def _fair_order(self, level: dict[str, _Bucket]) -> list[_Bucket]:
        """The level's projects, the one furthest below its weighted share of cores first.

        Among the candidate projects (ready work here, budget left) with running cores r_i,
        weights w_i, R = Σ r_i and W = Σ w_i, the key is the deficit r_i − (R + c_i)·w_i / W,
        where c_i is the cores of the task the project would run next: the project whose
        share would be furthest below its weight. With equal task sizes this keeps every
        project within one task of its share (plain "lowest r_i / w_i" can drift by two).
        Ties: lower metered core-seconds / weight, then the name.
        """
        cands: list[tuple[_Project, float, _Bucket]] = []
        total_r = 0.0
        total_w = 0.0
        for bucket in level.values():
            p = bucket.project
            if p.blocked():
                continue
            lane = self._peek(bucket)
            if lane is None:
                continue
            cands.append((p, lane.resources.cpus, bucket))
            total_r += p.running_cores
            total_w += p.weight
        ranked = [
            (p.running_cores - (total_r + c) * p.weight / total_w, p.used / p.weight, p.name, b)
            for p, c, b in cands
        ]
        ranked.sort(key=lambda r: r[:3])
        return [r[3] for r in ranked]

    def _peek(self, bucket: _Bucket) -> _Lane | None:
        """The bucket's first lane, after dropping stale entries and re-keying its top."""
        heap = bucket.heap
        while heap:
            entry = heap[0]
            lane = entry[4]
            if entry[3] != lane.gen:
                heapq.heappop(heap)
                continue
            self._clean_head(lane)
            if not lane.heap:
                heapq.heappop(heap)
                continue
            head_seq = lane.heap[0][0]
            if head_seq != entry[1]:
                heapq.heapreplace(heap, (entry[0], head_seq, entry[2], entry[3], lane))
                continue
            return lane
        return None

    def _pick_in(
        self, bucket: _Bucket, free: Resources, node: str | None, capacity: Resources | None,
        gpu_only: bool = False, warm: set[str] | frozenset[str] | None = None,
    ) -> QueuedTask | _Hold | None:
        """The first task of the bucket's lanes (in order) that fits and may run on node;
        with `warm`, the first such lane whose affinity the slot holds goes first."""
        heap = bucket.heap
        skipped: list[_Entry] = []
        result: QueuedTask | _Hold | None = None
        scanned = 0
        cold: _Entry | None = None  # the first fitting lane the slot holds nothing for
        while heap:
            entry = heap[0]
            lane = entry[4]
            if entry[3] != lane.gen:
                heapq.heappop(heap)  # stale: the lane left the bucket or was re-keyed
                continue
            self._clean_head(lane)
            if not lane.heap:
                heapq.heappop(heap)
                continue
            head_seq, _, task = lane.heap[0]
            if head_seq != entry[1]:
                # the old head was discarded: re-key the lane and look again
                heapq.heapreplace(heap, (entry[0], head_seq, entry[2], entry[3], lane))
                continue
            if scanned >= self.max_scan:
                break
            scanned += 1
            if node is not None and node in lane.job.blocked_nodes:
                self._skip_block += 1
                skipped.append(heapq.heappop(heap))
                continue
            if not may_take(lane.any_device, lane.bound, kind_of_slot(gpu_only),
                            lane.resources.gpus > 0):
                if lane.any_device:
                    self._skip_device += 1
                    skipped.append(heapq.heappop(heap))
                    continue
                if gpu_only:
                    skipped.append(heapq.heappop(heap))
                    continue
                # a GPU task offered a CPU slot: it does not fit (counted below)
            if not lane.resources.fits_in(free):
                self._skip_fit += 1
                lane.skips += 1
                if (
                    lane.skips >= self.starvation_limit
                    and capacity is not None
                    and node is not None
                    and node not in self._reserved_node
                    and task.task_id not in self._reserving_task
                    and lane.resources.fits_in(capacity)
                ):
                    self._reserved_node[node] = task.task_id
                    self._reserving_task[task.task_id] = node
                    self._reservations += 1
                    result = _HOLD
                    break
                skipped.append(heapq.heappop(heap))
                continue
            if warm and lane.affinity is not None and lane.affinity not in warm:
                # fits, but the slot holds another model: look on for a lane it holds warm
                if cold is None:
                    cold = heapq.heappop(heap)
                else:
                    skipped.append(heapq.heappop(heap))
                continue
            # take it
            heapq.heappop(lane.heap)
            lane.skips = 0
            if lane.any_device and lane.bound is None:
                lane.bound = kind_of_slot(gpu_only)  # the frame renders on this kind from now
            self._clean_head(lane)
            if lane.heap:
                heapq.heapreplace(heap, (entry[0], lane.heap[0][0], entry[2], entry[3], lane))
            else:
                heapq.heappop(heap)
            result = task
            break
        if cold is not None:
            if result is None:  # nothing warm fits: take the first cold lane
                lane = cold[4]
                _, _, task = heapq.heappop(lane.heap)
                lane.skips = 0
                if lane.any_device and lane.bound is None:
                    lane.bound = kind_of_slot(gpu_only)
                self._clean_head(lane)
                if lane.heap:
                    skipped.append((cold[0], lane.heap[0][0], cold[2], cold[3], lane))
                result = task
            else:
                skipped.append(cold)
        for e in skipped:
            heapq.heappush(heap, e)
        return result

    def pick_from_job(
        self, job_id: str, free: Resources, node: str | None = None, *, gpu_only: bool = False,
    ) -> QueuedTask | None:
        """A ready task of `job_id` for a slot that holds what the job's tasks share (an
        OpenJD session with its environments entered), dequeued and counted running — only
        when the job is at the highest priority that has ready work, not paused, its project
        not over budget, and the node neither blocklisted for it nor reserved for another
        task. None otherwise: then `pick` as usual. Within that priority it may pass over
        another project's turn (a warm session is worth more than one fair-share step)."""
        job = self._jobs.get(job_id)
        if job is None or job.paused or not job.live or job.project.blocked():
            return None
        if not self._levels or job.priority < max(self._levels):
            return None
        if node is not None and (node in job.blocked_nodes or node in self._reserved_node):
            return None
        for lane in job.lanes.values():
            if gpu_only and lane.resources.gpus <= 0:
                continue
            if not lane.resources.fits_in(free):
                continue
            self._clean_head(lane)
            if not lane.heap:
                continue
            _, _, task = heapq.heappop(lane.heap)  # its bucket entry is re-keyed when next seen
            self._picks += 1
            return self._start(task)
        return None

    def _pick_reserved(
        self, tid: int, free: Resources, node: str, capacity: Resources | None
    ) -> QueuedTask | _Hold | None:
        """The reserved task if it fits now, HOLD while the node drains, None if void."""
        task = self._queued.get(tid)
        job = None if task is None else self._jobs.get(task.job_id)
        if (
            task is None
            or job is None
            or job.paused
            or job.project.blocked()
            or node in job.blocked_nodes
            or (capacity is not None and not task.resources.fits_in(capacity))
            or job.lanes[task.lane_key].bound is SlotKind.GPU
        ):
            self._drop_reservation(tid)
            return None
        if not task.resources.fits_in(free):
            return _HOLD
        # dequeue it out of order: its lane heap entry goes stale, the lane is re-keyed lazily
        self._drop_reservation(tid)
        del self._live[tid]
        del self._queued[tid]
        lane = job.lanes[task.lane_key]
        lane.live -= 1
        lane.skips = 0
        if lane.any_device and lane.bound is None:
            lane.bound = SlotKind.CPU  # reservations are made on CPU slots only
        job.live -= 1
        self._unready(job.priority, job.project, 1)
        self._queued[tid] = task  # _start removes it again
        return task

    def _drop_reservation(self, task_id: int) -> None:
        node = self._reserving_task.pop(task_id, None)
        if node is not None:
            del self._reserved_node[node]

    def _start(self, task: QueuedTask) -> QueuedTask:
        tid = task.task_id
        if tid in self._live:
            # dequeued from its lane by _pick_in
            del self._live[tid]
            job = self._jobs[task.job_id]
            job.lanes[task.lane_key].live -= 1
            job.live -= 1
            self._unready(job.priority, job.project, 1)
            self._drop_reservation(tid)
        del self._queued[tid]
        job = self._jobs[task.job_id]
        if task.priority != job.priority:
            task = replace(task, priority=job.priority)
        self._running[tid] = task
        p = job.project
        p.running_cores += task.resources.cpus
        p.running_tasks += 1
        self._picked += 1
        return task

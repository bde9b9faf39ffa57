"""The dispatcher: keeps every worker slot busy with the task the policy picks, on Ray.

Ray decides where, wanhe decides what. The dispatcher never floods Ray: it submits one task to
each idle worker slot (`engine.pool`), chosen by `sched.SchedulingPolicy` from the queue mirror
(`engine.mirror`), records the attempt in the database first, and records the outcome when the
worker answers. How an attempt ended is typed by the executor; what follows (retry, blocklist,
give up, fail the job) is the state machine's (`wanhe.lifecycle`), applied by the store in one
transaction. A worker lost to anything (Ray's out-of-memory killer, node loss, its process
killed, any actor death) loses its attempt, which is retried elsewhere, and is replaced; what
took it stays on the pool for the jobs' reasons. Each task's memory request is reserved on its
worker's node while it runs (`WorkerPool.offer`), like its cores. A ready task that no slot
may ever run fails its job at once on a fixed pool, with the reason; nothing waits silently.

The same dispatcher serves `wanhe render` (run until given jobs finish) and `wanhe serve`
(run until stopped, picking up jobs other processes put in the database). `wanhe render` may
also hand it local workers (`engine.handles.LocalWorker`) that take tasks from the first
second, while its embedded Ray is still starting; the Ray workers join once Ray is up.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.engine.handles import LocalWorker
from wanhe.engine.mirror import MAY_RUN, QueueMirror
from wanhe.engine.pool import RayStartError, Running, Slot, Warm, WorkerPool
from wanhe.jobtypes import registry as job_types
from wanhe.jobtypes.base import TaskView
from wanhe.lifecycle import RetryRules, Verdict, stranded_reason, unplaceable_fails_job
from wanhe.model import AttemptOutcome, JobState, Resources, TaskState
from wanhe.sched.elastic import Bundle, Caps, Demand, plan_bundles
from wanhe.sched.placement import why_unplaceable
from wanhe.sched.policy import QueuedTask, SchedulingPolicy
from wanhe.store.store import (
    AttemptEnd,
    AttemptFinish,
    AttemptStart,
    JobRow,
    Store,
    TaskRow,
    Usage,
)

if TYPE_CHECKING:
    from wanhe.engine import cluster

__all__ = ["Dispatcher", "RayStartError", "Running", "Slot", "TaskEvent"]

log = logging.getLogger(__name__)

SYNC_INTERVAL_S = 0.5
PROGRESS_INTERVAL_S = 1.0
# at most this many workers asked for their progress per interval (the longest unasked first):
# 30,000 busy slots are not 30,000 actor calls a second
PROGRESS_ASKS = 500
PROGRESS_ANSWER_S = 60.0  # an activity call unanswered this long is forgotten
# elastic: a Ray worker slot idle this long, beyond what the queue wants, is let go (its node
# then holds nothing, and the autoscaler's own idle timeout releases it)
ELASTIC_IDLE_S = 5.0
HEARTBEAT_FLUSH_S = 2.0  # how often workers' answers are written as attempts' signs of life
# a Ray worker told to cancel that has not answered after this long is killed and replaced:
# work inside the worker's own process (a diffusion step at a huge size, a C call) may not look
# at the cancel flag for minutes
CANCEL_GRACE_S = 10.0


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


def metered_cores(slot: Slot, task: TaskRow) -> float:
    """Cores billed for an attempt: what the slot reserves; one core for a light task; what a
    GPU task asks for (its GPU slot reserves no cores of its own)."""
    if slot.gpus > 0:
        return max(task.resources.cpus, 1.0)
    return slot.cpus if task.resources.cpus > 0 else 1.0


def metered_gpus(slot: Slot, task: TaskRow) -> float:
    """GPUs billed: a GPU slot's, for a task that asks for a GPU or may take one (`any`)."""
    return slot.gpus if task.resources.gpus > 0 or task.resources.cpus > 0 else 0.0


class Dispatcher:
    def __init__(
        self,
        store: Store,
        *,
        threads: int = 1,
        workers: int | None = None,
        tools: Mapping[str, str] | None = None,
        log_root: Path,
        on_event: EventSink | None = None,
        local_workers: Sequence[LocalWorker] = (),
        ray_start: cluster.EmbeddedStart | None = None,
        use_ray: bool = True,
        elastic: bool = False,
        caps: Caps | None = None,
        elastic_idle_s: float = ELASTIC_IDLE_S,
        request_resources: Callable[[list[Bundle]], None] | None = None,
    ) -> None:
        """`local_workers`: render workers of this process, usable at once, each reserving
        `threads` cores beside Ray's. `ray_start`: Ray starting in the background; Ray's
        workers are made once it is up (without it, Ray must be up already). `use_ray=False`:
        no Ray at all; the local workers render and a local image worker does the rest.
        `elastic`: the cluster may grow (an autoscaler): a task no slot can run waits, and its
        job says why, instead of failing; the dispatcher asks the autoscaler for what the queue
        needs (`sched.elastic.plan_bundles` within `caps`), through `request_resources`
        (default: Ray's autoscaler SDK)."""
        self.store = store
        self.log_root = log_root
        self.on_event = on_event
        self.elastic = elastic
        self.policy = SchedulingPolicy()
        self.pool = WorkerPool(
            threads=threads, workers=workers, tools=tools or {},
            local_workers=list(local_workers), ray_start=ray_start, use_ray=use_ray,
        )
        self.mirror = QueueMirror(store, self.policy)
        self._running: dict[Future[Any], Running] = {}  # run() -> running attempt
        # run() futures as they complete (a done callback puts each here): a wait costs what
        # answered, where waiting on every running future cost O(slots) per step
        self._answered: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self._alive: dict[int, float] = {}  # attempt id -> its worker's last answer (epoch)
        self._last_flush = 0.0
        self._last_sync = 0.0
        self._last_progress = 0.0
        # activity() calls in flight -> (slot, attempt asked about, when (epoch)): read at the
        # next poll
        self._asking: dict[Future[Any], tuple[Slot, int, float]] = {}
        self._placement_checked = (-1, -1)  # (pool revision, shapes revision) last checked
        self._last_error: dict[int, str] = {}  # job id -> last attempt error (for reasons)
        self.poke_event = threading.Event()
        self.dispatch_latencies: list[float] = []
        self.caps = caps or Caps()
        self.elastic_idle_s = elastic_idle_s
        self.cancel_grace_s = CANCEL_GRACE_S
        self._request_resources = request_resources
        self.requested: list[Bundle] | None = None  # the standing autoscaler request
        self.pool.elastic = elastic

    # ------------------------------------------------------------------ the pool

    @property
    def slots(self) -> list[Slot]:
        return self.pool.slots

    def start_pool(self, warm: Warm | None = None) -> None:
        """Make the workers the pool lacks (none while Ray is still starting)."""
        self.pool.start(warm)

    def workers(self) -> list[dict[str, Any]]:
        return self.pool.describe()

    # ------------------------------------------------------------------ database -> policy

    def sync(self, job_ids: Sequence[int] | None = None, *, full: bool = False) -> None:
        """Bring the policy in line with the database (see `QueueMirror.sync`); stop running
        attempts whose job no longer wants them; fail or explain what cannot be placed."""
        self._last_sync = time.monotonic()
        scope = None if job_ids is None else frozenset(job_ids)
        if self.mirror.sync(scope, full=full):
            self._cancel_stale_running()
        if self.elastic:
            self._ask_autoscaler()
        if self.pool.requested_workers is None and (not job_ids or self.elastic):
            self.pool.start()  # the cluster may have grown
        if self.elastic:
            self.pool.trim(self.elastic_idle_s)
        self._check_placement()
        self._release_ended()

    def _release_ended(self) -> None:
        """Workers let go of what they hold warm for jobs that have ended (an OpenJD session
        exits its environments)."""
        held = {job_id for slot in self.pool.slots for job_id in slot.warm_jobs.values()}
        if not held:
            return
        ended = {j for j in held if (job := self.store.job(j)) is None or job.state.is_final}
        for slot in self.pool.slots:
            for key, job_id in list(slot.warm_jobs.items()):
                if job_id in ended and (slot.busy is None or slot.busy.task.job_id != job_id):
                    del slot.warm_jobs[key]
                    slot.warm_keys.discard(key)
                    slot.worker.call("release", key)

    # ------------------------------------------------------------------ elastic

    def demands(self) -> list[Demand]:
        """Every project's queued and running tasks by shape, with its budget left, the
        projects of the highest job priority first: what `plan_bundles` turns into a request."""
        queued: dict[str, dict[Resources, int]] = {}
        running: dict[str, dict[Resources, int]] = {}
        priority: dict[str, int] = {}
        for job_id, shapes in self.mirror.shapes_by_job.items():
            if not shapes or self.policy.is_paused(str(job_id)):
                continue
            job = self.mirror.job(job_id)
            name = self.mirror.project_name(job.project_id)
            mine = queued.setdefault(name, {})
            for shape, count in shapes.items():
                mine[shape] = mine.get(shape, 0) + count
            priority[name] = max(priority.get(name, 0), job.priority)
        for run in self._running.values():
            mine = running.setdefault(run.queued.project, {})
            mine[run.queued.resources] = mine.get(run.queued.resources, 0) + 1
            priority.setdefault(run.queued.project, run.queued.priority)
        out = []
        for name in sorted(priority, key=lambda n: (-priority[n], n)):
            cores_left, gpus_left = self.policy.budget_left(name)
            out.append(Demand(name, queued.get(name, {}), running.get(name, {}),
                              cores_left, gpus_left))
        return out

    def _ask_autoscaler(self) -> None:
        """Elastic: tell the pool how many slots the queue wants and the autoscaler what to
        make room for; resend only when the request changed."""
        bundles = plan_bundles(self.demands(), self.caps)
        # GPU slots: the GPU tasks', and the GPUs the cluster already has may take `any`
        # work too (the request itself asks CPU nodes for that; the pool caps by what is there)
        either = self.mirror.any_device_queued()
        self.pool.want = (sum(1 for b in bundles if "GPU" not in b),
                          sum(1 for b in bundles if "GPU" in b) + either)
        if bundles == self.requested:
            return
        ask = self._request_resources
        if ask is None:
            from wanhe.engine import cluster

            ask = cluster.request_resources
        try:
            ask(bundles)
        except Exception as exc:  # the farm goes on with the nodes it has
            log.warning("could not ask the autoscaler for %d bundle(s): %s", len(bundles), exc)
            return
        log.info("asked the autoscaler for %d bundle(s)%s", len(bundles),
                 "" if bundles else ": the queue is empty")
        self.requested = bundles

    def _cancel_stale_running(self) -> None:
        """Running attempts whose task the database no longer wants (job cancelled) stop now."""
        if not self._running:
            return
        stale = self.store.not_running([running.task.id for running in self._running.values()])
        for running in self._running.values():
            if running.task.id in stale and running.cancel_at is None:
                running.cancel_at = time.monotonic()
                running.slot.worker.call("cancel")

    def _stop_unanswered_cancels(self) -> None:
        """A Ray worker that has not stopped within `cancel_grace_s` of its cancel is killed
        (and replaced when its answer comes): a cancelled task never runs on."""
        now = time.monotonic()
        for running in self._running.values():
            if running.cancel_at is not None and not running.slot.local \
                    and now - running.cancel_at > self.cancel_grace_s:
                log.warning("worker %s did not stop %s within %.0f s of its cancel: killing it",
                            running.slot.name, running.task.key, self.cancel_grace_s)
                running.cancel_at = float("inf")  # once
                running.slot.worker.kill()

    def _label(self, job: JobRow, task: TaskRow) -> str:
        return job_types.task_label(
            job.kind, TaskView(task.key, task.kind, task.frame, task.tile, task.chunk)
        )

    def _rules(self, job: JobRow) -> RetryRules:
        return job_types.retry_rules(job.kind, job.spec)

    def _check_placement(self, *, force: bool = False) -> None:
        """Every queued task must have a slot that may run it: fail (fixed pool) or explain
        (elastic) the jobs whose tasks have none. Costs O(jobs × resource shapes), and runs
        only when the pool changed or a job queued a shape it had none of."""
        if not self.pool.settled or (not self.pool.slots and not self.pool.trouble):
            return  # still starting; no slot at all with no loss behind it: not ours to say
        stamp = (self.pool.revision, self.mirror.shapes_revision)
        if stamp == self._placement_checked and not force:
            return
        self._placement_checked = stamp
        shapes = self.pool.shapes()
        for job_id, needs in list(self.mirror.shapes_by_job.items()):
            blocked = self.policy.blocked_nodes(str(job_id))
            for need in list(needs):
                why = why_unplaceable(shapes, need, blocked)
                if why is None:
                    continue
                stuck = self.mirror.queued_of_shape(job_id, need)
                if stuck is not None:
                    self._unplaceable(job_id, stuck, why, sorted(blocked))
                break
            else:
                self.mirror.wait_reasons.pop(job_id, None)

    def _unplaceable(self, job_id: int, task_id: int, why: str, blocked: list[str]) -> None:
        job = self.mirror.job(job_id)
        task = self.store.task(task_id)
        if task is None or job.state not in MAY_RUN:
            return
        label = self._label(job, task)
        if why == "blocklisted":
            reason = stranded_reason(label, blocked, self._last_error.get(job_id, ""))
        else:
            reason = f"{label} cannot run on this farm: {why}"
            if self.pool.trouble:  # the farm shrank: say what took its workers
                reason += f" ({self.pool.trouble})"
        if not unplaceable_fails_job(blocklisted=why == "blocklisted", elastic=self.elastic):
            self.mirror.wait_reasons[job_id] = f"waiting: {reason}"
            self.mirror.note_job_message(job_id, f"waiting: {reason}")
            return
        log.warning("job %s fails: %s", job_id, reason)
        self.mirror.forget_job(job_id)
        self.store.fail_job(job_id, reason, task_id=task_id)
        self._emit(TaskEvent("failed", task, job_id, message=reason))

    # ------------------------------------------------------------------ dispatching

    def _log_path(self, task: TaskRow, attempt: int) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", task.key)
        return self.log_root / f"job{task.job_id}" / f"{safe}.{attempt}.log"

    def dispatch(self) -> int:
        """Give every idle slot the best task that fits it; return how many started.

        The picks of all idle slots are started in one transaction (`Store.start_attempts`),
        then sent to their workers without waiting on any."""
        if not self.policy.ready_count():
            return 0  # nothing to pick (a paused job's tasks are held, not ready)
        picks: list[tuple[Slot, QueuedTask]] = []
        # Light slots first, so image work goes to them and render slots keep rendering.
        idle = [slot for slot in self.pool.slots if slot.busy is None]
        for slot in sorted(idle, key=lambda s: not s.light):
            queued = None
            offer = self.pool.offer(slot)  # its node's memory less what running tasks hold
            for warm_job in dict.fromkeys(slot.warm_jobs.values()):  # its session first
                queued = self.policy.pick_from_job(str(warm_job), offer, node=slot.node,
                                                   gpu_only=slot.gpus > 0)
                if queued is not None:
                    break
            if queued is None:
                queued = self.policy.pick(offer, node=slot.node, gpu_only=slot.gpus > 0,
                                          warm=slot.warm_keys, capacity=slot.capacity())
            if queued is None:
                continue
            self.mirror.dequeued(queued.task_id)
            # held now: the next slot's offer on this node sees it
            self.pool.reserve(slot, queued.resources.memory)
            picks.append((slot, queued))
        if not picks:
            return 0
        rows = {task.id: task for task in self.store.tasks_by_ids([q.task_id for _, q in picks])}
        starts: list[tuple[Slot, QueuedTask, TaskRow, Path]] = []
        for slot, queued in picks:
            task = rows.get(queued.task_id)
            if task is None or task.state is not TaskState.READY:
                self._unpicked(slot, queued)
                continue
            starts.append((slot, queued, task, self._log_path(task, task.attempts + 1)))
        attempts = self.store.start_attempts([
            AttemptStart(task.id, node=slot.node, worker=slot.name,
                         cores=metered_cores(slot, task), log_path=str(log_path))
            for slot, _, task, log_path in starts])
        started = 0
        for slot, queued, task, log_path in starts:
            attempt_id = attempts.get(task.id)
            if attempt_id is None:  # no longer ready (another process changed it)
                self._unpicked(slot, queued)
                continue
            since = self.mirror.ready_since.pop(task.id, None)
            if since is not None:
                self.dispatch_latencies.append(time.monotonic() - since)
            future = slot.worker.call(
                "run",
                {"kind": task.kind, "key": task.key, "payload": task.payload,
                 "log_path": str(log_path), "attempt": task.attempts + 1,
                 "project": queued.project, "memory_bytes": task.resources.memory,
                 "project_id": self.mirror.job(task.job_id).project_id},
            )
            running = Running(queued, task, attempt_id, slot, future, time.monotonic())
            slot.busy = running
            slot.progress = 0.0
            slot.status = ""
            self._running[future] = running
            future.add_done_callback(self._answered.put)
            started += 1
            log.info("start %s (job %s) on %s", task.key, task.job_id, slot.name)
            self._emit(TaskEvent("started", task, task.job_id, node=slot.node))
        return started

    def _unpicked(self, slot: Slot, queued: QueuedTask) -> None:
        """A picked task that cannot start after all: the policy and the node let it go."""
        self.pool.release(slot, queued.resources.memory)
        self.policy.finished(queued, 0.0)

    def collect(self, timeout: float) -> int:
        """Wait up to `timeout` for answers from workers and record them; return how many."""
        self.pool.admit_pending()
        if not self._running:
            if timeout > 0:
                # wake on a poke, but leave it set: the next step() must sync to see the change
                self.poke_event.wait(timeout)
            return 0
        done = self._answers(timeout)
        succeeded: list[tuple[Running, dict[str, Any]]] = []  # recorded together, at the end
        for future in done:
            running = self._running.pop(future)
            running.slot.busy = None
            running.slot.idle_since = time.monotonic()
            self.pool.release(running.slot, running.task.resources.memory)
            log.info("answer for %s from %s", running.task.key, running.slot.name)
            try:
                result = future.result()
            except Exception as exc:
                died = running.slot.worker.lost(exc)
                if running.cancel_at is not None:  # killed by us after its cancel, or died
                    self.pool.replace(running.slot)
                    self._ended(running, {
                        "outcome": AttemptOutcome.CANCELLED.value,
                        "error": f"cancelled: worker {running.slot.name} did not stop within "
                                 f"{self.cancel_grace_s:g} s and was replaced"})
                    continue
                if died is None:
                    self._ended(running, {"outcome": AttemptOutcome.LOST.value,
                                          "error": f"the attempt was lost: {exc}"})
                    continue
                log.warning("worker %s on %s lost: %s", running.slot.name, running.slot.node,
                            died)
                # looked at before the replacement's start sweeps the dead worker's cgroup
                oom = _killed_for_memory(running.slot)
                # replaced first: the verdict below may fail the job, and the next job must
                # find a full pool either way
                self.pool.replace(running.slot, died)
                if oom is not None:  # its own cgroup's limit, not a mystery: say which
                    self._ended(running, {"outcome": AttemptOutcome.OUT_OF_MEMORY.value,
                                          "error": oom.reason(), "peak_rss": oom.peak})
                    continue
                self._ended(running, {
                    "outcome": AttemptOutcome.LOST.value,
                    "error": f"worker {running.slot.name} on {running.slot.node} was lost: "
                             f"{died}",
                })
                continue
            if result.get("ok"):
                succeeded.append((running, result))
            else:
                self._ended(running, result)
        self._succeeded_many(succeeded)
        return len(done)

    def _answers(self, timeout: float) -> list[Future[Any]]:
        """The running attempts' futures that completed: waits up to `timeout` for the first,
        then takes every other one already there."""
        try:
            first = (self._answered.get(timeout=timeout) if timeout > 0
                     else self._answered.get_nowait())
        except queue.Empty:
            return []
        done = [first]
        while True:
            try:
                done.append(self._answered.get_nowait())
            except queue.Empty:
                break
        # one handed back (or otherwise no longer tracked) is not answered twice
        return [future for future in done if future in self._running]

    def _usage(self, running: Running, result: dict[str, Any]) -> Usage:
        wall = float(result.get("wall_s") or (time.monotonic() - running.started))
        return Usage(
            wall_s=wall, cores=metered_cores(running.slot, running.task),
            cpu_s=result.get("cpu_s"), peak_rss=result.get("peak_rss"),
            gpu_s=metered_gpus(running.slot, running.task) * wall,
        )

    def _metered(self, running: Running, usage: Usage) -> None:
        self.policy.finished(running.queued, usage.cores * usage.wall_s, usage.gpu_s)

    def _succeeded(self, running: Running, result: dict[str, Any]) -> None:
        self._succeeded_many([(running, result)])

    def _succeeded_many(self, succeeded: list[tuple[Running, dict[str, Any]]]) -> None:
        """Succeeded attempts, recorded in one transaction (`Store.finish_attempts`)."""
        if not succeeded:
            return
        finished: list[AttemptFinish] = []
        for running, result in succeeded:
            usage = self._usage(running, result)
            self._metered(running, usage)
            # Before the database says done: whoever publishes the task's files queues them
            # now, so a reader who sees the task done finds its files published or on their
            # way.
            self._emit(TaskEvent("finishing", running.task, running.task.job_id,
                                 node=running.slot.node, result=result))
            finished.append(AttemptFinish(running.attempt_id, running.task.id, usage,
                                          result.get("output", {})))
        ready = self.store.finish_attempts(finished)
        for running, result in succeeded:
            if result.get("warm_keys") is not None:  # an executor that evicts says what it holds
                running.slot.warm_keys = {str(k) for k in result["warm_keys"]}
            elif result.get("warm"):
                running.slot.warm_keys.add(str(result["warm"]))
            if result.get("warm") and result.get("warm_scope") == "job":  # let go at its end
                running.slot.warm_jobs[str(result["warm"])] = running.task.job_id
        jobs = {job_id: self.mirror.refresh_job(job_id)
                for job_id in dict.fromkeys(r.task.job_id for r, _ in succeeded)}
        # Only the tasks these freed: re-reading every ready task of a big job after each
        # finish made dispatch cost grow with the job's size.
        for task in self.store.tasks_by_ids(ready):
            if task.state is TaskState.READY and task.job_id in jobs:
                self.mirror.queue(task, jobs[task.job_id])
            elif task.state is TaskState.READY:
                self.mirror.queue_if_ready(task.id)
        for running, result in succeeded:
            self._emit(TaskEvent("done", running.task, running.task.job_id,
                                 node=running.slot.node, result=result))
        for job in jobs.values():
            if job.state is JobState.DONE:
                self.mirror.forget_job(job.id)
                self._last_error.pop(job.id, None)
                if self.store.release_jobs_waiting_on(job.id):
                    self.mirror.sync_changes()  # the released jobs are stamped: queue them now

    def _ended(self, running: Running, result: dict[str, Any]) -> None:
        """An attempt that did not succeed: the store applies the state machine's verdict."""
        task, node = running.task, running.slot.node
        try:
            outcome = AttemptOutcome(result.get("outcome") or AttemptOutcome.FAILED.value)
        except ValueError:
            outcome = AttemptOutcome.FAILED
        message = str(result.get("error") or outcome.value)
        usage = self._usage(running, result)
        self._metered(running, usage)
        job = self.mirror.refresh_job(task.job_id)
        rules = self._rules(job)
        end: AttemptEnd = self.store.fail_attempt(
            running.attempt_id, task.id, outcome=outcome, usage=usage, message=message,
            rules=rules, label=self._label(job, task),
        )
        if outcome is not AttemptOutcome.CANCELLED:
            self._last_error[task.job_id] = message
        if end.job_failed:
            self.mirror.forget_job(task.job_id)
            self._cancel_stale_running()
            self._emit(TaskEvent("failed", task, task.job_id, node=node, message=end.reason))
            return
        if outcome is AttemptOutcome.CANCELLED:
            # ready again when it was stopped while its job still wants it (a worker shut
            # down), or when another process's crash recovery re-readied it
            self.mirror.queue_if_ready(task.id)
            self._emit(TaskEvent("cancelled", task, task.job_id, node=node))
            return
        if end.verdict == Verdict.RETRY.value:
            self.mirror.queue_if_ready(task.id)
            if end.blocklist:  # the state machine's verdict, applied by the store
                log.warning("job %s: node %s blocklisted after %d failures",
                            task.job_id, node, rules.blocklist_after)
                self.policy.blocklist(str(task.job_id), node)
                self._check_placement(force=True)
            kind = "lost" if outcome is AttemptOutcome.LOST else "retry"
            self._emit(TaskEvent(kind, task, task.job_id, node=node, message=message))

    def _emit(self, event: TaskEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def poll_progress(self) -> None:
        """Every PROGRESS_INTERVAL_S: read the activity answers that came since the last poll
        and ask the busy workers not yet asked, the longest unasked first, at most
        PROGRESS_ASKS of them. Nothing here waits on a worker."""
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        for future, (slot, attempt_id, asked) in list(self._asking.items()):
            if not future.done():
                if time.time() - asked > PROGRESS_ANSWER_S:
                    del self._asking[future]
                continue
            del self._asking[future]
            if slot.busy is None or slot.busy.attempt_id != attempt_id:
                continue  # it answered about a task that has ended since
            try:
                activity = future.result()
                slot.progress = float(activity["progress"])
                slot.status = str(activity.get("status") or "")
            except Exception:
                continue
            # alive when asked, at least (billing never runs past a sign of life)
            self._alive[attempt_id] = asked
            self._emit(TaskEvent("progress", slot.busy.task, slot.busy.task.job_id,
                                 node=slot.node, result={"progress": slot.progress,
                                                         "status": slot.status}))
        waiting = {id(slot) for slot, _, _ in self._asking.values()}
        busy = [slot for slot in self.pool.slots
                if slot.busy is not None and id(slot) not in waiting]
        if len(busy) > PROGRESS_ASKS:
            busy.sort(key=lambda slot: slot.asked_at)
            busy = busy[:PROGRESS_ASKS]
        for slot in busy:
            assert slot.busy is not None
            slot.asked_at = now
            self._asking[slot.worker.call("activity")] = (slot, slot.busy.attempt_id, time.time())

    def flush_heartbeats(self, *, force: bool = False) -> None:
        """Write the workers' recent answers as their attempts' last signs of life (an
        attempt lost with the service is metered up to it), every HEARTBEAT_FLUSH_S."""
        now = time.monotonic()
        if not self._alive or (not force and now - self._last_flush < HEARTBEAT_FLUSH_S):
            return
        self._last_flush = now
        seen, self._alive = self._alive, {}
        try:
            self.store.note_attempts_alive(seen)
        except Exception:  # a busy database: the next flush has newer ones
            log.warning("could not record %d heartbeat(s)", len(seen), exc_info=True)

    # ------------------------------------------------------------------ loops

    def step(self, timeout: float = 0.2, job_ids: Sequence[int] | None = None) -> None:
        if not self.pool.started:
            self.pool.start()  # Ray came up since the last step: its workers join now
        if self.poke_event.is_set() or time.monotonic() - self._last_sync > SYNC_INTERVAL_S:
            self.poke_event.clear()
            self.sync(job_ids)
        self.dispatch()
        self.collect(timeout)
        self.dispatch()
        self._stop_unanswered_cancels()
        self.poll_progress()
        self.flush_heartbeats()

    def run_jobs(self, job_ids: Sequence[int], *, warm: Warm | None = None) -> None:
        """Run until every job in `job_ids` is done, failed or cancelled."""
        self.store.recover_interrupted(job_ids, rules_for=job_types.retry_rules)
        self.pool.start(warm)
        log.info("waiting for %d worker(s) to start", len(self.pool.pending))
        self.pool.admit_pending(timeout=120.0 if not self.pool.slots else 0.0)
        log.info("%d worker(s) ready", len(self.pool.slots))
        self.sync(job_ids)
        while True:
            self.step(0.2, job_ids)
            if not self._running and all(
                (job := self.store.job(j)) is None or job.state.is_final for j in job_ids
            ):
                return
            # a paused job's tasks are held in the queue, hidden: ready_count leaves them out
            if not self._running and not self.policy.ready_count() and not self.pool.pending \
                    and self.pool.slots:
                # nothing ready, nothing running: re-read once in case a dependency freed work
                self.sync(job_ids)
                if not self.policy.ready_count() and all(
                    (job := self.store.job(j)) is None or job.state.is_final
                    or job.state is JobState.PAUSED for j in job_ids
                ):
                    return

    def serve(self, stop: threading.Event) -> None:
        """Run until `stop` is set, serving every project's jobs."""
        self.store.recover_interrupted(rules_for=job_types.retry_rules)
        self.pool.start()
        self.sync()
        while not stop.is_set():
            self.step(0.2)

    def hand_back(self) -> int:
        """Stopping gracefully: give the running attempts' tasks back to the queue (closed as
        cancelled, nothing counted against their retries) before the workers go."""
        running = [(r.attempt_id, r.task.id) for r in self._running.values()]
        self._running.clear()
        if not running:
            return 0
        self.store.hand_back(running, "handed back: the service stopped while this attempt "
                                      "ran; it runs again at the next start")
        return len(running)

    def poke(self) -> None:
        """Something changed in the database (new job, cancel, …): sync on the next step."""
        self.poke_event.set()

    def close(self) -> None:
        if self.elastic and self.requested:
            try:  # nothing left to ask for: the autoscaler may let the nodes go
                (self._request_resources or _default_request)([])
            except Exception as exc:
                log.warning("could not withdraw the autoscaler request: %s", exc)
        self.pool.close()


def _default_request(bundles: list[Bundle]) -> None:
    from wanhe.engine import cluster

    cluster.request_resources(bundles)


def _killed_for_memory(slot: Slot) -> Any:
    """A lost worker that the kernel killed inside its own cgroup for memory (a diffusion
    task past its limit): its limit and peak (`wanhe.sandbox.box.KilledForMemory`), else
    None."""
    if slot.local or not slot.pid:
        return None
    from wanhe.sandbox.box import in_process_cgroup, killed_for_memory

    return killed_for_memory(slot.pid, in_process_cgroup(slot.name))

"""The worker pool: the dispatcher's slots — render slots (a worker reserving cores), light
slots (image work that reserves none), GPU slots (a worker holding one GPU) — on Ray or in
this process, made as the cluster allows and replaced when they die.

Memory is reserved like cores: each slot knows its node's memory (what Ray's node offers as
its `memory` resource, or the machine's RAM for a worker of this process), the pool keeps
what the running tasks of each node reserved, and a slot offers the policy only what is left
(`offer`). Ray cannot reserve resources per call of a long-lived actor, so this reservation is
the dispatcher's, and no node is given more tasks than its memory holds.

A worker lost to anything is replaced (`replace`, with the reason kept in `trouble`); a
replacement that fails to start is tried again up to `START_RETRIES` times in a row, and
what happened stays in `trouble` for the jobs' reasons, so a farm left without workers says
why instead of waiting silently.

Ray decides where a worker actor lives; the pool decides how many of each kind there are:
one render slot per `threads` cores of the cluster, one light slot, one GPU slot per GPU.

Elastic (a cluster with an autoscaler): the pool follows the cluster as nodes join (each
sync), but holds no more render and GPU slots than the queue wants (`want`, from the
autoscaler request), and lets go of slots idle beyond that (`trim`), so a node with nothing
to do holds nothing and the autoscaler may release it. A slot whose node left is dropped, not
replaced in place: the next sync makes what the cluster and the queue then allow.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wanhe.engine.handles import LocalWorker, RayWorker, WorkerHandle
from wanhe.model import Resources
from wanhe.sched.placement import SlotShape

if TYPE_CHECKING:
    # Imported where used, not here: importing Ray costs 0.3-0.5 s, and a `wanhe render`
    # whose one worker takes every core never starts it.
    from wanhe.engine import cluster
    from wanhe.sched.policy import QueuedTask
    from wanhe.store.rows import TaskRow

log = logging.getLogger(__name__)

BIG_MEMORY = 1 << 50
START_RETRIES = 3  # a worker that fails to start this often in a row is not tried again
Warm = tuple[str, str]  # (task kind, warm key): what a new render worker loads first


class RayStartError(RuntimeError):
    """The embedded Ray, started in the background, failed to start."""


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
    status: str = ""  # the running task's status line
    warm_keys: set[str] = field(default_factory=set)
    warm_jobs: dict[str, int] = field(default_factory=dict)  # job-scoped warm key -> job id
    idle_since: float = field(default_factory=time.monotonic)
    asked_at: float = 0.0  # when the dispatcher last asked its worker for its progress
    memory: int = 0  # bytes its node offers the farm's tasks (0: unknown, not limited)
    pid: int = 0  # its process (0: unknown)

    @property
    def shape(self) -> SlotShape:
        return SlotShape(self.node, self.cpus, self.gpus, self.light,
                         self.memory or BIG_MEMORY)

    def offer(self, reserved: int = 0) -> Resources:
        """What this slot offers a task when idle, `reserved` bytes of its node's memory being
        held by running tasks. A GPU slot reserves no cores of its own (its worker feeds the
        GPU), so the cores a GPU task asks for are not checked here."""
        cpus = 1e9 if self.gpus > 0 else self.cpus
        memory = max(0, self.memory - reserved) if self.memory else BIG_MEMORY
        return Resources(cpus=cpus, memory=memory, gpus=self.gpus)

    def capacity(self) -> Resources | None:
        """Everything the slot could ever offer (its node's memory known), so the policy may
        hold the node for a task that waits for memory; None when that is unknown."""
        if not self.memory or self.gpus > 0 or self.light:  # light slots hold no node
            return None
        return Resources(cpus=self.cpus, memory=self.memory, gpus=0.0)


@dataclass(slots=True)
class Running:
    """A task running on a slot: its attempt, and the future its answer comes through."""

    queued: QueuedTask
    task: TaskRow
    attempt_id: int
    slot: Slot
    future: Future[Any]
    started: float
    cancel_at: float | None = None  # when it was told to stop (its job no longer wants it)


class WorkerPool:
    def __init__(
        self,
        *,
        threads: int,
        workers: int | None,
        tools: Mapping[str, str],
        local_workers: list[LocalWorker],
        ray_start: cluster.EmbeddedStart | None,
        use_ray: bool,
    ) -> None:
        self.threads = threads
        self.requested_workers = workers
        self.tools = dict(tools)  # each worker's named tools (blender, ffmpeg, …)
        self.slots: list[Slot] = [
            Slot(name=w.worker.name, worker=w, cpus=float(threads), node=w.worker.node(),
                 local=True, memory=local_memory())
            for w in local_workers
        ]
        self.pending: dict[Future[Any], Slot] = {}  # worker ready() -> slot not yet usable
        self._ray_start = ray_start
        self._use_ray = use_ray
        self.started = False
        self._warm: Warm | None = None
        self._serial = 0
        self.revision = 0  # grows whenever slots come or go
        self.elastic = False
        # elastic: (render slots, GPU slots) the queue wants on Ray; None: as many as fit
        self.want: tuple[int, int] | None = None
        self.reserved: dict[str, int] = {}  # node -> memory bytes its running tasks reserved
        self.trouble = ""  # the last loss or failed start of a worker, for jobs' reasons
        self._start_failures = 0  # failed starts in a row (reset when a worker starts)

    @property
    def settled(self) -> bool:
        """Whether the pool is as big as it will get for now (nothing starting)."""
        return self.started and not self.pending

    def shapes(self) -> list[SlotShape]:
        return [slot.shape for slot in self.slots]

    def offer(self, slot: Slot) -> Resources:
        return slot.offer(self.reserved.get(slot.node, 0))

    def reserve(self, slot: Slot, memory: int) -> None:
        """A task needing `memory` bytes starts on `slot`: its node has that much less."""
        if memory:
            self.reserved[slot.node] = self.reserved.get(slot.node, 0) + memory

    def release(self, slot: Slot, memory: int) -> None:
        if memory:
            left = self.reserved.get(slot.node, 0) - memory
            if left > 0:
                self.reserved[slot.node] = left
            else:
                self.reserved.pop(slot.node, None)

    def render_pool_size(self) -> int:
        """Render workers wanted on Ray (beside the local ones)."""
        local = sum(1 for s in self.slots if s.local and not s.light)
        if self.requested_workers:
            return max(0, self.requested_workers - local)
        from wanhe.engine import cluster

        return max(0 if local else 1, int(cluster.total_cpus() // self.threads))

    def gpu_pool_size(self) -> int:
        from wanhe.engine import cluster

        return int(cluster.total_gpus())

    def ray_up(self) -> bool:
        """Whether Ray can take workers now; raises RayStartError if its start failed."""
        start = self._ray_start
        if start is None or not start.done():
            return start is None
        if start.error is not None:
            raise RayStartError(f"could not start Ray: {start.error}") from start.error
        return True

    def start(self, warm: Warm | None = None, *, grow: bool = True) -> None:
        """Make the workers the pool lacks (none while Ray is still starting). `grow`: also
        follow a cluster that grew since."""
        if warm:
            self._warm = warm
        if not self._use_ray:
            if not any(s.light for s in self.slots):
                self.slots.append(self._local_slot(light=True))
                self.revision += 1
            self.started = True
            return
        if not self.ray_up() or (self.started and not grow):
            return
        self.started = True
        every = [*self.slots, *self.pending.values()]
        render = [s for s in every if not s.light and not s.local and s.gpus == 0]
        render_size, gpu_size = self.render_pool_size(), self.gpu_pool_size()
        if self.want is not None:
            render_size, gpu_size = min(render_size, self.want[0]), min(gpu_size, self.want[1])
        for _ in range(render_size - len(render)):
            self._add_slot(warm=self._warm)
        gpu = [s for s in every if s.gpus > 0]
        for _ in range(gpu_size - len(gpu)):
            self._add_slot(gpu=True)
        if not any(s.light for s in every):
            # Frame N assembles, denoises and previews while frame N+1 renders: these short
            # tasks reserve no cores and get a worker of their own (they are metered as 1 core).
            self._add_slot(light=True)

    def _next_name(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial}"

    def _add_slot(self, *, warm: Warm | None = None, light: bool = False,
                  gpu: bool = False) -> Slot:
        from wanhe.engine import cluster

        if light:
            name, cpus, gpus = self._next_name("img"), 0.0, 0.0
        elif gpu:
            name, cpus, gpus = self._next_name("gpu"), 0.0, 1.0
        else:
            name, cpus, gpus = self._next_name("w"), float(self.threads), 0.0
        worker = RayWorker(cluster.make_worker(name, cpus=cpus, gpus=gpus, tools=self.tools))
        slot = Slot(name=name, worker=worker, cpus=cpus, gpus=gpus, light=light)
        self.pending[worker.call("ready")] = slot
        if warm:
            worker.call("warm", *warm)  # loads the scene before the first task
            slot.warm_keys.add(warm[1])
        return slot

    def admit_pending(self, timeout: float = 0.0) -> None:
        if not self.pending:
            return
        done, _ = wait_for(list(self.pending), timeout=timeout)
        for future in done:
            slot = self.pending.pop(future)
            self.revision += 1
            try:
                info = future.result()
            except Exception as exc:
                self._start_failed(slot, exc)
                continue
            self._start_failures = 0
            self.trouble = ""  # the pool is whole again: past losses explain nothing now
            slot.node = info["node"]
            slot.memory = int(info.get("memory") or 0)
            slot.pid = int(info.get("pid") or 0)
            slot.idle_since = time.monotonic()
            self.slots.append(slot)
            log.info("worker %s ready on %s", slot.name, slot.node)

    def _start_failed(self, slot: Slot, exc: BaseException) -> None:
        """A worker did not start: say so, and try again a few times in a row (a replacement
        that never comes would leave the farm short, or empty, silently)."""
        from wanhe.engine.handles import ray_loss_reason

        self._start_failures += 1
        why = ray_loss_reason(exc)
        log.warning("worker %s failed to start (%d in a row): %s", slot.name,
                    self._start_failures, why)
        slot.worker.kill()
        if self._start_failures < START_RETRIES:
            self._add_slot(light=slot.light, gpu=slot.gpus > 0)
            return
        self.trouble = (f"{self._start_failures} worker start(s) in a row failed, the last "
                        f"with: {why}" + (f"; before that {self.trouble}" if self.trouble
                                          and "start(s) in a row" not in self.trouble else ""))

    def _local_slot(self, *, light: bool = False) -> Slot:
        """A fresh worker of this process: a render slot, or (light) one for image work."""
        name = self._next_name("img" if light else "w")
        worker = LocalWorker(name, self.tools)
        return Slot(name=name, worker=worker, cpus=0.0 if light else float(self.threads),
                    node=worker.worker.node(), light=light, local=True,
                    memory=local_memory())

    def replace(self, slot: Slot, why: str = "") -> None:
        """A slot's worker died (`why`): let it go and start a fresh one of the same kind."""
        if slot in self.slots:
            self.slots.remove(slot)
        self.revision += 1
        if why:
            self.trouble = f"worker {slot.name} on {slot.node} was lost: {why}"
        slot.worker.kill()
        if slot.local:
            fresh = self._local_slot(light=slot.light)
            fresh.cpus = slot.cpus
            self.slots.append(fresh)
        elif not self.elastic or slot.light:
            self._add_slot(light=slot.light, gpu=slot.gpus > 0)
        # elastic: its node may be gone; the next sync makes what the cluster then allows

    def trim(self, idle_s: float, now: float | None = None) -> int:
        """Elastic: let go of Ray render and GPU slots beyond `want` — those still starting
        first, then those idle at least `idle_s` — so their nodes hold nothing and the
        autoscaler may release them. Returns how many went."""
        if self.want is None:
            return 0
        now = time.monotonic() if now is None else now
        gone = 0
        for gpu, wanted in ((False, self.want[0]), (True, self.want[1])):
            def mine(s: Slot, gpu: bool = gpu) -> bool:
                return not s.light and not s.local and (s.gpus > 0) == gpu

            pending = [(f, s) for f, s in self.pending.items() if mine(s)]
            slots = [s for s in self.slots if mine(s)]
            surplus = len(pending) + len(slots) - wanted
            for future, slot in pending[:max(0, surplus)]:
                del self.pending[future]
                slot.worker.kill()
                surplus -= 1
                gone += 1
            idle = sorted((s for s in slots if s.busy is None and now - s.idle_since >= idle_s),
                          key=lambda s: s.idle_since)
            for slot in idle[:max(0, surplus)]:
                self.slots.remove(slot)
                slot.worker.kill()
                gone += 1
                log.info("worker %s on %s let go: the queue does not need it", slot.name,
                         slot.node)
        if gone:
            self.revision += 1
        return gone

    def close(self) -> None:
        self.reserved.clear()
        # Killing a Ray actor is enough: its Blender process reads EOF on stdin and exits.
        # Local workers end their sessions (an OpenJD session exits its environments): all at
        # once, not one after another.
        slots = [*self.slots, *self.pending.values()]
        local = [slot for slot in slots if slot.local]
        for slot in slots:
            if not slot.local:
                slot.worker.kill()
        if len(local) > 1:
            with ThreadPoolExecutor(len(local), thread_name_prefix="close") as closing:
                list(closing.map(lambda slot: slot.worker.kill(), local))
        elif local:
            local[0].worker.kill()
        self.slots.clear()
        self.pending.clear()
        self.revision += 1

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": slot.name, "node": slot.node, "cpus": slot.cpus, "gpus": slot.gpus,
                "light": slot.light,
                "task": None if slot.busy is None else slot.busy.task.key,
                "job_id": None if slot.busy is None else slot.busy.task.job_id,
                "progress": slot.progress,
                "status": slot.status if slot.busy is not None else "",
            }
            for slot in self.slots
        ]


def local_memory() -> int:
    """Memory a worker of this process may give tasks: the machine's RAM."""
    try:  # POSIX's own count: no psutil import (30 ms) on a local run's way to its first task
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        import psutil

        return int(psutil.virtual_memory().total)

"""Publishing: each finished output goes from the work area to durable storage.

Tasks write their outputs into the work area (Blender and the image tools need local files).
When the dispatcher reports a task done, the service hands the files that task's payload names
in the job's output folder to `OutputPublisher`, which copies them to storage on its own thread,
so a slow upload never holds up dispatching. A file the task removed (a progressive preview
the final one replaced) is removed from storage too. At start-up a sweep publishes whatever a
stopped or killed service had not published yet.

With a plain-path storage that is also the work area nothing is copied: outputs are written in
place, and the service runs no publisher.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanhe.storage import (
    Storage,
    StoredFile,
    UnsafePath,
    WorkArea,
    confined,
    is_transient_output,
    named_outputs,
)

log = logging.getLogger(__name__)

Signature = tuple[int, int]  # (size, mtime in ns) of a local file when it was published
RETRY_DELAYS_S = (2.0, 10.0, 60.0, 300.0)
REMEMBERED_JOBS = 1000


@dataclass(frozen=True, slots=True)
class _Batch:
    job_id: int | None  # None: the start-up sweep
    relatives: tuple[str, ...] = ()
    attempt: int = 0


def _signature(path: Path) -> Signature | None:
    """(size, mtime_ns) of a regular local file, None when there is none (or a symlink)."""
    if path.is_symlink() or not path.is_file():
        return None
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def publish_outputs(
    storage: Storage, work: WorkArea, job_id: int, relatives: list[str] | tuple[str, ...],
    published: dict[str, Signature],
) -> int:
    """Bring these outputs of a job in storage up to date with the work area; return how many
    files were copied. `published` remembers what was copied, so an output another task only
    read (QC reads the frame) is not copied again."""
    copied = 0
    for relative in relatives:
        try:  # a link the task left pointing out of its output folder is never published
            local: Path | None = confined(work.output_dir(job_id), relative)
        except UnsafePath:
            local = None
        signature = _signature(local) if local is not None else None
        if signature is None:
            published.pop(relative, None)
            if is_transient_output(relative):
                storage.unpublish(job_id, relative)
            continue
        if published.get(relative) == signature:
            continue
        assert local is not None
        storage.publish(local, job_id, relative)
        published[relative] = signature
        copied += 1
    return copied


def _stale(local: StoredFile, stored: StoredFile | None) -> bool:
    """Whether storage lacks the work area's version of a file (missing, other size, or
    older where the storage knows when it was written)."""
    if stored is None or stored.size != local.size:
        return True
    return bool(stored.modified) and local.modified > stored.modified


def unpublished_outputs(storage: Storage, work: WorkArea, job_id: int) -> list[str]:
    """Outputs in the work area that storage lacks or holds an older copy of, and transient
    outputs storage still holds after the work area dropped them."""
    stored = {f.path: f for f in storage.outputs(job_id)}
    local = {f.path: f for f in work.local_outputs(job_id)}
    behind = [path for path, f in local.items() if _stale(f, stored.get(path))]
    leftover = [path for path in stored if path not in local and is_transient_output(path)]
    return sorted(behind + leftover)


class OutputPublisher:
    """Publishes finished outputs on a background thread, retrying when storage fails."""

    def __init__(self, storage: Storage, work: WorkArea) -> None:
        self.storage = storage
        self.work = work
        self._queue: queue.Queue[_Batch | None] = queue.Queue()
        self._retries: list[tuple[float, _Batch]] = []
        self._pending: Counter[int] = Counter()  # job id -> batches queued or in progress
        self._idle = threading.Condition()
        self._published: OrderedDict[int, dict[str, Signature]] = OrderedDict()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the service's side

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wanhe-publish", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued (up to `timeout` seconds), then stop."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("publishing did not finish in %.0f s; the next start publishes the rest",
                        timeout)
        self._thread = None

    def task_done(self, job_id: int, payload: dict[str, Any]) -> None:
        """Queue the outputs a finished task's payload names."""
        relatives = tuple(named_outputs(payload, self.work.output_dir(job_id)))
        if relatives:
            self._put(_Batch(job_id, relatives))

    def sweep(self) -> None:
        """Queue a pass over every job in the work area (after a stop or a crash)."""
        self._put(_Batch(None))

    def flush(self, job_id: int, timeout: float = 10.0) -> bool:
        """Wait until nothing of this job is waiting to be published; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending[job_id] > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    # ------------------------------------------------------------------ the publishing thread

    def _put(self, batch: _Batch) -> None:
        if batch.job_id is not None:
            with self._idle:
                self._pending[batch.job_id] += 1
        self._queue.put(batch)

    def _done(self, batch: _Batch) -> None:
        if batch.job_id is None:
            return
        with self._idle:
            self._pending[batch.job_id] -= 1
            if self._pending[batch.job_id] <= 0:
                del self._pending[batch.job_id]
                self._idle.notify_all()

    def _next(self) -> _Batch | None:
        """The next batch: a queued one, or a retry that has come due."""
        while True:
            now = time.monotonic()
            due = [r for r in self._retries if r[0] <= now]
            if due:
                self._retries.remove(due[0])
                self._put(due[0][1])
            wait = min((r[0] for r in self._retries), default=now + 1.0) - now
            try:
                return self._queue.get(timeout=max(0.05, wait))
            except queue.Empty:
                continue

    def _run(self) -> None:
        while (batch := self._next()) is not None:
            try:
                self._publish(batch)
            except Exception as exc:
                self._retry_later(batch, exc)
            finally:
                self._done(batch)

    def _publish(self, batch: _Batch) -> None:
        if batch.job_id is None:
            self._sweep()
            return
        publish_outputs(self.storage, self.work, batch.job_id, batch.relatives,
                        self._memory(batch.job_id))

    def _sweep(self) -> None:
        for job_id in self.work.job_ids():
            behind = unpublished_outputs(self.storage, self.work, job_id)
            if behind:
                log.info("job %d: publishing %d output(s) left unpublished", job_id, len(behind))
                publish_outputs(self.storage, self.work, job_id, behind, self._memory(job_id))

    def _memory(self, job_id: int) -> dict[str, Signature]:
        """What was published of a job, for the most recently active jobs only."""
        found = self._published.pop(job_id, None)
        self._published[job_id] = found if found is not None else {}
        while len(self._published) > REMEMBERED_JOBS:
            self._published.popitem(last=False)
        return self._published[job_id]

    def _retry_later(self, batch: _Batch, exc: Exception) -> None:
        what = "the start-up sweep" if batch.job_id is None else f"job {batch.job_id}'s outputs"
        if batch.attempt >= len(RETRY_DELAYS_S):
            log.error("publishing %s failed %d times, giving up until the next start: %s",
                      what, batch.attempt + 1, exc)
            return
        delay = RETRY_DELAYS_S[batch.attempt]
        log.warning("publishing %s failed (%s: %s); retrying in %.0f s", what,
                    type(exc).__name__, exc, delay)
        retry = _Batch(batch.job_id, batch.relatives, batch.attempt + 1)
        self._retries.append((time.monotonic() + delay, retry))

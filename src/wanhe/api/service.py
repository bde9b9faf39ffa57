"""The running farm service: store, storage, work area, event hub and the dispatcher loop in a
thread.

One process: FastAPI answers requests while `Dispatcher` runs on a background thread (the same
dispatcher `wanhe render` uses, no second copy). Requests that change what should run (submit,
cancel, pause, resume, retry, priority) write the database and `poke()` the dispatcher. When
storage is not the work area itself, each task the dispatcher reports done has its outputs
published to storage by `OutputPublisher` (in this process, so any fsspec URL works).

This module knows nothing of the web layer: the FastAPI dependency that hands routes the
service is `wanhe.api.deps.get_service`; `wanhe.api.app` wires the Prometheus metrics and
gives the service its `describe_job` (how a job looks in a `job` event, from `views`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.api.hub import EventHub, watch_jobs
from wanhe.api.publish import OutputPublisher
from wanhe.config import Settings
from wanhe.jobtypes.base import IntakeContext
from wanhe.jobtypes.registry import retry_rules
from wanhe.plugins import load_plugins
from wanhe.publish.worker import KitsuPublisher
from wanhe.storage import Storage, WorkArea, is_url
from wanhe.store.store import Store

if TYPE_CHECKING:
    from wanhe.engine.dispatcher import Dispatcher, TaskEvent

log = logging.getLogger(__name__)
TOKEN_USE_RESOLUTION_S = 60.0

Inspectors = dict[str, Callable[[Path], Any]]
"""Inspection overrides by job kind (tests inspect scenes without Blender)."""

JobDescriber = Callable[["Service", int], "tuple[int, dict[str, Any]] | None"]
"""A job as its `job` event shows it: (project id, JSON-able summary), None when it is gone."""


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        start_dispatcher: bool = True,
        workers: int | None = None,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        inspectors: Inspectors | None = None,
        describe_job: JobDescriber | None = None,
    ) -> None:
        self.settings = settings
        # A plugin that does not import stops the service now, not at the first submission.
        load_plugins()
        self.work, self.storage = open_storage(settings)
        self.publisher = (
            None if self.storage.writes_in_place(self.work.root)
            else OutputPublisher(self.storage, self.work)
        )
        self.store = Store(settings.db_url)
        # jobs with a shot and task publish to Kitsu when they end (docs/kitsu.md)
        self.kitsu = KitsuPublisher(
            self.store, self.storage, home=settings.home,
            public_url=settings.public_url or f"http://{settings.host}:{settings.port}",
            settle=self.settle_outputs)
        self.events = EventHub()
        self.intake = IntakeContext(blender=settings.blender, inspectors=dict(inspectors or {}),
                                    cache_dir=settings.home / "probes")
        from wanhe.openjd.serve import farm_facts

        self.intake.inspectors.setdefault("openjd.farm", lambda _: farm_facts(self))
        self.start_dispatcher = start_dispatcher
        self.workers = workers
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.dispatcher: Dispatcher | None = None
        self.dispatcher_error: str | None = None
        self.describe_job = describe_job
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._job_projects: dict[int, int] = {}
        self._project_names: dict[int, str] = {}
        self._token_used: dict[int, float] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect Ray (on the calling thread) and start the dispatcher and event threads (the
        `job` event thread only with a `describe_job`)."""
        if self.describe_job is not None:
            watcher = threading.Thread(
                target=watch_jobs, args=(self.events, self._describe_job, self.stop),
                name="wanhe-events", daemon=True,
            )
            watcher.start()
            self._threads.append(watcher)
        if self.publisher is not None:
            self.publisher.start()
            self.publisher.sweep()
        self.kitsu.start()
        if not self.start_dispatcher:
            return
        from wanhe.engine import cluster
        from wanhe.runs.local import make_dispatcher
        from wanhe.sched.elastic import Caps

        _keep_signal_handlers(
            lambda: cluster.connect(self.settings.ray_address, num_cpus=self.num_cpus,
                                    num_gpus=self.num_gpus)
        )
        self.dispatcher = make_dispatcher(
            self.store, settings=self.settings, threads=1, workers=self.workers,
            log_root=self.work.logs, on_event=self._on_task_event,
            # someone else's cluster may grow (an autoscaler): a task nothing can run waits
            elastic=bool(self.settings.ray_address),
            caps=Caps(max_cores=self.settings.max_cores, max_gpus=self.settings.max_gpus),
        )
        loop = threading.Thread(target=self._dispatch_loop, name="wanhe-dispatcher", daemon=True)
        loop.start()
        self._threads.append(loop)

    def _dispatch_loop(self) -> None:
        """`Dispatcher.serve`, kept alive: an error in one round is logged, the loop goes on."""
        dispatcher = self.dispatcher
        assert dispatcher is not None
        started = False
        while not self.stop.is_set():
            try:
                if not started:
                    lost = self.store.recover_interrupted(rules_for=retry_rules)
                    if lost:
                        log.warning("%d attempt(s) were interrupted by a stop; re-queued", lost)
                    dispatcher.start_pool()
                    dispatcher.sync()
                    started = True
                dispatcher.step(0.2)
                self.dispatcher_error = None
            except Exception as exc:
                log.exception("dispatcher round failed")
                self.dispatcher_error = f"{type(exc).__name__}: {exc}"
                self.stop.wait(1.0)

    def close(self) -> None:
        self.stop.set()
        if self.dispatcher is not None:
            self.dispatcher.poke()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.dispatcher is not None:
            try:
                handed = self.dispatcher.hand_back()
                if handed:
                    log.info("%d running attempt(s) handed back to the queue", handed)
            except Exception:  # the next start recovers them as lost instead
                log.exception("could not hand back the running attempts")
            self.dispatcher.close()
        if self.publisher is not None:
            self.publisher.close()
        self.kitsu.close()
        self.store.dispose()

    def poke(self, job_id: int | None = None) -> None:
        if self.dispatcher is not None:
            self.dispatcher.poke()
        if job_id is not None:
            self.events.touch(job_id)

    # ------------------------------------------------------------------ lookups

    def project_name(self, project_id: int) -> str | None:
        name = self._project_names.get(project_id)
        if name is None:
            project = self.store.project(project_id)
            if project is None:
                return None
            name = self._project_names[project_id] = project.name
        return name

    def job_project(self, job_id: int) -> int | None:
        found = self._job_projects.get(job_id)
        if found is None:
            job = self.store.job(job_id)
            if job is None:
                return None
            found = self._job_projects[job_id] = job.project_id
        return found

    def note_token_used(self, token_id: int, stored: float | None, now: float) -> None:
        """Record a token's use, at most once a minute per token (not a write per request)."""
        last = max(stored or 0.0, self._token_used.get(token_id, 0.0))
        if now - last < TOKEN_USE_RESOLUTION_S:
            return
        self._token_used[token_id] = now
        try:
            self.store.note_token_used(token_id, now)
        except Exception:  # a busy database must not refuse the request: note it next time
            log.warning("could not note token %d's use", token_id, exc_info=True)
            self._token_used.pop(token_id, None)

    def settle_outputs(self, job_id: int) -> None:
        """Before reading a job's outputs from storage: let what its finished tasks wrote get
        there (a task is done in the database a moment before its files are published)."""
        if self.publisher is not None:
            self.publisher.flush(job_id)

    # ------------------------------------------------------------------ events

    def _on_task_event(self, event: TaskEvent) -> None:
        if event.kind == "finishing":  # comes before the database records the task done
            if self.publisher is not None:
                self.publisher.task_done(event.job_id, event.task.payload)
            return
        project_id = self.job_project(event.job_id)
        data: dict[str, Any] = {
            "type": event.kind, "job_id": event.job_id, "task": event.task.key,
            "kind": event.task.kind, "frame": event.task.frame, "tile": event.task.tile,
            "node": event.node, "time": time.time(),
        }
        if event.kind == "progress" and event.result:
            data["progress"] = event.result.get("progress", 0.0)
            if event.result.get("status"):
                data["status"] = event.result["status"]
        if event.message:
            data["message"] = event.message[-500:]
        self.events.publish("task", project_id, data)
        if event.kind != "progress":
            self.events.touch(event.job_id)

    def _describe_job(self, job_id: int) -> tuple[int, dict[str, Any]] | None:
        assert self.describe_job is not None
        return self.describe_job(self, job_id)


def open_storage(settings: Settings) -> tuple[WorkArea, Storage]:
    """The work area and the durable storage, the storage checked writable (StorageUnavailable
    names the problem and the fix)."""
    location = settings.storage_location
    scratch = settings.work_root / "tmp" if is_url(location) else None
    storage = Storage(location, max_blob_bytes=settings.max_upload_bytes, scratch=scratch)
    storage.check_writable()
    return WorkArea(settings.work_root), storage


def _keep_signal_handlers(start: Callable[[], None]) -> None:
    """Run `start` (Ray's init) without letting it replace the server's SIGTERM/SIGINT handlers
    (Ray's exits at once; uvicorn's shuts down gracefully)."""
    if threading.current_thread() is not threading.main_thread():
        start()
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        start()
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


"""The farm worker: a long-lived Ray actor (or a local stand-in) holding one executor per task
kind it has run, each owning its warm resource (a Blender with the scene loaded, a model, …).

One actor per worker slot. It captures each task's log to a file, runs one task at a time,
and can be asked for the running task's progress or told to cancel it while it runs
(threaded actor). How an attempt ended is typed (`wanhe.lifecycle`), never guessed from words.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wanhe.engine.executors.base import Executor, TaskContext, WorkerInfo, tool_pairs
from wanhe.engine.executors.registry import executor_class
from wanhe.engine.outputs import missing_outputs
from wanhe.lifecycle import AttemptError, TaskCancelled, TaskFailed
from wanhe.model import AttemptOutcome


def _project_id(value: Any) -> int | None:
    """The task's project id as sent by the dispatcher (none from older callers)."""
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


class FarmWorker:
    """Plain class; the engine wraps it with `ray.remote` (see `engine.cluster`)."""

    def __init__(
        self, name: str, tools: Mapping[str, str] | None = None, node: str | None = None,
        gpu_ids: tuple[str, ...] | None = None,
    ) -> None:
        """`tools`: the programs this worker is given by name (`Settings.worker_tools`)."""
        self.name = name
        self._node = node or self._node_name()
        self.info = WorkerInfo(
            name=name, node=self._node, tools=tool_pairs(tools),
            gpu_ids=self._gpu_ids() if gpu_ids is None else tuple(gpu_ids),
        )
        self._executors: dict[type[Executor], Executor] = {}
        self._current: Executor | None = None
        self._closed = False
        self._progress = 0.0
        self._status = ""
        self._cancelled = threading.Event()
        self._lock = threading.Lock()

    @staticmethod
    def _node_name() -> str:
        try:
            import ray

            node_id = ray.get_runtime_context().get_node_id()
            # the id's end: Ray's ids are random throughout, and the simulated nodes of Ray's
            # autoscaler tests differ only there (their ids start with 51 f's)
            return f"{socket.gethostname()}:{node_id[-8:]}"
        except Exception:  # not inside Ray (tests run the class directly)
            return socket.gethostname()

    @staticmethod
    def _gpu_ids() -> tuple[str, ...]:
        """The GPUs Ray assigned this actor (none outside Ray or for a CPU actor). Ray is
        only asked when this process already has it: a worker of the command's own process
        (`wanhe render`'s default) must not pay for importing it."""
        ray = sys.modules.get("ray")
        if ray is None:
            return ()
        try:
            if not ray.is_initialized():
                return ()
            return tuple(str(g) for g in ray.get_gpu_ids())
        except Exception:
            return ()

    def ready(self) -> dict[str, Any]:
        return {"name": self.name, "node": self._node, "pid": os.getpid(),
                "gpu_ids": list(self.info.gpu_ids), "memory": self._node_memory()}

    @staticmethod
    def _node_memory() -> int:
        """Bytes of memory this worker's node offers tasks: its Ray node's `memory` resource
        (what Ray itself would schedule against), or the machine's RAM outside Ray."""
        ray = sys.modules.get("ray")
        try:
            if ray is not None and ray.is_initialized():
                me = ray.get_runtime_context().get_node_id()
                for node in ray.nodes():
                    if node.get("NodeID") == me:
                        return int(node.get("Resources", {}).get("memory", 0))
        except Exception:  # not inside a Ray worker: the machine's
            pass
        import psutil

        return int(psutil.virtual_memory().total)

    def executor(self, kind: str) -> Executor:
        """The executor for `kind`, made on first use and kept (with its warm resource)."""
        if self._closed:
            raise TaskCancelled(f"worker {self.name} was shut down")
        cls = executor_class(kind)
        found = self._executors.get(cls)
        if found is None:
            found = self._executors[cls] = cls(self.info)
        return found

    def warm(self, kind: str, key: str) -> bool:
        """Load what tasks of `kind` with warm key `key` need, before the first one runs."""
        # Same lock as run(): the actor is threaded (progress/cancel answer mid-task), but an
        # executor serves one request at a time.
        with self._lock:
            try:
                self.executor(kind).warm(key)
                return True
            except Exception:
                return False

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        """Run one task; return its result, or its typed outcome when it did not succeed."""
        with self._lock:
            self._progress = 0.0
            self._status = ""
            self._cancelled.clear()
            log_path = Path(task["log_path"]) if task.get("log_path") else None
            log_file = None
            if log_path is not None:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log_file = log_path.open("a", encoding="utf-8", errors="replace")
            started = time.monotonic()

            def log(line: str) -> None:
                if log_file is not None:
                    log_file.write(line.rstrip("\n") + "\n")
                    log_file.flush()

            def progress(fraction: float) -> None:
                self._progress = max(0.0, min(1.0, fraction))

            def status(text: str) -> None:
                self._status = text[:500]

            ctx = TaskContext(log=log, progress=progress, key=str(task["key"]),
                              cancelled=self._cancelled, attempt=int(task.get("attempt") or 1),
                              status=status, project=str(task.get("project") or ""),
                              memory_bytes=int(task.get("memory_bytes") or 0),
                              project_id=_project_id(task.get("project_id")))
            base = {"node": self._node, "worker": self.name}
            log(f"[wanhe] {task['kind']} task {task['key']} on {self.name} ({self._node})")
            outcome, usage = AttemptOutcome.FAILED, {}
            try:
                executor = self.executor(str(task["kind"]))
                self._current = executor
                result = executor.run(str(task["kind"]), task["payload"], ctx)
                gone = missing_outputs(task["payload"])
                if gone:  # a done task's files exist, or it is not done
                    raise TaskFailed(
                        f"finished, but {len(gone)} of its output file(s) are not on disk "
                        f"(e.g. {gone[0]}) — is the disk full?", wall_s=result.wall_s,
                        cpu_s=result.cpu_s, peak_rss=result.peak_rss)
                log(f"[wanhe] done in {result.wall_s:.2f} s")
                if self._status and "status" not in result.output:
                    result.output["status"] = self._status
                return {"ok": True, **base, **result.to_dict(),
                        "warm": executor.warm_key(task["payload"]),
                        "warm_keys": executor.loaded_keys(),
                        "warm_scope": executor.warm_scope}
            except AttemptError as exc:
                message, outcome = str(exc), exc.outcome
                usage = {"cpu_s": exc.cpu_s, "peak_rss": exc.peak_rss}
                if exc.wall_s is not None:
                    usage["wall_s"] = exc.wall_s
                log(f"[wanhe] {outcome.value}: {message}")
            except Exception as exc:  # a bug or an unexpected library error: keep the detail
                message = f"{type(exc).__name__}: {exc}"
                log(traceback.format_exc())
            finally:
                self._current = None
                if log_file is not None:
                    log_file.close()
            if self._cancelled.is_set():  # whatever the executor saw, it was stopped by us
                outcome, message = AttemptOutcome.CANCELLED, "cancelled"
            return {"ok": False, **base, "outcome": outcome.value, "error": message,
                    "wall_s": time.monotonic() - started, **usage}

    def progress(self) -> float:
        return self._progress

    def activity(self) -> dict[str, Any]:
        """The running task's progress (0..1) and status line."""
        return {"progress": self._progress, "status": self._status}

    def release(self, key: str) -> None:
        """The job that warm key `key` belongs to has ended: executors let go of it."""
        with self._lock:
            for executor in list(self._executors.values()):
                try:
                    executor.release(key)
                except Exception:
                    traceback.print_exc()

    def cancel(self) -> None:
        """Stop the running task now (its process tree is killed; a fresh one follows)."""
        self._cancelled.set()
        current = self._current
        if current is not None:
            current.cancel()

    def node(self) -> str:
        return self._node

    def blender_process(self) -> Any:
        """This worker's Blender (started on first use), e.g. to inspect a scene with before
        the first task: the scene it loads stays loaded for the renders."""
        from wanhe.engine.executors.blender import BlenderExecutor

        if self._closed:
            raise TaskCancelled(f"worker {self.name} was shut down")
        # Made by its class, not through the registry (`executor`), which imports every
        # executor first: Blender starts that much sooner, the rest is imported while it loads.
        # The same instance serves the render tasks (the registry maps them to this class).
        executor = self._executors.get(BlenderExecutor)
        if executor is None:
            executor = self._executors[BlenderExecutor] = BlenderExecutor(self.info)
        assert isinstance(executor, BlenderExecutor)
        return executor.process()

    def shutdown(self) -> None:
        self._closed = True
        for executor in self._executors.values():
            try:
                executor.close()
            except Exception:
                traceback.print_exc()
        self._executors.clear()

"""The farm worker: a long-lived Ray actor that owns one warm Blender process.

One actor per worker slot. It keeps Blender and the scene loaded between tasks of the same
scene (the fixed cost of a task is seconds), captures each task's log to a file, and can be
asked for the running task's progress or told to cancel it while it runs (threaded actor).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from wanhe.engine.tasks import TaskFailed, run_task
from wanhe.model import TaskKind


class FarmWorker:
    """Plain class; the engine wraps it with `ray.remote` (see `engine.cluster`)."""

    def __init__(self, name: str, blender: str | None = None, node: str | None = None) -> None:
        self.name = name
        self._blender_cmd = blender
        self._blender: Any = None
        self._closed = False
        self._progress = 0.0
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._node = node or self._node_name()

    @staticmethod
    def _node_name() -> str:
        try:
            import ray

            node_id = ray.get_runtime_context().get_node_id()
            return f"{socket.gethostname()}:{node_id[:8]}"
        except Exception:  # not inside Ray (tests run the class directly)
            return socket.gethostname()

    def ready(self) -> dict[str, Any]:
        return {"name": self.name, "node": self._node, "pid": os.getpid()}

    def _process(self) -> Any:
        if self._closed:
            raise TaskFailed(f"worker {self.name} was shut down")
        if self._blender is None:
            from wanhe.blender.runner import BlenderProcess

            self._blender = BlenderProcess(self._blender_cmd)
        return self._blender

    def warm(self, scene: str) -> bool:
        """Start Blender and load `scene` before the first task needs it."""
        # Same lock as run(): the actor is threaded (progress/cancel answer mid-task), but the
        # Blender process serves one request at a time.
        with self._lock:
            try:
                self._process().warm(scene)  # opens the scene and keeps it loaded
                return True
            except Exception:
                return False

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        """Run one task; return its result, or {"error": ...} when the task itself failed."""
        with self._lock:
            self._progress = 0.0
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

            log(f"[wanhe] {task['kind']} task {task['key']} on {self.name} ({self._node})")
            try:
                result = run_task(
                    TaskKind(task["kind"]), task["payload"], self._process(), log, progress
                )
                log(f"[wanhe] done in {result.wall_s:.2f} s")
                return {"ok": True, "node": self._node, "worker": self.name, **result.to_dict()}
            except TaskFailed as exc:
                message = str(exc)
            except Exception as exc:  # a bug or an unexpected library error: keep the detail
                message = f"{type(exc).__name__}: {exc}"
                log(traceback.format_exc())
            finally:
                if log_file is not None:
                    log_file.close()
            if self._cancelled.is_set():
                message = "cancelled"
            log_tail = message
            return {
                "ok": False, "node": self._node, "worker": self.name, "error": log_tail,
                "wall_s": time.monotonic() - started, "cancelled": self._cancelled.is_set(),
            }

    def progress(self) -> float:
        return self._progress

    def cancel(self) -> None:
        """Stop the running task now (its Blender process tree is killed, a fresh one follows)."""
        self._cancelled.set()
        if self._blender is not None:
            self._blender.kill()

    def node(self) -> str:
        return self._node

    def blender_process(self) -> Any:
        """This worker's Blender (started on first use), e.g. to inspect a scene with before
        the first task: the scene it loads stays loaded for the renders."""
        return self._process()

    def shutdown(self) -> None:
        self._closed = True
        if self._blender is not None:
            self._blender.close()
            self._blender = None

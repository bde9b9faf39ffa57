"""Work off Blender's main thread: network and packing run on threads, their results are
applied on the main thread by `pump()`, which the add-on's `bpy.app.timers` timer calls (and
headless tests call directly: a bpy module has no event loop to fire timers).

Blender's data may only be touched on the main thread, so a thread never sees `bpy`: it gets
plain values and returns plain values; `on_done` / `on_error` run in `pump()`. Pure Python.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .farm import FarmError
from .shared import refusal

ProgressFn = Callable[[str, float], None]
Work = Callable[[ProgressFn], Any]


@dataclass
class Activity:
    """One piece of work in flight, as the status bar shows it."""

    name: str
    text: str = ""
    fraction: float = 0.0
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Finished:
    name: str
    result: Any = None
    error: BaseException | None = None
    on_done: Callable[[Any], None] | None = None
    on_error: Callable[[str], None] | None = None


def report_line(exc: BaseException) -> str:
    """An exception as the one line a Blender report shows."""
    if isinstance(exc, FarmError):
        return str(exc)
    text = refusal.one_line(str(exc), 200)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Runner:
    """Named pieces of work, at most one of each name at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, Activity] = {}
        self._finished: queue.Queue[_Finished] = queue.Queue()

    def busy(self, name: str | None = None) -> bool:
        with self._lock:
            return bool(self._active) if name is None else name in self._active

    def activities(self) -> list[Activity]:
        with self._lock:
            return [Activity(a.name, a.text, a.fraction, a.started)
                    for a in self._active.values()]

    def start(self, name: str, work: Work, *, text: str = "",
              on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[str], None] | None = None) -> bool:
        """Run `work(progress)` on a thread; False if work of that name is still running."""
        with self._lock:
            if name in self._active:
                return False
            self._active[name] = Activity(name, text)

        def progress(text: str, fraction: float) -> None:
            with self._lock:
                activity = self._active.get(name)
                if activity is not None:
                    activity.text, activity.fraction = text, max(0.0, min(1.0, fraction))

        def run() -> None:
            finished = _Finished(name, on_done=on_done, on_error=on_error)
            try:
                finished.result = work(progress)
            except BaseException as exc:  # reported on the main thread, never lost
                finished.error = exc
                if not isinstance(exc, FarmError):
                    traceback.print_exc()
            self._finished.put(finished)

        threading.Thread(target=run, name=f"wanhe-{name}", daemon=True).start()
        return True

    def pump(self) -> int:
        """Apply what finished (on the calling, main thread); how many were applied."""
        applied = 0
        while True:
            try:
                finished = self._finished.get_nowait()
            except queue.Empty:
                return applied
            with self._lock:
                self._active.pop(finished.name, None)
            applied += 1
            try:
                if finished.error is not None:
                    if finished.on_error is not None:
                        finished.on_error(report_line(finished.error))
                elif finished.on_done is not None:
                    finished.on_done(finished.result)
            except Exception as exc:  # a failing callback must not stop the timer calling pump
                traceback.print_exc()
                if finished.on_error is not None and finished.error is None:
                    finished.on_error(report_line(exc))

    def wait(self, timeout: float, step: float = 0.05) -> bool:
        """Pump until nothing runs (tests and scripts); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if not self.busy() and self._finished.empty():
                return True
            time.sleep(step)
        self.pump()
        return not self.busy()

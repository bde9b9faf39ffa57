"""The event hub: the dispatcher's task events and job state changes, for server-sent events.

`EventHub` keeps the last events in a ring with sequence numbers (threads publish, the SSE
endpoint reads), so a reconnecting browser resumes with `Last-Event-ID`. A watcher thread turns
"something happened to job N" into one `job` event with its fresh state and progress.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    kind: str  # "task" or "job"
    project_id: int | None
    data: dict[str, Any]

    def sse(self) -> str:
        return f"id: {self.seq}\nevent: {self.kind}\ndata: {json.dumps(self.data)}\n\n"


class EventHub:
    def __init__(self, keep: int = 5000) -> None:
        self._events: deque[Event] = deque(maxlen=keep)
        self._seq = 0
        self._lock = threading.Lock()
        self._dirty: set[int] = set()

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, kind: str, project_id: int | None, data: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            self._events.append(Event(self._seq, kind, project_id, data))

    def since(self, seq: int) -> list[Event]:
        with self._lock:
            if not self._events or self._events[-1].seq <= seq:
                return []
            return [e for e in self._events if e.seq > seq]

    def touch(self, job_id: int) -> None:
        """Job `job_id` changed: the watcher publishes its new state soon."""
        with self._lock:
            self._dirty.add(job_id)

    def take_dirty(self) -> set[int]:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        return dirty


def watch_jobs(
    hub: EventHub, describe: Callable[[int], tuple[int, dict[str, Any]] | None],
    stop: threading.Event, interval: float = 0.3,
) -> None:
    """Publish a `job` event for every job touched since the last round (until `stop`)."""
    last: dict[int, str] = {}
    while not stop.wait(interval):
        for job_id in sorted(hub.take_dirty()):
            try:
                found = describe(job_id)
            except Exception:  # the database hiccupped: try again next round
                hub.touch(job_id)
                continue
            if found is None:
                continue
            project_id, data = found
            key = json.dumps(data, sort_keys=True)
            if last.get(job_id) != key:
                last[job_id] = key
                hub.publish("job", project_id, data)
        if len(last) > 10_000:
            last.clear()

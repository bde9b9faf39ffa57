"""Handles on farm workers: a Ray actor, or a `FarmWorker` living in the dispatcher's process.

The dispatcher talks to both the same way: `call(method, *args)` returns a
`concurrent.futures.Future`, so one wait covers answers from Ray and from the local worker.

The local worker is what lets `wanhe render` start rendering while its embedded Ray is still
starting (seconds on a small machine): the command's own cores are one worker slot from the
first second, and Ray, once up, runs the image work and every further worker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from wanhe.engine.worker import FarmWorker

# A FarmWorker answers progress and cancel while it runs a task (Ray runs its actors with
# max_concurrency=4); the local one gets as many threads.
_LOCAL_CONCURRENCY = 4


class WorkerHandle(Protocol):
    """What the dispatcher needs of a worker, wherever it runs."""

    def call(self, method: str, *args: Any) -> Future[Any]: ...

    def kill(self) -> None: ...

    def lost(self, exc: BaseException) -> str | None:
        """Why `exc` (raised by a call's future) means the worker is gone, or None when it does
        not (the attempt was lost, but the worker can take the next one)."""
        ...


class RayWorker:
    """A `FarmWorker` Ray actor."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def call(self, method: str, *args: Any) -> Future[Any]:
        future: Future[Any] = getattr(self.actor, method).remote(*args).future()
        return future

    def kill(self) -> None:
        import ray

        with contextlib.suppress(Exception):
            ray.kill(self.actor)

    def lost(self, exc: BaseException) -> str | None:
        # FarmWorker.run answers every failure of a task itself, so whatever a call's future
        # raises means the worker (or its node, or Ray's record of it) is gone or unusable:
        # Ray's out-of-memory kill, node loss, actor death of any kind, a lost result.
        return ray_loss_reason(exc)


class LocalWorker:
    """A `FarmWorker` run by threads of this process; its Blender is a child of this process.

    `worker` is exposed so the command can use the same warm Blender to inspect the scene
    before the first task (the scene is then loaded once, not twice).
    """

    def __init__(self, name: str, tools: Mapping[str, str] | None = None) -> None:
        self.worker = FarmWorker(name, tools, node=f"{_hostname()}:local")
        self._threads = ThreadPoolExecutor(_LOCAL_CONCURRENCY, thread_name_prefix=name)

    def call(self, method: str, *args: Any) -> Future[Any]:
        return self._threads.submit(getattr(self.worker, method), *args)

    def kill(self) -> None:
        """Stop its Blender now (a running task answers as cancelled) and let it go."""
        self.worker.cancel()
        self.worker.shutdown()
        self._threads.shutdown(wait=False, cancel_futures=True)

    def lost(self, exc: BaseException) -> str | None:
        # FarmWorker.run answers a task's own failure; what escapes it is a bug in this
        # process, after which its Blender is in an unknown state: start a fresh worker.
        return f"{type(exc).__name__}: {exc}"


def ray_loss_reason(exc: BaseException) -> str:
    """Why a Ray actor call failed, in words for a job's reason (what Ray says first).

    Ray's out-of-memory killer, a dead node and a dead actor raise different exceptions
    (`OutOfMemoryError`, `NodeDiedError`, `ActorDiedError`, `ActorUnavailableError`,
    `WorkerCrashedError`, `ObjectLostError`, `OwnerDiedError`, ...), not all of them
    `RayActorError`: every one of them loses the worker."""
    from ray import exceptions as rx

    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    kinds: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (rx.OutOfMemoryError, "Ray's out-of-memory killer stopped it (its node ran out of "
                              "memory)"),
        ((rx.NodeDiedError, rx.LocalRayletDiedError), "its node died"),
        (rx.WorkerCrashedError, "its process crashed"),
        (rx.ActorUnavailableError, "it stopped answering (actor unavailable)"),
        (rx.RayActorError, "its process died"),
        (rx.ObjectLostError, "its answer was lost with the node that held it"),
    ]
    text = str(exc).lower()
    if isinstance(exc, rx.RayActorError) and ("low on memory" in text
                                              or "memory usage threshold" in text):
        # an actor's process taken by Ray's memory monitor dies as ActorDiedError saying so
        # (a plain SIGKILL's message only lists the OOM killer among possible causes)
        return f"{kinds[0][1]} [{type(exc).__name__}]"
    for types, words in kinds:
        if isinstance(exc, types):
            return f"{words} [{type(exc).__name__}]"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _hostname() -> str:
    import socket

    return socket.gethostname()

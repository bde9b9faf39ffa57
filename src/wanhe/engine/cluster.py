"""Ray: start it in-process (the default) or join a cluster; list its nodes and free cores."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from wanhe.engine.worker import FarmWorker
from wanhe.private import private_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    address: str
    alive: bool
    cpus: float
    memory: int
    gpus: float


@dataclass(slots=True)
class EmbeddedStart:
    """A local Ray starting on a thread of its own; see `start_embedded`."""

    thread: threading.Thread | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def done(self) -> bool:
        """Started, or failed to: `error` says which."""
        return self.ready.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.ready.wait(timeout)


_embedded: EmbeddedStart | None = None


def start_embedded(num_cpus: int) -> EmbeddedStart:
    """Start a local Ray (as `connect(None)`) without waiting for it.

    The thread that starts Ray stays alive until `shutdown()`: Ray's processes are tied to it
    (they get SIGKILL when their parent thread ends, Linux's parent-death signal), so it must
    not end while Ray is used.
    """
    global _embedded
    start = EmbeddedStart()
    if ray.is_initialized():
        start.ready.set()
        return start

    def run() -> None:
        try:
            _init_embedded(num_cpus)
        except BaseException as exc:  # handed to the dispatcher, which raises it
            start.error = exc
            start.ready.set()
            return
        log.info("Ray ready (started in the background, %d CPU)", num_cpus)
        start.ready.set()
        start.release.wait()

    start.thread = threading.Thread(target=run, name="ray-start", daemon=True)
    _embedded = start
    start.thread.start()
    return start


def connect(
    address: str | None, *, num_cpus: int | None = None, num_gpus: int | None = None
) -> None:
    """Join `address`, or start a local Ray bound to loopback, with no dashboard.

    `num_gpus`: the GPUs the local Ray offers (None: as Ray detects them); each becomes a
    GPU worker slot."""
    if _embedded is not None:
        _embedded.wait()  # started in the background: use that one
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}})
        return
    _init_embedded(num_cpus or os.cpu_count() or 1, num_gpus)


def _init_embedded(num_cpus: int, num_gpus: int | None = None) -> None:
    # Workers of an embedded Ray inherit this process's environment. Saying it there rather
    # than in a runtime_env lets the workers Ray prestarts serve our actors: with a runtime_env
    # they could not, and each actor waited for a fresh process (0.7 s → 0.15 s here).
    os.environ["PYTHONUNBUFFERED"] = "1"
    # Ray notes at start-up that token authentication is on; that is what we want, quietly.
    logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR
    )
    # Started off the main thread, Ray notes it set no SIGTERM handler: ours is Python's.
    logging.getLogger("ray._private.worker").setLevel(logging.ERROR)
    ray.init(
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        configure_logging=True,
        _node_ip_address="127.0.0.1",
        # Ray starts its workers at nice 15, which Blender inherits: every other process on
        # the machine then outranks the render. Plain `blender -b` runs at 0; so does ours.
        _system_config={"worker_niceness": 0},
        # Ray's default /tmp/ray is 0777: any session user could rename the farm's files
        _temp_dir=str(ray_temp_dir()),
    )
    _private_ray_token()


def ray_temp_dir() -> Path:
    """The embedded Ray's session folder, inside a folder that is this user's own (0700):
    Ray makes its own folders 0777 whatever their parent, so the parent is the lock. Short,
    for Ray's socket paths."""
    parent = private_folder(Path(tempfile.gettempdir()) / f"wanhe-{os.geteuid()}")
    if parent.stat().st_uid == os.geteuid():
        os.chmod(parent, 0o700)  # ours by name: private even if made looser before
    return parent / "ray"


def _private_ray_token() -> None:
    """Ray's token file (its token authentication) readable by this user only."""
    for path in (Path.home() / ".ray", Path.home() / ".ray" / "auth_token"):
        try:
            if path.exists() and path.stat().st_uid == os.geteuid():
                os.chmod(path, 0o700 if path.is_dir() else 0o600)
        except OSError:  # a home we may not change: Ray's own choice stands
            pass


def shutdown() -> None:
    """Leave Ray; a Ray this process started stops with it."""
    global _embedded
    start, _embedded = _embedded, None
    if start is not None:
        start.wait()  # a Ray half-way through its start would outlive us
    if ray.is_initialized():
        _stop_autoscaler_monitor()
        ray.shutdown()
    if start is not None and start.thread is not None:
        start.release.set()
        start.thread.join(timeout=5)


def _stop_autoscaler_monitor() -> None:
    """Kill an embedded head's autoscaler monitor before `ray.shutdown()`.

    Ray stops its processes one by one, SIGTERM then a 1 s wait each; the monitor sleeps through
    SIGTERM, so it alone made every `wanhe render` 1 s longer (shutdown 1.14 s → 0.16 s here).
    It keeps no state a farm needs. Private Ray API, hence the guard: if it moves, we only lose
    the second.
    """
    node = getattr(getattr(ray, "_private", None), "worker", None)
    node = getattr(node, "_global_node", None)
    if node is None or not getattr(node, "head", False):
        return  # joined someone else's cluster: nothing of ours to stop
    for info in getattr(node, "all_processes", {}).get("monitor", []):
        with contextlib.suppress(Exception):
            info.process.kill()
            info.process.wait(1)


def nodes() -> list[NodeInfo]:
    return [
        NodeInfo(
            node_id=n["NodeID"],
            address=n.get("NodeManagerAddress", ""),
            alive=bool(n.get("Alive")),
            cpus=float(n.get("Resources", {}).get("CPU", 0.0)),
            memory=int(n.get("Resources", {}).get("memory", 0)),
            gpus=float(n.get("Resources", {}).get("GPU", 0.0)),
        )
        for n in ray.nodes()  # type: ignore[no-untyped-call]
    ]


def total_cpus() -> float:
    return float(ray.cluster_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]


def total_gpus() -> float:
    return float(ray.cluster_resources().get("GPU", 0.0))  # type: ignore[no-untyped-call]


def request_resources(bundles: list[dict[str, float]]) -> None:
    """Ask the cluster's autoscaler to make room for these bundles at once (what runs
    included); an empty list withdraws the request, so idle nodes may go."""
    from ray.autoscaler.sdk import request_resources as ask

    ask(bundles=bundles)


def make_worker(name: str, *, cpus: float, gpus: float = 0.0,
                tools: Mapping[str, str] | None = None) -> Any:
    """A FarmWorker actor reserving `cpus` cores; Ray picks the node."""
    actor_class = ray.remote(FarmWorker)
    return actor_class.options(  # type: ignore[attr-defined]
        name=None,
        num_cpus=cpus,
        num_gpus=gpus,
        max_concurrency=4,
        max_restarts=0,
        scheduling_strategy="SPREAD",
    ).remote(name, dict(tools or {}))


def initialized() -> bool:
    """Whether this process is connected to a Ray (started here or joined)."""
    return bool(ray.is_initialized())

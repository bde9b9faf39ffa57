"""Session hosts started before their sessions: `wanhe run` starts a few as the command
begins, and the OpenJD executor adopts one (`take`) instead of starting its own, so the
host's start — a Python process importing openjd, a third of a second — runs while the job is
planned and its database opened, not after the first task is dispatched. The hosts are forked
by one spawner that imported openjd once (`wanhe.openjd.hostspawn`), not started one
interpreter each.

Only hosts that run as this process's own user are started ahead (a local run's sessions,
whose account is not a project's): their sandbox is a cgroup of their own and no mount
namespace, both of which can be made before the job is known, and the session's memory limit
is set on the cgroup when the host is adopted (`Sandbox.adopt`), before the session opens. A
project's session on the farm (as root) needs a mount namespace that shows that job's folders
only: such hosts are always started for their session, never ahead.

A forked host is moved into its own cgroup as soon as it is forked (in the background), and
adopted only once it is there, before its session opens: nothing of a job runs outside it.
A host that is not adopted is killed with its cgroup (`close`, and at exit): it never opened
a session, so nothing of a job runs in it.
"""

from __future__ import annotations

import atexit
import contextlib
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wanhe.openjd.hostspawn import ForkedHost, Spawner
    from wanhe.openjd.template import Plan
    from wanhe.sandbox.accounts import Account
    from wanhe.sandbox.box import Sandbox

_FORK_S = 60.0  # the spawner's imports and forks, on a loaded machine at worst
MAX_AHEAD = 4  # hosts started ahead at most: the rest start with their session, as before
HOST_MEMORY = 128 * 2**20  # the session host's own memory, on top of the task's request


def host_command() -> list[str]:
    """The session host's command line (`wanhe.openjd.host`) on this machine's Python."""
    return [sys.executable, "-m", "wanhe.openjd.host"]


@dataclass(slots=True)
class WarmHost:
    """A host started ahead: its process (its stderr a temporary file until its session
    names its own log), its sandbox (cgroup) and the environment it was started with."""

    proc: ForkedHost
    box: Sandbox
    env: dict[str, str]
    # set once the host is in its cgroup (`in_box` then True) or cannot be
    placed: threading.Event = field(default_factory=threading.Event)
    in_box: bool = False


_lock = threading.Lock()
_ready: list[WarmHost] = []
_planners: list[Spawner] = []  # spawners that may still plan the run's job
_made = 0  # hosts started ahead by this process: each cgroup's name is its own, for good
_registered = False


def start_ahead(count: int) -> int:
    """Start up to `count` (at most MAX_AHEAD) hosts as this process's user, forked by one
    spawner (`wanhe.openjd.hostspawn`), each to be moved into its own cgroup when the sandbox
    has them; how many were asked of the spawner. Never raises: a host that cannot start here
    is started with its session instead, which then says why."""
    global _made, _registered
    from pathlib import Path

    from wanhe.openjd.hostspawn import Spawner
    from wanhe.sandbox.accounts import host_env, session_account

    count = max(0, min(count, MAX_AHEAD))
    if count == 0:
        return 0
    boxes: list[Sandbox] = []
    try:
        account = session_account("local")
        for _ in range(count):
            with _lock:
                _made += 1
                n = _made
            boxes.append(_box(n, account))
        env = host_env(account, Path.cwd())  # the service user's: no session folder in it
        spawner, hosts = Spawner.start(count, env)
    except Exception:  # an optimisation only: a session's own start says what is wrong
        for box in boxes:
            box.close()
        return 0
    warm = [WarmHost(proc, box, env) for proc, box in zip(hosts, boxes, strict=True)]
    # Each host goes into its cgroup as soon as it is forked, in the background: a first
    # move into a cgroup can take milliseconds (v1 waits on the kernel's RCU), which the
    # first task would otherwise wait for.
    threading.Thread(target=_place, args=(warm,), daemon=True, name="openjd-hosts-place").start()
    with _lock:
        _ready.extend(warm)
        _planners.append(spawner)
        if not _registered:
            atexit.register(close)
            _registered = True
    return count


def _box(n: int, account: Account) -> Sandbox:
    from wanhe.sandbox.box import Sandbox, task_memory
    from wanhe.sandbox.spec import SandboxSpec, pids_limit

    # a placeholder limit until the session's own is set on adoption
    limit = task_memory(None)
    spec = SandboxSpec(memory_bytes=None if limit is None else limit + HOST_MEMORY,
                       pids_max=pids_limit())
    return Sandbox.open(f"openjd-ahead-{n}", spec, account, confine=False)


def take(env: dict[str, str]) -> WarmHost | None:
    """A running host started ahead with exactly this environment, in its own cgroup, now
    the caller's (it sets the session's spec on its box and sends `open`); None when there is
    none."""
    while True:
        with _lock:
            if not _ready:
                return None
            host = _ready.pop(0)
        if host.env == env and _running_in_box(host):
            return host
        discard(host)  # died, or started for another environment: not this session's host


def _place(hosts: list[WarmHost]) -> None:
    """Move each host into its own cgroup once the spawner has forked it."""
    for host in hosts:
        try:
            if host.proc.started(_FORK_S):
                if host.box.group is not None:
                    host.box.group.attach(host.proc.pid)
                host.in_box = True
        except OSError:
            pass
        finally:
            host.placed.set()


def _running_in_box(host: WarmHost) -> bool:
    """Whether the host was forked and lives, moved into its cgroup (before any session
    opens in it, so nothing of a job ever runs outside)."""
    host.placed.wait(_FORK_S)
    return host.in_box and host.proc.poll() is None


def plan_ahead(arguments: dict[str, Any]) -> Callable[[], Plan | None]:
    """Ask the newest spawner started ahead to plan the job (`Spawner.ask`) and return what
    waits for its answer (`Spawner.answer_to`, which raises the template's TemplateError);
    that answers None when there is no spawner to ask or it cannot answer: the caller plans
    in-process then. Asking first lets the caller work while the spawner plans."""
    with _lock:
        spawner = _planners.pop() if _planners else None
        _planners.clear()  # an older one is not this run's
    if spawner is None or not spawner.ask(arguments):
        return lambda: None
    return lambda: spawner.answer_to(_FORK_S)


def planning() -> bool:
    """Whether a spawner started ahead may still plan this run's job."""
    with _lock:
        return bool(_planners)


def waiting() -> int:
    """Hosts started ahead and not adopted yet."""
    with _lock:
        return len(_ready)


def close() -> None:
    """Kill the hosts nobody adopted, with their cgroups."""
    with _lock:
        left = list(_ready)
        _ready.clear()
        planners = list(_planners)
        _planners.clear()
    for spawner in planners:  # never asked: it ends with its hosts
        spawner.close_requests()
    for host in left:
        discard(host)


def discard(host: WarmHost) -> None:
    """Kill a host started ahead (it never opened a session) and remove its cgroup. One not
    forked yet ends as soon as it is: its stdin is closed (or its spawner is stopped, when no
    host of it is wanted any more)."""
    proc = host.proc
    proc.kill()
    proc.close_pipes()
    if proc.started(0):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
    elif not any(h.proc.spawner is proc.spawner for h in _snapshot()):
        proc.spawner.kill()
    host.box.close()


def _snapshot() -> list[WarmHost]:
    with _lock:
        return list(_ready)

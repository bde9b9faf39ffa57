"""Session hosts started before their sessions: `wanhe run` starts a few as the command
begins, and the OpenJD executor adopts one (`take`) instead of starting its own, so the
host's start — a Python process importing openjd, a third of a second — runs while the job is
planned and its database opened, not after the first task is dispatched.

Only hosts that run as this process's own user are started ahead (a local run's sessions,
whose account is not a project's): their sandbox is a cgroup of their own and no mount
namespace, both of which can be made before the job is known, and the session's memory limit
is set on the cgroup when the host is adopted (`Sandbox.adopt`), before the session opens. A
project's session on the farm (as root) needs a mount namespace that shows that job's folders
only: such hosts are always started for their session, never ahead.

A host that is not adopted is killed with its cgroup (`close`, and at exit): it never opened
a session, so nothing of a job runs in it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from wanhe.sandbox.accounts import Account
    from wanhe.sandbox.box import Sandbox

MAX_AHEAD = 4  # hosts started ahead at most: the rest start with their session, as before
HOST_MEMORY = 128 * 2**20  # the session host's own memory, on top of the task's request


def host_command() -> list[str]:
    """The session host's command line (`wanhe.openjd.host`) on this machine's Python."""
    return [sys.executable, "-m", "wanhe.openjd.host"]


@dataclass(slots=True)
class WarmHost:
    """A host started ahead: its process, its sandbox (cgroup) and what it was started with."""

    proc: subprocess.Popen[str]
    box: Sandbox
    env: dict[str, str]
    stderr: IO[bytes]  # where it writes until its session names its own log


_lock = threading.Lock()
_ready: list[WarmHost] = []
_made = 0  # hosts started ahead by this process: each cgroup's name is its own, for good
_registered = False


def start_ahead(count: int) -> int:
    """Start up to `count` (at most MAX_AHEAD) hosts as this process's user, in their own
    cgroups when the sandbox has them; how many started. Never raises: a host that cannot
    start here is started with its session instead, which then says why."""
    global _made, _registered
    from wanhe.sandbox.accounts import session_account

    started = 0
    try:
        account = session_account("local")
        for _ in range(max(0, min(count, MAX_AHEAD))):
            with _lock:
                _made += 1
                n = _made
            host = _start(n, account)
            with _lock:
                _ready.append(host)
                if not _registered:
                    atexit.register(close)
                    _registered = True
            started += 1
    except Exception:  # an optimisation only: a session's own start says what is wrong
        pass
    return started


def _start(n: int, account: Account) -> WarmHost:
    from pathlib import Path

    from wanhe.sandbox.accounts import host_env
    from wanhe.sandbox.box import Sandbox, task_memory
    from wanhe.sandbox.spec import SandboxSpec, pids_limit

    env = host_env(account, Path.cwd())  # the service user's: no session folder in it
    # a placeholder limit until the session's own is set on adoption
    limit = task_memory(None)
    spec = SandboxSpec(memory_bytes=None if limit is None else limit + HOST_MEMORY,
                       pids_max=pids_limit())
    box = Sandbox.open(f"openjd-ahead-{n}", spec, account, confine=False)
    err = tempfile.TemporaryFile()  # noqa: SIM115  (kept with the host until it opens)
    try:
        proc = subprocess.Popen(
            box.command(host_command(), drop=False), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=err, text=True, encoding="utf-8", env=env,
            start_new_session=True, close_fds=True,
        )
    except BaseException:
        err.close()
        box.close()
        raise
    return WarmHost(proc, box, env, err)


def take(env: dict[str, str]) -> WarmHost | None:
    """A running host started ahead with exactly this environment, now the caller's (it
    sets the session's spec on its box and sends `open`); None when there is none."""
    while True:
        with _lock:
            if not _ready:
                return None
            host = _ready.pop(0)
        if host.proc.poll() is None and host.env == env:
            return host
        discard(host)  # died, or started for another environment: not this session's host


def waiting() -> int:
    """Hosts started ahead and not adopted yet."""
    with _lock:
        return len(_ready)


def close() -> None:
    """Kill the hosts nobody adopted, with their cgroups."""
    with _lock:
        left = list(_ready)
        _ready.clear()
    for host in left:
        discard(host)


def discard(host: WarmHost) -> None:
    """Kill a host started ahead (it never opened a session) and remove its cgroup."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(host.proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        host.proc.wait(5)
    for stream in (host.proc.stdin, host.proc.stdout, host.stderr):
        with contextlib.suppress(OSError):
            stream and stream.close()
    host.box.close()

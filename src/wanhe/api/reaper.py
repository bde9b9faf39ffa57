"""The service's processes die with it: a subreaper, a sweep at exit, and a watchdog.

`wanhe serve` starts a local Ray whose daemons (gcs_server, raylet, the dashboard and
runtime-env agents, workers, Blender under them) are the service's process tree. Linux's
parent-death signal that Ray sets on some of them is not inherited by their own children, so
after the service stopped (SIGTERM) or was killed (SIGKILL) the agents lived on for minutes.

- `become_subreaper()`: orphans of the tree (an agent whose raylet died first) are re-parented
  to the service instead of to init, so they stay in its tree.
- `reap_tree()`: at a graceful stop, after Ray's own shutdown, what is left of the tree gets
  SIGTERM, then SIGKILL.
- `start_watchdog()`: a small process that ignores the signals a terminal or a service manager
  sends the whole group, notes the service's tree every half second, and, once the service is
  gone (however it ended, kill -9 included), ends every process it noted (checked by start
  time, so a reused pid is never hit), then exits itself.

Only processes of this service's own tree are ever signalled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time

import psutil

log = logging.getLogger(__name__)

POLL_S = 0.5
GRACE_S = 2.0
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _descendants(pid: int, skip: int | None = None) -> dict[int, float]:
    """pid -> start time of every live descendant of `pid` (but `skip`)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return {}
    found: dict[int, float] = {}
    for child in children:
        if child.pid == skip:
            continue
        with contextlib.suppress(psutil.Error):
            found[child.pid] = child.create_time()
    return found


def end_processes(noted: dict[int, float], grace_s: float = GRACE_S) -> list[int]:
    """SIGTERM the noted processes still alive (same pid and start time), SIGKILL those left
    after `grace_s`; return the pids signalled."""
    alive: list[psutil.Process] = []
    for pid, started in noted.items():
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if abs(proc.create_time() - started) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, left = psutil.wait_procs(alive, timeout=grace_s)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(left, timeout=grace_s)
    return [proc.pid for proc in alive]


def reap_tree(skip: int | None = None) -> list[int]:
    """End what is left of this process's tree (but `skip`, the watchdog)."""
    left = _descendants(os.getpid(), skip=skip)
    ended = end_processes(left)
    if ended:
        log.info("stopped %d leftover process(es) of the service: %s", len(ended), ended)
    return ended


def start_watchdog() -> subprocess.Popen[bytes] | None:
    """Start the watchdog for this process; None if it cannot start (the service runs on)."""
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "wanhe.api.reaper", str(os.getpid()),
             repr(psutil.Process().create_time())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=True,
        )
    except OSError as exc:
        log.warning("no watchdog for the service's processes: %s", exc)
        return None


def watch(pid: int, started: float) -> None:
    """The watchdog's loop: note `pid`'s tree until it is gone, then end what was noted."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    me = os.getpid()
    noted: dict[int, float] = {}
    while True:
        try:
            service = psutil.Process(pid)
            gone = (abs(service.create_time() - started) > 0.01
                    or service.status() == psutil.STATUS_ZOMBIE)
        except psutil.Error:
            gone = True
        if gone:
            break
        noted = _descendants(pid, skip=me)  # what is alive now is what may be left behind
        time.sleep(POLL_S)
    # the service's children now belong to init (or to a subreaper above): their own
    # children were noted too, and a process started since is a child of one of them
    for noted_pid in list(noted):
        noted.update(_descendants(noted_pid, skip=me))
    noted.pop(me, None)
    end_processes(noted)


if __name__ == "__main__":
    watch(int(sys.argv[1]), float(sys.argv[2]))

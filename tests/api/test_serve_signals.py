"""`wanhe serve` takes its whole process tree with it: after SIGTERM (the same graceful path as
SIGINT) and after kill -9, no process of the tree, Ray's daemons and agents included, is alive
10 s later (issue 12, item 6).

A real `wanhe serve` subprocess with its embedded Ray; only the pids of its tree are touched.
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.api._service import ServiceProc, wait_for


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _names(procs: list[psutil.Process]) -> list[str]:
    names = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            names.append(proc.name())
    return names


def _alive(procs: list[psutil.Process]) -> list[str]:
    left = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{proc.pid} {proc.name()}")
    return left


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_no_process_of_the_service_outlives_it(tmp_path: Path, sig: signal.Signals) -> None:
    home = tmp_path / "farm"
    svc = ServiceProc(home, f"sqlite:///{home / 'wanhe.db'}", 0, workers=1,
                      num_cpus=1)
    svc.start()
    assert svc.proc is not None
    pid = svc.proc.pid
    tree: list[psutil.Process] = []
    try:
        def ray_is_up() -> bool:
            nonlocal tree
            tree = _tree(pid)
            names = " ".join(_names(tree))
            return "raylet" in names and "Agent" in names

        wait_for(ray_is_up, 90, "Ray's daemons and agents to start")
        time.sleep(1.0)  # the watchdog notes the tree every half second
        tree = _tree(pid)  # every process the service has now
        svc.proc.send_signal(sig)  # the service alone, not its group
        code = svc.proc.wait(timeout=60)
        deadline = time.monotonic() + 10  # every process gone within 10 s (dead stays dead)
        while _alive(tree) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _alive(tree) == [], f"alive 10 s after {sig.name}: {_alive(tree)}"
        if sig is signal.SIGTERM:
            assert code == 0, svc.log.read_text()[-2000:]
            assert "wanhe stopped" in svc.log.read_text()  # the graceful path ran through
    finally:
        for proc in tree:  # only what this test started
            with contextlib.suppress(psutil.Error):
                proc.kill()
        svc.proc = None

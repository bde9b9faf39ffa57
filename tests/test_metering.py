"""The process-wide meter: real threads burning real CPU. Two in-process tasks that overlap
share the process's CPU (their figures add up to it, not to twice it); a task alone gets all
of it; a child a task waits for is its own exactly, and one metered elsewhere is nobody's."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from wanhe import metering
from wanhe.metering import Meter, Share, Waited, process_cpu


def _burn(seconds: float) -> None:
    """Burn `seconds` of this thread's CPU (pure Python: it holds the GIL)."""
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        n += sum(range(200))


def _total() -> float:
    own, kids = process_cpu()
    return own + kids


_CHILD_BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"


def test_a_task_alone_gets_all_the_process_cpu() -> None:
    meter = Meter()
    before = _total()
    with meter.task() as share:
        _burn(0.3)
    spent = _total() - before
    assert share.cpu_s == pytest.approx(spent, rel=0.05, abs=0.02)
    assert share.cpu_s >= 0.28 and not share.apportioned


def test_two_overlapping_tasks_share_the_process_cpu_not_count_it_twice() -> None:
    meter = Meter()
    both = threading.Barrier(2, timeout=10)
    shares: list[Share] = []
    old_style: list[float] = []  # what each would have reported with the process's rusage

    def task(seconds: float) -> None:
        with meter.task() as share:
            start = _total()
            both.wait()  # both are running before either burns
            _burn(seconds)
            both.wait()  # and neither ends before the other is done
            old_style.append(_total() - start)
        shares.append(share)

    before = _total()
    threads = [threading.Thread(target=task, args=(s,)) for s in (0.3, 0.3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    spent = _total() - before
    assert len(shares) == 2 and all(s.apportioned for s in shares)
    assert sum(s.cpu_s for s in shares) == pytest.approx(spent, rel=0.1, abs=0.03)
    assert sum(s.cpu_s for s in shares) >= 0.55  # both burns are in it
    assert sum(old_style) > 1.6 * spent  # the bug it fixes: each saw both


def test_a_child_a_task_waits_for_is_its_own_exactly() -> None:
    meter = Meter()
    both = threading.Barrier(2, timeout=10)
    results: dict[str, Share] = {}
    child: list[float | None] = []

    def runner() -> None:
        with meter.task() as share:
            both.wait()
            proc = Waited([sys.executable, "-c", _CHILD_BURN])
            proc.wait(timeout=20)
            assert proc.rusage is not None
            cpu = proc.rusage.ru_utime + proc.rusage.ru_stime
            meter.claim_children(cpu)
            child.append(cpu)
            both.wait()
        results["runner"] = share

    def other() -> None:
        with meter.task() as share:
            both.wait()
            both.wait()  # idle while the child runs and is reaped
        results["other"] = share

    threads = [threading.Thread(target=runner), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    cpu = child[0]
    assert cpu is not None and cpu >= 0.28
    assert results["runner"].exact_s == pytest.approx(cpu)
    assert results["other"].children_s < 0.02  # none of the runner's child is the other's
    assert results["runner"].children_s < 0.02  # and it is not counted twice for the runner


def test_a_child_metered_elsewhere_is_no_tasks() -> None:
    meter = Meter()
    with meter.task() as share:
        # reaped and metered by other code (a command task, a worker's Blender)
        done = subprocess.Popen([sys.executable, "-c", _CHILD_BURN])
        _pid, _status, usage = os.wait4(done.pid, 0)
        done.returncode = 0
        meter.exclude_children(usage.ru_utime + usage.ru_stime)
    assert usage.ru_utime + usage.ru_stime >= 0.28
    assert share.children_s < 0.02 and share.exact_s == 0.0


def test_run_claims_the_program_for_the_running_task() -> None:
    with metering.METER.task() as share:
        done = metering.run([sys.executable, "-c", _CHILD_BURN], capture_output=True,
                            text=True, timeout=30)
    assert done.returncode == 0 and done.cpu_s is not None and done.cpu_s >= 0.28
    assert share.exact_s == pytest.approx(done.cpu_s)
    assert share.cpu_s >= done.cpu_s and share.children_s < 0.02


def test_run_keeps_subprocess_run_s_contract() -> None:
    done = metering.run([sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read())"],
                        input="hi", capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, "hi")
    with pytest.raises(subprocess.CalledProcessError):
        metering.run([sys.executable, "-c", "raise SystemExit(3)"], check=True, timeout=30)
    with pytest.raises(subprocess.TimeoutExpired):
        metering.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)


def test_a_nested_task_is_the_outer_task_s_cpu_during_the_block() -> None:
    meter = Meter()
    with meter.task() as outer:
        _burn(0.1)
        with meter.task() as inner:
            _burn(0.2)
        _burn(0.1)
    assert inner.cpu_s == pytest.approx(0.2, abs=0.05)
    assert outer.cpu_s == pytest.approx(0.4, abs=0.08)
    assert not inner.apportioned

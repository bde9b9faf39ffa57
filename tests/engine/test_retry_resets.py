"""Retry gives a job a fresh start: its node blocklist and attempt counts are cleared, so a
job that failed (or was cancelled) after its node was blocklisted runs again once the cause is
fixed, in the same long-running dispatcher (issue 12, item 5).

Real local workers (no Ray) running real commands, as in test_dispatcher_failures.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.engine.test_dispatcher_failures import commands_job, outcomes
from wanhe.engine.dispatcher import Dispatcher
from wanhe.engine.handles import LocalWorker
from wanhe.model import JobState
from wanhe.store.store import Store


def _until_final(store: Store, dispatcher: Dispatcher, job: int, limit_s: float) -> JobState:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        dispatcher.step(0.2)
        state = store.job(job).state  # type: ignore[union-attr]
        if state.is_final and not dispatcher._running:
            return state
    state = store.job(job).state  # type: ignore[union-attr]
    raise AssertionError(f"job {job} still {state.value} after {limit_s} s: it hangs")


def _needs_fix(tmp_path: Path) -> list[str]:
    """Fails (own fault) until the test 'fixes the output folder' by creating `fixed`."""
    return ["sh", "-c", f"test -e {tmp_path / 'fixed'} || {{ echo 'cannot write' >&2; exit 1; }}"]


def test_retry_after_a_blocklist_runs_again_in_the_same_dispatcher(
    store: Store, tmp_path: Path
) -> None:
    job = commands_job(store, [_needs_fix(tmp_path)] * 2, max_attempts=5, blocklist=2)
    dispatcher = Dispatcher(store, threads=1, workers=1, log_root=tmp_path / "logs",
                            local_workers=[LocalWorker("w0")], use_ray=False)
    try:
        dispatcher.start_pool()
        dispatcher.sync()
        assert _until_final(store, dispatcher, job, 20) is JobState.FAILED
        assert "blocklisted" in store.job(job).message  # type: ignore[union-attr]
        (tmp_path / "fixed").touch()  # the user fixes the cause ...
        assert store.retry_failed(job) == 2  # ... and retries
        assert store.node_failures(job) == {}  # failures before the retry count no more
        assert all(t.faults == 0 and t.losses == 0 and t.attempts == 0
                   for t in store.tasks(job))
        dispatcher.poke()
        assert _until_final(store, dispatcher, job, 20) is JobState.DONE
    finally:
        dispatcher.close()
    assert outcomes(store, job).count("ok") == 2


def test_cancel_then_retry_counts_failures_anew(store: Store, tmp_path: Path) -> None:
    """One failure, cancel, retry, one more failure: with blocklist_after=2 the node is not
    blocklisted (the failure before the retry no longer counts), so the third try runs."""
    count = tmp_path / "count"
    flaky = ["sh", "-c", f"sleep 0.3; n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); "
                         f"echo $n > {count}; test $n -ge 3 || {{ echo 'not yet' >&2; exit 1; }}"]
    job = commands_job(store, [flaky], max_attempts=9, blocklist=2)
    dispatcher = Dispatcher(store, threads=1, workers=1, log_root=tmp_path / "logs",
                            local_workers=[LocalWorker("w0")], use_ray=False)
    try:
        dispatcher.start_pool()
        dispatcher.sync()
        deadline = time.monotonic() + 20
        while not sum(store.node_failures(job).values()) and time.monotonic() < deadline:
            dispatcher.step(0.1)
        assert sum(store.node_failures(job).values()) == 1
        store.cancel_job(job)
        dispatcher.poke()
        assert _until_final(store, dispatcher, job, 20) is JobState.CANCELLED
        assert store.retry_failed(job) == 1
        dispatcher.poke()
        assert _until_final(store, dispatcher, job, 20) is JobState.DONE
    finally:
        dispatcher.close()
    assert outcomes(store, job).count("failed") == 2


def test_a_graceful_stop_hands_running_attempts_back(store: Store, tmp_path: Path) -> None:
    """What the service does on SIGTERM/SIGINT before its workers go: the running attempt is
    closed as cancelled and metered, its task ready again, no retry used up."""
    job = commands_job(store, [["sleep", "30"]], max_attempts=1)
    dispatcher = Dispatcher(store, threads=1, workers=1, log_root=tmp_path / "logs",
                            local_workers=[LocalWorker("w0")], use_ray=False)
    try:
        dispatcher.start_pool()
        dispatcher.sync()
        deadline = time.monotonic() + 20
        while not store.attempts(job) and time.monotonic() < deadline:
            dispatcher.step(0.1)
        time.sleep(0.5)
        assert dispatcher.hand_back() == 1
    finally:
        dispatcher.close()
    [attempt] = store.attempts(job)
    assert attempt["outcome"] == "cancelled" and "handed back" in attempt["message"]
    assert attempt["wall_s"] >= 0.4
    [task] = store.tasks(job)
    assert task.state.value == "ready" and task.faults == 0 and task.losses == 0
    assert store.recover_interrupted() == 0  # nothing left open for a restart to call lost

"""What the dispatcher tells its observer, and when: the service publishes a task's files on
"finishing", which must come before the database records the task done, so that a reader who
sees it done never finds its files missing from storage."""

from __future__ import annotations

from pathlib import Path

from tests.engine.test_handles import noop_job
from wanhe.engine.dispatcher import Dispatcher, TaskEvent
from wanhe.engine.handles import LocalWorker
from wanhe.model import TaskState
from wanhe.store.store import Store


def test_finishing_comes_before_the_database_says_done(store: Store, tmp_path: Path) -> None:
    seen: list[tuple[str, str, TaskState]] = []

    def observe(event: TaskEvent) -> None:
        if event.kind in ("finishing", "done"):
            row = store.task(event.task.id)
            assert row is not None
            seen.append((event.kind, event.task.key, row.state))

    dispatcher = Dispatcher(store, threads=1, workers=1, log_root=tmp_path / "logs",
                            local_workers=[LocalWorker("w0")], use_ray=False, on_event=observe)
    job = noop_job(store, 2, light=1)
    try:
        dispatcher.run_jobs([job])
    finally:
        dispatcher.close()
    keys = sorted({key for _, key, _ in seen})
    assert keys == ["l000", "n000", "n001"]
    for key in keys:
        events = [(kind, state) for kind, k, state in seen if k == key]
        assert events == [("finishing", TaskState.RUNNING), ("done", TaskState.DONE)], key

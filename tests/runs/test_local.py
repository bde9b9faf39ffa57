"""One resume for every kind of local run (`wanhe render`, `run`, `story render`, `gen`):
a job found by its fingerprint runs only what is unfinished, and a paused, cancelled or
failed one runs again to the end. Real store, real dispatcher, workers of this process
running no-op tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanhe.config import Settings
from wanhe.model import JobState, TaskKind, TaskSpec, TaskState
from wanhe.runs.local import LocalJob, NewJob, open_or_resume, run_local_job
from wanhe.store.store import JobRow, Store, TaskRow


def _new_job(made: list[int]) -> NewJob:
    made.append(1)  # counts how often the (possibly costly) compile ran
    return NewJob(name="noop", kind="noop", spec={},
                  tasks=[TaskSpec(f"n{i}", TaskKind.NOOP, {"sleep_s": 0.02}) for i in range(3)],
                  work_dir="")


def _run(store: Store, tmp_path: Path, local: LocalJob) -> JobRow:
    url = store.engine.url.render_as_string(hide_password=False)
    settings = Settings(home=tmp_path / "home", db=url)
    run_local_job(store, local, settings=settings, threads=1, workers=2)
    final = store.job(local.job.id)
    assert final is not None
    return final


def test_second_run_finds_the_job_and_runs_nothing_again(store: Store, tmp_path: Path) -> None:
    made: list[int] = []
    first = open_or_resume(store, "fp-1", lambda: _new_job(made))
    assert (first.resumed, first.done_before, len(first.tasks)) == (False, 0, 3)
    assert _run(store, tmp_path, first).state is JobState.DONE
    attempts = len(store.attempts(first.job.id))

    again = open_or_resume(store, "fp-1", lambda: _new_job(made))
    assert (again.job.id, again.resumed, again.done_before) == (first.job.id, True, 3)
    assert not again.unfinished and made == [1]
    assert _run(store, tmp_path, again).state is JobState.DONE
    assert len(store.attempts(first.job.id)) == attempts  # nothing ran twice


@pytest.mark.parametrize("stopped", [JobState.PAUSED, JobState.CANCELLED])
def test_a_paused_or_cancelled_job_runs_to_the_end_when_run_again(
    store: Store, tmp_path: Path, stopped: JobState
) -> None:
    first = open_or_resume(store, "fp-2", lambda: _new_job([]))
    if stopped is JobState.PAUSED:
        store.set_job_state(first.job.id, JobState.PAUSED)
    else:
        store.cancel_job(first.job.id)
    again = open_or_resume(store, "fp-2", lambda: _new_job([]))
    assert again.resumed and again.job.state is JobState.QUEUED
    assert _run(store, tmp_path, again).state is JobState.DONE
    assert all(t.state is TaskState.DONE for t in store.tasks(first.job.id))


def test_redo_runs_finished_tasks_whose_outputs_went_missing(
    store: Store, tmp_path: Path
) -> None:
    first = open_or_resume(store, "fp-3", lambda: _new_job([]))
    _run(store, tmp_path, first)

    def redo(job: JobRow, rows: list[TaskRow]) -> list[int]:
        assert job.state is JobState.DONE
        return [t.id for t in rows if t.key == "n1"]

    again = open_or_resume(store, "fp-3", lambda: _new_job([]), redo=redo)
    assert again.done_before == 2 and again.unfinished
    assert _run(store, tmp_path, again).state is JobState.DONE
    runs = [a["key"] for a in store.attempts(first.job.id)]
    assert runs.count("n1") == 2 and runs.count("n0") == 1

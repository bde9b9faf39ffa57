"""Every write of a job's or a task's state goes through the state machine: the store writes
states only in `wanhe.store.transitions`, whose UPDATEs touch only rows in a legal source
state. Checked two ways: over the source (a state UPDATE anywhere else in store/ fails here),
and over the SQL a whole life of jobs sends (every UPDATE that sets a state is limited by the
current state)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

import wanhe.store
from wanhe.lifecycle import IllegalTransition, RetryRules, resume_plan, retry_plan
from wanhe.model import AttemptOutcome, JobState, TaskKind, TaskSpec, TaskState
from wanhe.store import tables as t
from wanhe.store.store import Store, Usage
from wanhe.store.transitions import move_jobs, move_tasks

STORE = Path(wanhe.store.__file__).parent
CHECKED_HELPER = "transitions.py"
STATE_TABLES = {"tasks", "jobs"}
RAW_STATE_UPDATE = re.compile(r"update\s+(tasks|jobs)\b[^;]*\bstate\s*=", re.I | re.S)


def _updated_table(call: ast.Call) -> str | None:
    """`update(t.tasks)` / `update(jobs)` → "tasks" / "jobs"."""
    if not (isinstance(call.func, ast.Name) and call.func.id == "update" and call.args):
        return None
    target = call.args[0]
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    return name if name in STATE_TABLES else None


def _writes_state(values: ast.Call) -> bool:
    """`.values(state=…)`, `.values(**anything)` (it could hold a state) or a dict with a
    "state" key."""
    if any(k.arg in (None, "state") for k in values.keywords):
        return True
    return any(isinstance(a, ast.Dict) and any(
        isinstance(k, ast.Constant) and k.value == "state" for k in a.keys) for a in values.args)


def state_writes(source: str) -> list[int]:
    """Lines of `source` that UPDATE a job's or task's state (ORM or raw SQL)."""
    found: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "values" and _writes_state(node)
                and any(isinstance(c, ast.Call) and _updated_table(c)
                        for c in ast.walk(node.func.value))):
            found.append(node.lineno)
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and RAW_STATE_UPDATE.search(node.value)):
            found.append(node.lineno)
    return found


def test_no_state_is_written_outside_the_checked_helper() -> None:
    outside = {
        path.name: lines for path in sorted(STORE.glob("*.py"))
        if path.name != CHECKED_HELPER
        and (lines := state_writes(path.read_text(encoding="utf-8")))
    }
    assert outside == {}, ("state written without wanhe.store.transitions (move_tasks / "
                           f"move_jobs): {outside}")


def test_the_scan_finds_state_writes_of_every_form() -> None:
    assert state_writes("update(t.tasks).where(x).values(state='done')") == [1]
    assert state_writes("update(jobs).values(**values)") == [1]
    assert state_writes("update(t.jobs).values({'state': 'done'})") == [1]
    assert state_writes("conn.execute(text('UPDATE tasks SET state = :s'))") == [1]
    assert state_writes("update(t.tasks).values(progress=1.0)") == []
    assert state_writes("insert(t.tasks).values(state='ready')") == []  # a first state
    helper = (STORE / CHECKED_HELPER).read_text(encoding="utf-8")
    assert len(state_writes(helper)) == 2  # move_tasks, move_jobs


# ---------------------------------------------------------------------- behaviour


def _job(store: Store, keys: dict[str, list[str]], name: str = "j") -> int:
    project = store.project_by_name("p") or store.create_project("p")
    return store.create_job(
        project_id=project.id, name=name, kind="test", spec={}, fingerprint=name,
        tasks=[TaskSpec(k, TaskKind.RENDER, {}, deps=d) for k, d in keys.items()],
    )


def _task(store: Store, job: int, key: str) -> int:
    return next(x.id for x in store.tasks(job) if x.key == key)


@pytest.fixture
def state_updates(store: Store) -> Iterator[list[str]]:
    """The SQL of every UPDATE of tasks or jobs that sets a state, as sent to the database."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if re.match(r"\s*UPDATE\s+(tasks|jobs)\s+SET\b.*\bstate\s*=", statement, re.I | re.S):
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    yield seen
    event.remove(store.engine, "before_cursor_execute", record)


def test_every_state_update_a_job_life_sends_is_limited_to_legal_sources(
    store: Store, state_updates: list[str]
) -> None:
    job = _job(store, {"a": [], "b": ["a"], "c": []})
    a, b, c = (_task(store, job, k) for k in "abc")
    attempt = store.start_attempt(a, node="n1", worker="w", cores=1)  # job running
    store.fail_attempt(attempt, a, outcome=AttemptOutcome.FAILED, usage=None, message="x",
                       rules=RetryRules(max_attempts=2))  # retried
    attempt = store.start_attempt(a, node="n1", worker="w", cores=1)
    store.finish_attempt(attempt, a, Usage(1.0, 1.0), {})  # b ready
    store.hand_back([(store.start_attempt(b, node="n1", worker="w", cores=1), b)], "stop")
    store.set_job_state(job, JobState.PAUSED, "paused")
    store.set_job_state(job, JobState.RUNNING, "")
    store.start_attempt(c, node="n1", worker="w", cores=1)
    store.recover_interrupted([job])  # c lost, ready again
    store.cancel_job(job)  # unfinished tasks cancelled
    store.restart_job(job, retry_plan(JobState.CANCELLED, []))  # queued again
    store.fail_job(job, "no node", task_id=c)
    store.restart_job(job, resume_plan(JobState.FAILED, [a]))
    for key in "abc":
        task = _task(store, job, key)
        store.finish_attempt(store.start_attempt(task, node="n1", worker="w", cores=1), task,
                             Usage(1.0, 1.0), {})
    assert store.job(job).state is JobState.DONE  # type: ignore[union-attr]
    assert len(state_updates) >= 15, state_updates  # the listener saw the writes
    unchecked = [s for s in state_updates
                 if not re.search(r"\bWHERE\b.*\b(tasks|jobs)\.state\s*=", s, re.S)]
    assert unchecked == []


def test_a_write_from_an_illegal_state_leaves_the_row_as_it_was(store: Store) -> None:
    job = _job(store, {"a": []})
    a = _task(store, job, "a")
    store.finish_attempt(store.start_attempt(a, node="n", worker="w", cores=1), a,
                         Usage(1.0, 1.0), {})
    with store.engine.begin() as conn:  # done -> running is no legal change
        assert move_tasks(conn, TaskState.RUNNING, t.tasks.c.id == a) == 0
        assert move_jobs(conn, JobState.RUNNING, t.jobs.c.id == job) == 0
    assert store.task(a).state is TaskState.DONE  # type: ignore[union-attr]
    assert store.job(job).state is JobState.DONE  # type: ignore[union-attr]


def test_naming_an_illegal_source_fails_before_writing(store: Store) -> None:
    job = _job(store, {"a": []})
    with store.engine.begin() as conn, pytest.raises(IllegalTransition, match="done -> running"):
        move_tasks(conn, TaskState.RUNNING, t.tasks.c.job_id == job, only_from=[TaskState.DONE])
    assert store.task(_task(store, job, "a")).state is TaskState.READY  # type: ignore[union-attr]


def test_a_finish_racing_a_cancel_keeps_the_task_cancelled(store: Store) -> None:
    job = _job(store, {"a": [], "b": ["a"]})
    a = _task(store, job, "a")
    attempt = store.start_attempt(a, node="n", worker="w", cores=1)
    assert store.cancel_job(job) == [a]
    assert store.finish_attempt(attempt, a, Usage(1.0, 1.0), {}) == []
    assert {x.key: x.state for x in store.tasks(job)} == {
        "a": TaskState.CANCELLED, "b": TaskState.CANCELLED}
    assert store.job(job).state is JobState.CANCELLED  # type: ignore[union-attr]

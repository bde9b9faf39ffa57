"""The one place in the store that writes a job's or a task's state.

Every UPDATE of a state is limited to the rows whose current state may legally enter the new
one (the state machine's `wanhe.lifecycle`): a row in any other state is left as it is, so a
stale or racing write (a task cancelled while its attempt finished) cannot move a row
illegally. `only_from` narrows the sources further; naming a source the state machine does not
allow raises `IllegalTransition` before anything is written. Callers that expect one row to
move check it first with `check_job` / `check_task` (the error names the row).

`tests/store/test_state_writes.py` fails on a state written anywhere else in the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, or_, update
from sqlalchemy.engine import Connection

from wanhe.lifecycle import check_job, check_task, job_sources_of, sources_of
from wanhe.model import JobState, TaskState
from wanhe.store import tables as t


def _legal_task_sources(new: TaskState, only_from: Iterable[TaskState]) -> list[str]:
    wanted = list(only_from)
    for source in wanted:
        check_task(source, new)
    return sorted({s.value for s in wanted}) if wanted else sources_of(new)


def _legal_job_sources(new: JobState, only_from: Iterable[JobState]) -> list[str]:
    wanted = list(only_from)
    for source in wanted:
        check_job(source, new)
    return sorted({s.value for s in wanted}) if wanted else job_sources_of(new)


def _in_states(table: Table, states: Sequence[str]) -> ColumnElement[bool]:
    # equalities, not IN: an expanding IN cannot run in an executemany (the batch calls)
    return or_(*(table.c.state == state for state in states))


def move_tasks(
    conn: Connection, new: TaskState, *where: ColumnElement[bool],
    only_from: Iterable[TaskState] = (), rows: Sequence[Mapping[str, Any]] = (),
    **values: Any,
) -> int:
    """Tasks matching `where` and in a legal source state enter `new`, with `values` set too.
    `rows`: one set of bound parameters per row (an executemany; `where` and `values` may
    use `bindparam`). Returns how many rows moved (unreliable for an executemany)."""
    sources = _legal_task_sources(new, only_from)
    statement = (update(t.tasks).where(*where, _in_states(t.tasks, sources))
                 .values(state=new.value, **values))
    result = conn.execute(statement, list(rows)) if rows else conn.execute(statement)
    return int(result.rowcount)


def move_jobs(
    conn: Connection, new: JobState, *where: ColumnElement[bool],
    only_from: Iterable[JobState] = (), **values: Any,
) -> int:
    """Jobs matching `where` and in a legal source state enter `new`, with `values` set too.
    Returns how many moved."""
    sources = _legal_job_sources(new, only_from)
    statement = (update(t.jobs).where(*where, _in_states(t.jobs, sources))
                 .values(state=new.value, **values))
    return int(conn.execute(statement).rowcount)

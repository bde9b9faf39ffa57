"""The store keeps job and task state correct through success, failure, crash and cancel."""

from __future__ import annotations

import pytest

from wanhe.lifecycle import IllegalTransition, RetryRules
from wanhe.model import AttemptOutcome, JobState, TaskKind, TaskSpec, TaskState
from wanhe.store.store import Changes, Store, StoreError, Usage


def chain_job(store: Store, project: str = "p", n_frames: int = 2) -> int:
    """Per frame: two renders -> assemble."""
    proj = store.project_by_name(project) or store.create_project(project)
    tasks: list[TaskSpec] = []
    for f in range(n_frames):
        tasks += [
            TaskSpec(f"{f}/r0", TaskKind.RENDER, {}, frame=f),
            TaskSpec(f"{f}/r1", TaskKind.RENDER, {}, frame=f),
            TaskSpec(f"{f}/asm", TaskKind.ASSEMBLE, {}, deps=[f"{f}/r0", f"{f}/r1"], frame=f),
        ]
    return store.create_job(project_id=proj.id, name="shot", kind="test", spec={},
                            fingerprint="fp", tasks=tasks)


def states(store: Store, job_id: int) -> dict[str, TaskState]:
    return {t.key: t.state for t in store.tasks(job_id)}


def run_ok(store: Store, job_id: int, key: str, wall: float = 2.0) -> list[int]:
    task = next(t for t in store.tasks(job_id) if t.key == key)
    attempt = store.start_attempt(task.id, node="n1", worker="w1", cores=2)
    return store.finish_attempt(attempt, task.id, Usage(wall, 2.0, cpu_s=3.5, peak_rss=10), {})


def test_dependencies_release_assemble_only_when_all_tiles_done(store: Store) -> None:
    job = chain_job(store)
    assert states(store, job)["0/asm"] is TaskState.WAITING
    assert run_ok(store, job, "0/r0") == []
    ready = run_ok(store, job, "0/r1")
    assert [t.key for t in store.tasks(job) if t.id in ready] == ["0/asm"]
    assert store.job(job).state is JobState.RUNNING  # type: ignore[union-attr]
    for key in ("0/asm", "1/r0", "1/r1", "1/asm"):
        run_ok(store, job, key)
    assert store.job(job).state is JobState.DONE  # type: ignore[union-attr]


def test_crash_recovery_marks_open_attempts_lost_and_requeues(store: Store) -> None:
    job = chain_job(store)
    task = store.tasks(job)[0]
    store.start_attempt(task.id, node="n1", worker="w1", cores=1)
    assert store.recover_interrupted() == 1
    assert states(store, job)["0/r0"] is TaskState.READY
    attempts = store.attempts(job)
    assert attempts[0]["outcome"] == AttemptOutcome.LOST.value
    assert attempts[0]["wall_s"] is not None  # the lost attempt is metered too


def test_a_task_is_never_started_twice(store: Store) -> None:
    job = chain_job(store)
    task = store.tasks(job)[0]
    store.start_attempt(task.id, node="n", worker="w", cores=1)
    with pytest.raises(StoreError):
        store.start_attempt(task.id, node="n", worker="w", cores=1)


def test_failure_retry_then_fail(store: Store) -> None:
    """Out of attempts, the task fails and its job with it, in the one transaction that ends
    the attempt: the reason names the task, how it failed, how often and where."""
    job = chain_job(store)
    task = store.tasks(job)[0]
    rules = RetryRules(max_attempts=2)
    a1 = store.start_attempt(task.id, node="n1", worker="w", cores=1)
    first = store.fail_attempt(a1, task.id, outcome=AttemptOutcome.FAILED, usage=None,
                               message="boom", rules=rules)
    assert first.verdict == "retry" and not first.job_failed
    assert states(store, job)["0/r0"] is TaskState.READY
    a2 = store.start_attempt(task.id, node="n1", worker="w", cores=1)
    second = store.fail_attempt(a2, task.id, outcome=AttemptOutcome.TIMEOUT, usage=None,
                                message="timed out (limit 2 s)", rules=rules, label="frame 0")
    assert second.job_failed and second.verdict == "give_up"
    assert second.reason == "frame 0 timed out 2 time(s), last on n1: timed out (limit 2 s)"
    after = states(store, job)
    assert after["0/r0"] is TaskState.FAILED
    assert {s for k, s in after.items() if k != "0/r0"} == {TaskState.CANCELLED}
    failed = store.job(job)
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.message == second.reason
    assert store.node_failures(job) == {"n1": 2}
    assert store.retry_failed(job) == len(after)
    assert states(store, job)["0/r0"] is TaskState.READY
    assert store.task(task.id).faults == 0  # type: ignore[union-attr]  # a fresh start


def test_lost_attempts_do_not_count_against_max_attempts(store: Store) -> None:
    job = chain_job(store)
    task = store.tasks(job)[0]
    rules = RetryRules(max_attempts=1, max_lost=3)
    for _ in range(2):
        attempt = store.start_attempt(task.id, node="n1", worker="w", cores=1)
        end = store.fail_attempt(attempt, task.id, outcome=AttemptOutcome.LOST, usage=None,
                                 message="node died", rules=rules)
        assert end.verdict == "retry"
    attempt = store.start_attempt(task.id, node="n1", worker="w", cores=1)
    end = store.fail_attempt(attempt, task.id, outcome=AttemptOutcome.LOST, usage=None,
                             message="node died", rules=rules)
    assert end.job_failed and "was lost 3 time(s)" in end.reason


def test_illegal_transitions_raise(store: Store) -> None:
    job = chain_job(store)
    store.fail_job(job, "nothing may run it")
    with pytest.raises(IllegalTransition):
        store.cancel_job(job)  # a failed job stays failed until retried
    with pytest.raises(IllegalTransition):
        store.set_job_state(job, JobState.PAUSED)
    store.retry_failed(job)  # failed -> queued is legal
    assert store.job(job).state is JobState.QUEUED  # type: ignore[union-attr]


def test_retry_and_reset_free_exactly_the_tasks_whose_dependencies_are_done(
    store: Store,
) -> None:
    """After a retry or a reset, a task is ready only when all its dependencies are done, and
    finishing the rest still frees it (deps_left counted right)."""
    job = chain_job(store, n_frames=3)
    run_ok(store, job, "0/r0")
    run_ok(store, job, "0/r1")
    run_ok(store, job, "0/asm")
    run_ok(store, job, "1/r0")
    store.cancel_job(job)
    assert store.retry_failed(job) == 5  # 1/r1, 1/asm, 2/r0, 2/r1, 2/asm
    after = states(store, job)
    assert {k for k, v in after.items() if v is TaskState.READY} == {"1/r1", "2/r0", "2/r1"}
    assert after["1/asm"] is after["2/asm"] is TaskState.WAITING
    assert after["0/asm"] is TaskState.DONE
    assert run_ok(store, job, "1/r1")  # frees 1/asm: its other render was done before
    assert states(store, job)["1/asm"] is TaskState.READY

    # frame 0's files went missing: its renders and assembly run again, in order
    ids = {t.key: t.id for t in store.tasks(job)}
    store.reset_tasks(job, [ids["0/r0"], ids["0/r1"], ids["0/asm"]])
    reset = states(store, job)
    assert reset["0/r0"] is reset["0/r1"] is TaskState.READY
    assert reset["0/asm"] is TaskState.WAITING
    run_ok(store, job, "0/r0")
    assert states(store, job)["0/asm"] is TaskState.WAITING
    run_ok(store, job, "0/r1")
    assert states(store, job)["0/asm"] is TaskState.READY


def test_cancel_keeps_usage_of_running_attempt(store: Store) -> None:
    job = chain_job(store)
    task = store.tasks(job)[0]
    attempt = store.start_attempt(task.id, node="n", worker="w", cores=4)
    assert store.cancel_job(job) == [task.id]
    store.fail_attempt(attempt, task.id, outcome=AttemptOutcome.CANCELLED,
                       usage=Usage(5.0, 4.0), message="cancelled")
    assert store.job(job).state is JobState.CANCELLED  # type: ignore[union-attr]
    assert all(s is TaskState.CANCELLED for s in states(store, job).values())
    rows = store.usage_rows()
    assert rows[0]["outcome"] == "cancelled" and rows[0]["core_seconds"] == pytest.approx(20.0)


def test_usage_by_project_counts_cores_times_wall(store: Store) -> None:
    job = chain_job(store, "a")
    run_ok(store, job, "0/r0", wall=3.0)
    other = chain_job(store, "b")
    run_ok(store, other, "0/r0", wall=1.0)
    a = store.project_by_name("a")
    b = store.project_by_name("b")
    assert a and b
    assert store.used_core_seconds() == {a.id: 6.0, b.id: 2.0}
    report = store.usage_rows(project_id=a.id)
    assert len(report) == 1 and report[0]["cpu_seconds"] == pytest.approx(3.5)


def test_job_waiting_on_another_job(store: Store) -> None:
    first = chain_job(store, n_frames=1)
    proj = store.project_by_name("p")
    assert proj
    second = store.create_job(
        project_id=proj.id, name="comp", kind="test", spec={}, fingerprint="x",
        tasks=[TaskSpec("only", TaskKind.NOOP, {})], depends_on=[first],
    )
    assert states(store, second)["only"] is TaskState.WAITING
    for key in ("0/r0", "0/r1", "0/asm"):
        run_ok(store, first, key)
    assert store.release_jobs_waiting_on(first) == [second]
    assert states(store, second)["only"] is TaskState.READY


def test_tokens_are_hashed_and_revocable(store: Store) -> None:
    proj = store.create_project("lionboy", weight=2, budget_core_hours=100)
    token = store.create_token(proj.id, "artist")
    found = store.verify_token(token)
    assert found is not None and found.project_id == proj.id
    assert token not in str(store.tokens())
    assert store.revoke_token(found.id)
    assert store.verify_token(token) is None
    admin = store.create_token(None, "admin")
    assert store.verify_token(admin).project_id is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("name", "weight", "budget"), [("", 1, None), ("x", 0, None),
                                                        ("y", 1, -5)])
def test_bad_projects_are_refused(store: Store, name: str, weight: float,
                                  budget: float | None) -> None:
    with pytest.raises(StoreError):
        store.create_project(name, weight=weight, budget_core_hours=budget)


def test_migrations_are_idempotent(db_url: str) -> None:
    Store(db_url).dispose()
    again = Store(db_url)
    assert again.projects() == []
    again.dispose()


def test_outside_changes_are_stamped_and_the_dispatchers_own_are_not(store: Store) -> None:
    """What the API and other processes change takes a new revision; what the dispatcher does
    itself (start, finish, fail attempts; its budget notes) does not, and costs no stamp."""
    job = chain_job(store)
    start = store.revision()
    assert [c.job.id for c in store.changes_since(start - 1).jobs] == [job]  # the submit
    assert store.changes_since(start).jobs == []
    run_ok(store, job, "0/r0")
    task = next(t for t in store.tasks(job) if t.key == "0/r1")
    attempt = store.start_attempt(task.id, node="n", worker="w", cores=1)
    store.fail_attempt(attempt, task.id, outcome=AttemptOutcome.FAILED, usage=None,
                       message="boom")
    store.set_job_message(job, "budget used up")
    assert store.revision() == start
    tasks_revision = store.changes_since(start - 1).jobs[0].tasks_revision
    store.set_priority(job, 70)
    changed = store.changes_since(start)
    assert changed.revision == start + 1 and [c.job.priority for c in changed.jobs] == [70]
    assert changed.jobs[0].tasks_revision == tasks_revision  # a priority leaves tasks alone
    store.set_job_state(job, JobState.PAUSED, "paused")
    assert store.changes_since(start + 1).jobs[0].job.state is JobState.PAUSED
    store.cancel_job(job)
    cancelled = store.changes_since(start + 2)
    assert cancelled.jobs[0].tasks_revision == cancelled.revision == start + 3
    store.retry_failed(job)
    assert store.changes_since(start + 3).jobs[0].tasks_revision == start + 4
    project = store.project_by_name("p")
    assert project is not None
    store.update_project(project.id, budget_core_hours=5)
    assert [p.budget_core_hours for p in store.changes_since(start + 4).projects] == [5]
    assert store.changes_since(store.revision()) == Changes(store.revision(), [], [])


def test_ready_checksums_and_light_ready_rows(store: Store) -> None:
    job = chain_job(store)
    ready = store.ready_tasks_of([job])
    assert [r.seq for r in ready] == [0, 1, 3, 4]
    assert store.ready_checksums() == {job: (4, sum(r.id for r in ready))}
    assert store.ready_checksums([job + 1]) == {}
    running = ready[0].id
    store.start_attempt(running, node="n", worker="w", cores=1)
    assert store.not_running([running, ready[1].id]) == {ready[1].id}


def test_migrations_match_the_tables(empty_db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from wanhe.store.migrate import upgrade
    from wanhe.store.tables import metadata

    store = Store(empty_db_url, migrate=False)
    upgrade(store.engine)  # the migrations themselves (a new database is created directly)
    try:
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        store.dispose()


def test_a_database_from_before_change_tracking_is_upgraded(empty_db_url: str) -> None:
    from sqlalchemy import text

    from wanhe.store.migrate import downgrade, upgrade

    old = Store(empty_db_url, migrate=False)
    upgrade(old.engine, "0001")
    with old.engine.begin() as conn:
        conn.execute(text("insert into projects (name, weight, created_at) values ('p', 1, 0)"))
    old.dispose()
    store = Store(empty_db_url)
    try:
        assert store.revision() == 0
        job = chain_job(store)
        assert store.changes_since(0).jobs[0].job.id == job
        downgrade(store.engine, "0001")
        upgrade(store.engine)
        assert store.revision() == 0 and store.job(job) is not None
    finally:
        store.dispose()


def test_a_task_whose_attempts_keep_taking_the_service_down_fails(store: Store) -> None:
    """Every restart's recovery counts the loss: at max_lost the task fails with its job,
    rather than being retried for ever."""
    job = chain_job(store)
    task = store.tasks(job)[0]
    rules = RetryRules(max_lost=3)
    for n in range(1, 4):
        store.start_attempt(task.id, node="n1", worker="w", cores=1)
        assert store.recover_interrupted(rules_for=lambda _k, _s: rules) == 1
        after = store.task(task.id)
        assert after is not None and after.losses == n
    failed = store.job(job)
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.message.startswith("task 0/r0 was lost 3 time(s)")
    assert store.task(task.id).state is TaskState.FAILED  # type: ignore[union-attr]

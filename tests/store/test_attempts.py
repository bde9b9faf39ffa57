"""Attempts started and finished many at a time (what the dispatcher does with every idle slot
and every batch of answers): one transaction each, the same states as one at a time."""

from tests.store.test_store import chain_job, states

from wanhe.model import JobState, TaskState
from wanhe.store.store import AttemptFinish, AttemptStart, Store, Usage


def test_many_starts_in_one_call_skip_what_is_not_ready(store: Store) -> None:
    job = chain_job(store)
    by_key = {t.key: t for t in store.tasks(job)}
    started = store.start_attempts([
        AttemptStart(by_key[k].id, node="n1", worker=f"w{i}", cores=2, log_path=f"/l/{k}")
        for i, k in enumerate(("0/r0", "0/r1", "0/asm", "1/r0"))])
    assert sorted(started) == sorted(by_key[k].id for k in ("0/r0", "0/r1", "1/r0"))
    assert len(set(started.values())) == 3  # an attempt each
    assert states(store, job)["0/asm"] is TaskState.WAITING  # not ready: left alone
    assert {k: s for k, s in states(store, job).items() if s is TaskState.RUNNING} == {
        "0/r0": TaskState.RUNNING, "0/r1": TaskState.RUNNING, "1/r0": TaskState.RUNNING}
    assert store.job(job).state is JobState.RUNNING  # type: ignore[union-attr]
    attempts = {a["id"]: a for a in store.attempts(job)}
    first = attempts[started[by_key["0/r1"].id]]
    assert (first["worker"], first["log_path"], first["number"]) == ("w1", "/l/0/r1", 1)
    # started again while running: refused, nothing changes
    assert store.start_attempts([AttemptStart(by_key["0/r0"].id, "n2", "w9", 1)]) == {}


def test_many_finishes_in_one_call_free_dependents_and_settle_the_job(store: Store) -> None:
    job = chain_job(store)
    tasks = store.tasks(job)
    renders = [t for t in tasks if t.kind == "render"]
    started = store.start_attempts([AttemptStart(t.id, "n1", "w", 2) for t in renders])
    ready = store.finish_attempts([
        AttemptFinish(started[t.id], t.id, Usage(1.5, 2.0, cpu_s=2.5), {"file": t.key})
        for t in renders])
    assert sorted(t.key for t in store.tasks_by_ids(ready)) == ["0/asm", "1/asm"]
    assert store.task(renders[0].id).output == {"file": renders[0].key}  # type: ignore[union-attr]
    assert store.job(job).state is JobState.RUNNING  # type: ignore[union-attr]
    assemble = [t for t in tasks if t.kind == "assemble"]
    started = store.start_attempts([AttemptStart(t.id, "n1", "w", 1) for t in assemble])
    assert store.finish_attempts([AttemptFinish(started[t.id], t.id, Usage(1.0, 1.0), {})
                                  for t in assemble]) == []
    assert store.job(job).state is JobState.DONE  # type: ignore[union-attr]
    walls = sorted(a["wall_s"] for a in store.attempts(job))
    assert walls == [1.0, 1.0, 1.5, 1.5, 1.5, 1.5]


def test_a_finish_of_a_cancelled_task_keeps_its_usage_not_its_result(store: Store) -> None:
    job = chain_job(store)
    task = store.tasks(job)[0]
    attempt = store.start_attempts([AttemptStart(task.id, "n1", "w", 2)])[task.id]
    store.cancel_job(job)
    assert store.finish_attempts([AttemptFinish(attempt, task.id, Usage(3.0, 2.0), {})]) == []
    assert store.task(task.id).state is TaskState.CANCELLED  # type: ignore[union-attr]
    assert [a["wall_s"] for a in store.attempts(job)] == [3.0]

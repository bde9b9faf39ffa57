"""Batch statements of fixed text (`wanhe.store.batch`): what the dispatcher's every batch of
starts and ends goes through, on SQLite and PostgreSQL."""

from sqlalchemy import event, func, select

from wanhe.model import TaskKind, TaskSpec
from wanhe.store import tables as t
from wanhe.store.batch import among, insert_returning
from wanhe.store.store import Store


def noop_job(store: Store, n: int) -> list[int]:
    project = store.ensure_project("batch")
    job = store.create_job(project_id=project.id, name="b", kind="noop", spec={},
                           fingerprint=f"b{n}",
                           tasks=[TaskSpec(f"t{i}", TaskKind.NOOP, {}) for i in range(n)])
    return [task.id for task in store.tasks(job)]


def test_among_selects_exactly_the_ids_given_whatever_their_number(store: Store) -> None:
    ids = noop_job(store, 1500)  # above SQLite's old limit of 999 bound parameters
    dialect = store.engine.dialect.name
    texts: set[str] = set()
    event.listen(store.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: texts.add(statement))
    with store.engine.connect() as conn:
        for wanted in (ids[:1], ids[::3], [*ids[:5], *ids[:5]], ids):
            found = conn.execute(
                select(t.tasks.c.id).where(among(t.tasks.c.id, wanted, dialect))).scalars()
            assert sorted(found) == sorted(set(wanted))
    if dialect == "postgresql":  # one text for every batch size: parsed and prepared once
        assert len(texts) == 1


def test_insert_returning_gives_every_row_its_id(store: Store) -> None:
    ids = noop_job(store, 120)
    with store.engine.connect() as conn:
        task_job = {int(r.id): int(r.job_id)
                    for r in conn.execute(select(t.tasks.c.id, t.tasks.c.job_id))}
    project = store.project_by_name("batch")
    assert project is not None
    rows = [{"task_id": i, "job_id": task_job[i], "project_id": project.id, "number": 1,
             "kind": "noop", "node": "n", "worker": f"w{i}", "started_at": 1.0 + i,
             "cores": 2.0, "log_path": f"/l/{i}"} for i in ids]
    with store.engine.begin() as conn:
        made = {int(r.task_id): int(r.id) for r in
                insert_returning(conn, t.attempts, rows, t.attempts.c.id, t.attempts.c.task_id)}
    assert sorted(made) == sorted(ids) and len(set(made.values())) == len(ids)
    with store.engine.connect() as conn:
        back = {r.id: r for r in conn.execute(select(t.attempts))}
        assert conn.execute(select(func.count()).select_from(t.attempts)).scalar_one() == 120
    for task_id, attempt_id in made.items():
        assert (back[attempt_id].task_id, back[attempt_id].worker,
                back[attempt_id].started_at) == (task_id, f"w{task_id}", 1.0 + task_id)

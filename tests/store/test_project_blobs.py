"""Blobs per project: each project's uploads recorded apart; the migration adds the table to a
database of the revision before, keeps its data, and goes back down cleanly."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from wanhe.store.migrate import downgrade, upgrade
from wanhe.store.store import Store, make_engine


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_each_project_sees_only_its_own_blobs(store: Store) -> None:
    a = store.create_project("a").id
    b = store.create_project("b").id
    x, y = sha(b"x"), sha(b"y")
    assert store.blobs_missing(a, [x, y, x]) == [x, y]
    assert store.record_blobs(a, [(x, 1)]) == [x]
    assert store.record_blobs(a, [(x, 1), (y, 1)]) == [y]  # recording twice is harmless
    assert store.blobs_missing(a, [x, y]) == []
    assert store.blobs_missing(b, [y, x]) == [y, x]
    assert store.record_blobs(b, []) == []
    assert store.record_blobs(b, [(x, 1)]) == [x]
    assert store.blobs_missing(b, [x, y]) == [y]


def test_many_hashes_in_one_question(store: Store) -> None:
    """More hashes than one SQL IN (…) may carry."""
    project = store.create_project("big").id
    hashes = [sha(str(i).encode()) for i in range(1500)]
    assert store.record_blobs(project, [(h, 10) for h in hashes[::2]]) == hashes[::2]
    assert store.blobs_missing(project, hashes) == hashes[1::2]


def test_blob_sizes_past_two_gigabytes(store: Store) -> None:
    project = store.create_project("huge").id
    store.record_blobs(project, [(sha(b"big"), 20 * 1024**3)])
    with store.engine.connect() as conn:
        size = conn.execute(sa.text("select size from project_blobs")).scalar_one()
    assert size == 20 * 1024**3


def test_migration_from_the_revision_before(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.execute(sa.text(
                "insert into projects (id, name, weight, created_at) values (1, 'old', 1, 0)"))
        assert "project_blobs" not in sa.inspect(engine).get_table_names()
        upgrade(engine)
        store = Store(empty_db_url)
        try:
            assert [p.name for p in store.projects()] == ["old"]
            assert store.blobs_missing(1, [sha(b"x")]) == [sha(b"x")]  # nobody owns old blobs
            store.record_blobs(1, [(sha(b"x"), 1)])
            assert store.blobs_missing(1, [sha(b"x")]) == []
        finally:
            store.dispose()
        downgrade(engine, "0002")
        assert "project_blobs" not in sa.inspect(engine).get_table_names()
        assert "projects" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_migration_matches_the_table(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from wanhe.store.tables import metadata

    store = Store(db_url)
    try:
        with store.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        store.dispose()
    assert [d for d in differences if "project_blobs" in repr(d)] == []


def test_two_uploads_of_one_file_may_race(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other upload commits between this one's look and its insert: no error, one row."""
    project = store.create_project("race").id
    digest = sha(b"same")
    store.record_blobs(project, [(digest, 4)])
    monkeypatch.setattr(Store, "_owned_blobs", lambda *_: set())  # it looked before that commit
    assert store.record_blobs(project, [(digest, 4)]) == [digest]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("select count(*) from project_blobs")).scalar_one()
    assert rows == 1

"""Queries over the farm's database: the only place that reads or writes job and task state.

SQLite (WAL) by default, PostgreSQL by URL. Every state change is one transaction, so a crash
at any point leaves a state the dispatcher can resume from (`recover_interrupted`).

`Store` is put together from one part per concern: projects, tokens and blobs (`projects`),
jobs and tasks (`jobs`), change tracking for the dispatcher's sync (`sync`), attempts
(`attempts`) and metered usage (`usage`); the rows they return are in `rows`. The names other
modules import from here are re-exported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError

from wanhe.private import private_file, private_folder
from wanhe.store.attempts import AttemptsMixin
from wanhe.store.jobs import JobsMixin
from wanhe.store.kitsu import KitsuMixin
from wanhe.store.projects import ProjectsMixin
from wanhe.store.rows import (
    AttemptEnd,
    AttemptFinish,
    AttemptStart,
    Changes,
    JobRow,
    ProjectRow,
    ReadyTask,
    StoreError,
    TaskRow,
    TokenRow,
    TrackedJob,
    Usage,
    hash_token,
)
from wanhe.store.sync import SyncMixin
from wanhe.store.usage import UsageMixin, core_seconds

__all__ = [
    "AttemptEnd",
    "AttemptFinish",
    "AttemptStart",
    "Changes",
    "DatabaseUnavailable",
    "JobRow",
    "ProjectRow",
    "ReadyTask",
    "Store",
    "StoreError",
    "TaskRow",
    "TokenRow",
    "TrackedJob",
    "Usage",
    "core_seconds",
    "hash_token",
    "make_engine",
]


class DatabaseUnavailable(StoreError):
    """The database URL is malformed or the database cannot be opened: one line saying which
    (never SQLAlchemy's traceback), naming `--db`."""


_URL_HELP = "sqlite:////path/to/wanhe.db or postgresql://user@host/dbname"


def check_db_url(url: str) -> None:
    """DatabaseUnavailable unless `url` is a database URL SQLAlchemy can open a driver for."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DatabaseUnavailable(
            f"--db {url[:200]!r} is not a database URL ({_first_line(exc)}) — give "
            f"{_URL_HELP}"
        ) from None


def _first_line(exc: BaseException) -> str:
    """The cause's own words, without SQLAlchemy's SQL echo and 'Background on this error'."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


def _sqlite_folder(path: str) -> None:
    """A SQLite file's folder: made when its parent exists (~/.wanhe on a first run); a path
    under folders that do not exist is a mistake, not something to create."""
    folder = Path(path).expanduser().parent
    if folder.is_dir():
        return
    if not folder.parent.is_dir():
        raise DatabaseUnavailable(
            f"--db: the folder {folder} does not exist (nor does {folder.parent}) — create it, "
            "or give another sqlite:////path/to/wanhe.db"
        )
    try:
        private_folder(folder)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"--db: cannot create the folder {folder}: {exc.strerror or exc}"
        ) from None


def _private_database(path: Path) -> None:
    """The database file made 0600 before SQLite opens it: SQLite gives its -wal and -shm the
    database's mode, so every project's jobs and token hashes stay the farm's alone."""
    try:
        private_file(path)
        for side in ("-wal", "-shm", "-journal"):
            companion = path.with_name(path.name + side)
            if companion.exists():  # left by an earlier, looser version
                private_file(companion)
    except OSError:  # a read-only or foreign file: SQLite says what is wrong when it opens
        pass


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and its folder created."""
    check_db_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _sqlite_folder(path)
            _private_database(Path(path).expanduser())
        # Pooled connections: a connection per transaction (NullPool) paid SQLite's open, its
        # pragmas and, on the last close, a WAL checkpoint for every task start and end.
        engine = create_engine(url, pool_size=5, max_overflow=20,
                               connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Store(ProjectsMixin, JobsMixin, SyncMixin, AttemptsMixin, UsageMixin, KitsuMixin):
    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            from wanhe.store.migrate import open_schema

            try:
                open_schema(self.engine)
            except (OperationalError, InterfaceError) as exc:
                self.engine.dispose()
                raise DatabaseUnavailable(
                    f"--db: cannot open the database {make_url(url).render_as_string()}: "
                    f"{_first_line(exc)} — check that the server runs and the URL is right"
                ) from None

    def dispose(self) -> None:
        self.engine.dispose()

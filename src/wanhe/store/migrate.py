"""Bring a database to the newest schema (run at every start).

A new, empty database gets the tables directly (`metadata.create_all`, the one row of
`sync_counter`, and Alembic's version stamped at `HEAD`) in one transaction: milliseconds, no
Alembic loaded. A database already at `HEAD` costs one query. Only an older one is migrated
with Alembic (`upgrade`). tests/store/test_schema_open.py checks that a created and a migrated
database have the same schema, and that `HEAD` is the newest migration.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Engine, MetaData, PrimaryKeyConstraint, String, Table, inspect
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).with_name("migrations")

# The newest migration's revision: a new migration moves it (the test says so when it lags).
HEAD = "0011"

# Alembic's own version table, as its MigrationContext defines it.
_version_table = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate with Alembic, whatever the database holds."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def open_schema(engine: Engine) -> str:
    """The database at the newest schema, the quickest way: 'created' (it was empty),
    'current' (already at HEAD) or 'migrated'."""
    with engine.connect() as conn:
        state = _schema_state(conn)
    if state == "current":
        return state
    if state == "empty":
        try:
            create_schema(engine)
            return "created"
        except DBAPIError:
            # Another process made the tables between our look and our create (its
            # transaction held ours back): look again.
            with engine.connect() as conn:
                if _schema_state(conn) == "current":
                    return "current"
    upgrade(engine)
    return "migrated"


def _schema_state(conn: Connection) -> str:
    tables = inspect(conn).get_table_names()
    if not tables:
        return "empty"
    if "alembic_version" in tables:
        versions = conn.execute(_version_table.select()).scalars().all()
        if versions == [HEAD]:
            return "current"
    return "old"


def create_schema(engine: Engine) -> None:
    """Every table of an empty database at once, stamped at HEAD, in one transaction."""
    from wanhe.store.tables import metadata, sync_counter

    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # Python's sqlite3 runs DDL outside a transaction unless one is open: take the
            # write lock first, so the schema appears whole or not at all.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        metadata.create_all(conn, checkfirst=False)
        conn.execute(sync_counter.insert().values(id=1, revision=0))
        _version_table.create(conn)
        conn.execute(_version_table.insert().values(version_num=HEAD))

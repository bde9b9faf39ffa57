"""Opening a database: an empty one gets the schema directly (no Alembic), one at the newest
revision costs a look, an older one is migrated; a created and a migrated database end up with
the same schema (SQLAlchemy's inspection of both, table by table), on SQLite and PostgreSQL."""

from typing import Any

from sqlalchemy import Engine, inspect

from wanhe.store.migrate import HEAD, MIGRATIONS, open_schema, upgrade
from wanhe.store.store import Store, make_engine


def _schema(engine: Engine) -> dict[str, Any]:
    """Every table's columns, keys, indexes and constraints, as plain comparable data."""
    insp = inspect(engine)
    schema: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        schema[table] = {
            # sorted: a migration appends the columns it adds; queries name theirs
            "columns": sorted((c["name"], str(c["type"]), c["nullable"], c.get("default"))
                              for c in insp.get_columns(table)),
            "primary key": insp.get_pk_constraint(table)["constrained_columns"],
            "foreign keys": sorted((tuple(fk["constrained_columns"]), fk["referred_table"],
                                    tuple(fk["referred_columns"]))
                                   for fk in insp.get_foreign_keys(table)),
            "indexes": sorted((ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                              for ix in insp.get_indexes(table)),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
        }
    return schema


def test_a_created_and_a_migrated_database_have_the_same_schema(empty_db_url: str) -> None:
    from wanhe.store.tables import metadata

    engine = make_engine(empty_db_url)
    try:
        assert open_schema(engine) == "created"
        created, created_rows = _schema(engine), _rows(engine)
        with engine.begin() as conn:  # empty again, then every migration from 0001
            metadata.drop_all(conn)
            conn.exec_driver_sql("drop table alembic_version")
        upgrade(engine)
        assert _schema(engine) == created
        assert _rows(engine) == created_rows == [[(1, 0)], [(HEAD,)]]
    finally:
        engine.dispose()


def _rows(engine: Engine) -> list[list[tuple[Any, ...]]]:
    """The rows a new database starts with."""
    with engine.connect() as conn:
        return [[tuple(r) for r in conn.exec_driver_sql(query).all()]
                for query in ("select id, revision from sync_counter",
                              "select version_num from alembic_version")]


def test_opening_again_is_a_look_and_an_old_database_is_migrated(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine, "0002")
        assert open_schema(engine) == "migrated"
        assert open_schema(engine) == "current"
    finally:
        engine.dispose()
    store = Store(empty_db_url)
    assert store.revision() == 0 and store.projects() == []
    store.dispose()


def test_head_is_the_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD, (
        "a new migration: set wanhe.store.migrate.HEAD to its revision")

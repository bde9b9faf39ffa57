"""Statements for a batch whose text does not depend on the batch's size.

`column.in_(ids)` renders one bound parameter per id, so a batch of 90 tasks is a statement
text of its own: SQLAlchemy renders it on every execution and psycopg parses it on the client
(texts over 4 kB are not cached: 7 ms per statement of 100 ids under load). On PostgreSQL
one parameter holding every id keeps the text fixed (`= ANY(array)`; psycopg then prepares it
on the server). SQLite's own parser is fast and SQLAlchemy caches the IN list's compiled
form, so there a plain IN list is cheaper (240 against 340 µs for a select of 4 ids, equal at
100); only a batch too big for SQLite's bound parameters goes as one JSON list
(`IN (SELECT value FROM json_each(?))`). Inserting many rows with RETURNING: PostgreSQL gets
one array per column (`INSERT … SELECT unnest(…)`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    CursorResult,
    Table,
    any_,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.schema import Column

# above this many ids, SQLite gets them as one JSON parameter (its limit is 32,766 parameters)
SQLITE_IN_LIST_MAX = 1000


def among(column: Column[Any] | ColumnClause[Any], ids: Collection[int],
          dialect: str) -> ColumnElement[bool]:
    """`column` is one of `ids` (integer keys): one bound parameter on PostgreSQL (and on
    SQLite for a batch of more than SQLITE_IN_LIST_MAX), `column.in_` otherwise."""
    values = [int(i) for i in ids]
    if dialect == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(BigInteger)))
    if dialect == "sqlite" and len(values) > SQLITE_IN_LIST_MAX:
        listed = func.json_each(bindparam(None, json.dumps(values))).table_valued("value")
        return column.in_(select(listed.c.value))
    return column.in_(values)


def insert_returning(conn: Connection, table: Table, rows: list[dict[str, Any]],
                     *returning: Column[Any]) -> CursorResult[Any]:
    """Insert `rows` (every one with the same keys) and return `returning` of each, in no
    particular order: one statement of fixed text on PostgreSQL (a column of values per
    array), SQLAlchemy's multi-row VALUES elsewhere."""
    if conn.dialect.name != "postgresql":
        return conn.execute(insert(table).returning(*returning), rows)
    names = list(rows[0])
    columns = select(*(
        func.unnest(bindparam(None, [row[name] for row in rows],
                              type_=ARRAY(table.c[name].type)))
        for name in names))
    return conn.execute(insert(table).from_select(names, columns).returning(*returning))

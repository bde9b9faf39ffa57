"""`column IN (ids)` for a batch whose statement text does not depend on the batch's size.

`column.in_(ids)` renders one bound parameter per id, so a batch of 90 tasks is a statement
text of its own: SQLAlchemy renders it on every execution and psycopg parses it on the client
(texts over 4 kB are not cached: 7 ms per statement of 100 ids under load). One parameter
holding every id keeps the text fixed: PostgreSQL's `= ANY(array)` (psycopg then prepares it
on the server), SQLite's `IN (SELECT value FROM json_each(?))`.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import ARRAY, BigInteger, ColumnElement, any_, bindparam, func, select
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.schema import Column


def among(column: Column[Any] | ColumnClause[Any], ids: Collection[int],
          dialect: str) -> ColumnElement[bool]:
    """`column` is one of `ids` (integer keys), as one bound parameter on PostgreSQL and
    SQLite; `column.in_` elsewhere."""
    values = [int(i) for i in ids]
    if dialect == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(BigInteger)))
    if dialect == "sqlite":
        listed = func.json_each(bindparam(None, json.dumps(values))).table_valued("value")
        return column.in_(select(listed.c.value))
    return column.in_(values)

"""Alembic environment: migrate the engine wanhe hands over (see wanhe.store.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from wanhe.store.tables import metadata

config = context.config
url = str(config.get_main_option("sqlalchemy.url"))
engine = config.attributes.get("engine") or create_engine(url)

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()

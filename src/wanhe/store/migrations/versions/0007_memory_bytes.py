"""Memory requests and peaks in 64-bit columns

Revision ID: 0007
Revises: 0006

A task's memory request (`tasks.memory`, bytes) is now set by every job type (a gen task at
1024x1024 asks for several GiB) and an attempt's peak (`attempts.peak_rss`) passes 2 GiB as
soon as a render does: PostgreSQL's 32-bit INTEGER cannot hold either. SQLite's INTEGER is
64-bit already, so nothing changes there (and its tables are not rebuilt).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = (("tasks", "memory"), ("attempts", "peak_rss"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in _COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in _COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())

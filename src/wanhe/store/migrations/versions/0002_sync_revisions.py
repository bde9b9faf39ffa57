"""change tracking for the dispatcher's incremental sync

Revision ID: 0002
Revises: 0001

A one-row `sync_counter` and `revision` columns on projects and jobs (`tasks_revision` on jobs),
so the dispatcher reads only what changed since its last sync. Existing rows start at 0; the
dispatcher's first sync after a start is a full one, so they need no other value.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counter = op.create_table(
        "sync_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(counter, [{"id": 1, "revision": 0}])
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.create_index("ix_projects_revision", ["revision"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("tasks_revision", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.create_index("ix_jobs_revision", ["revision"], unique=False)


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): batch mode would copy `jobs` into a new
    # table, which the tasks' foreign keys forbid.
    op.drop_index("ix_jobs_revision", table_name="jobs")
    op.drop_column("jobs", "tasks_revision")
    op.drop_column("jobs", "revision")
    op.drop_index("ix_projects_revision", table_name="projects")
    op.drop_column("projects", "revision")
    op.drop_table("sync_counter")

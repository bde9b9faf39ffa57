"""attempt counts by cause, GPU budgets

Revision ID: 0004
Revises: 0003

`tasks.faults` counts a task's attempts that failed of its own doing (failed, timed out,
silent, out of memory) and `tasks.losses` those lost with their node, since the task was last
(re)queued by a user; the state machine's retry rules read them in the transaction that ends
an attempt. `projects.budget_gpu_hours` caps a project's metered GPU-hours as
`budget_core_hours` caps its core-hours.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (with a server default), which SQLite does in place: a batch copy of
    # `projects` would trip the foreign keys that point at it.
    op.add_column("tasks", sa.Column("faults", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("tasks", sa.Column("losses", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("projects", sa.Column("budget_gpu_hours", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("projects", "budget_gpu_hours")
    op.drop_column("tasks", "losses")
    op.drop_column("tasks", "faults")

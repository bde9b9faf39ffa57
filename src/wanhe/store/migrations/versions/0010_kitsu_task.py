"""Kitsu publications keep the task they landed on

Revision ID: 0010
Revises: 0009

`kitsu_publications.task_id` is the Kitsu task a publication's revision went to (with
`preview_id`, the revision itself): the job page and `wanhe job ID` link to that task's page
in Kitsu, not only to the production (docs/kitsu.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN, which SQLite does in place (no batch copy of the table)
    op.add_column("kitsu_publications",
                  sa.Column("task_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("kitsu_publications", "task_id")

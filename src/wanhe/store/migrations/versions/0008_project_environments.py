"""Per-project OpenJD queue environments

Revision ID: 0008
Revises: 0007

`project_environments` holds the environment templates (`environment-2023-09`) a project's
OpenJD jobs enter after the farm's queue environments and before their own
(`wanhe project env add PROJECT FILE`), in `position` order.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project_environments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "name", name="uq_project_environments_name"),
    )


def downgrade() -> None:
    op.drop_table("project_environments")

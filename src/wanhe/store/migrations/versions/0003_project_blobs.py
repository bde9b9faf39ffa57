"""blobs per project

Revision ID: 0003
Revises: 0002

`project_blobs` records which project uploaded which blob, so `POST /api/blobs/missing` answers
from the asking project's own uploads and a job may use only its project's blobs. Blobs stored
before this revision belong to no project yet: each project uploads a file once more the first
time it needs it (the bytes are verified and not stored twice).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project_blobs",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("project_id", "sha256"),
    )


def downgrade() -> None:
    op.drop_table("project_blobs")

"""Publishing to Kitsu

Revision ID: 0009
Revises: 0008

`kitsu_links` holds a project's link to its Kitsu production (the URL, the production, and
the credentials encrypted with the service's key); `kitsu_publications` the shot and task a
job publishes to when it finishes, and where that stands (docs/kitsu.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kitsu_links",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("production", sa.String(length=300), nullable=False),
        sa.Column("production_id", sa.String(length=64), nullable=False),
        sa.Column("login", sa.String(length=300), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("linked_by", sa.String(length=200), nullable=False),
        sa.Column("linked_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("project_id"),
    )
    op.create_table(
        "kitsu_publications",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("shot", sa.String(length=300), nullable=False),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("reel_task", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("comment_id", sa.String(length=64), nullable=True),
        sa.Column("preview_id", sa.String(length=64), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column("file", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("published_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index("ix_kitsu_publications_state", "kitsu_publications", ["state", "next_at"])


def downgrade() -> None:
    op.drop_index("ix_kitsu_publications_state", table_name="kitsu_publications")
    op.drop_table("kitsu_publications")
    op.drop_table("kitsu_links")

"""A story reel may create the shots Kitsu lacks

Revision ID: 0011
Revises: 0010

`kitsu_publications.create_shots`: the reel was sent with `--create-shots`, so a storyboard
shot its sequence lacks in Kitsu is created there (frame in/out and count from the reel's
timing) instead of being left out and named (docs/kitsu.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN with a server default, which SQLite does in place
    op.add_column("kitsu_publications", sa.Column("create_shots", sa.Boolean(), nullable=False,
                                                  server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("kitsu_publications", "create_shots")

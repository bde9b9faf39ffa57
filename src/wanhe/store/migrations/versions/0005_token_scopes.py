"""token scopes and expiry, attempts' last sign of life, job resets

Revision ID: 0005
Revises: 0004

`tokens.scope` says what a project token may do: `submit` (read and submit) or `manage`
(also create and revoke the project's tokens). Tokens made before this revision keep what they
could do then (`manage`). `tokens.expires_at` (optional) ends a token; `tokens.last_used_at`
is when it last authenticated a request (to the minute).

`attempts.last_seen_at` is an attempt's last sign of life (a progress heartbeat); an attempt
lost in a service outage is metered up to it (or its log's last write), and the rest of the
outage is `attempts.unbilled_s`. `jobs.reset_at` is when a user last retried the job: the
node blocklist counts only failures since then.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN with server defaults (SQLite does it in place; see 0004).
    op.add_column("tokens", sa.Column("scope", sa.String(20), nullable=False,
                                      server_default="manage"))
    op.add_column("tokens", sa.Column("expires_at", sa.Float(), nullable=True))
    op.add_column("tokens", sa.Column("last_used_at", sa.Float(), nullable=True))
    op.add_column("attempts", sa.Column("last_seen_at", sa.Float(), nullable=True))
    op.add_column("attempts", sa.Column("unbilled_s", sa.Float(), nullable=False,
                                        server_default="0"))
    op.add_column("jobs", sa.Column("reset_at", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "reset_at")
    op.drop_column("attempts", "unbilled_s")
    op.drop_column("attempts", "last_seen_at")
    op.drop_column("tokens", "last_used_at")
    op.drop_column("tokens", "expires_at")
    op.drop_column("tokens", "scope")

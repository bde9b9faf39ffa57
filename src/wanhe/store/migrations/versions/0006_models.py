"""AI models and generation picks

Revision ID: 0006
Revises: 0005

`models` holds the diffusion models a studio registered (`wanhe models add`): a diffusers
folder or a single checkpoint, its pipeline class, size, content hash and the GPU memory it
needs; farm-wide (`project_id` NULL) or for one project. `gen_picks` keeps what people picked
or rejected among a generation job's candidates. `tasks.affinity` names what a worker that
ran the task keeps warm (a model), so the scheduler prefers workers that hold it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # what a worker that ran the task keeps warm (a model): the scheduler prefers such workers
    op.add_column("tasks", sa.Column("affinity", sa.String(length=200), nullable=True))
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("pipeline_class", sa.String(length=100), nullable=False),
        sa.Column("task", sa.String(length=30), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("gpu_memory", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "name", name="uq_models_project_name"),
    )
    op.create_table(
        "gen_picks",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("shot", sa.Integer(), nullable=False),
        sa.Column("candidate", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("job_id", "shot", "candidate"),
    )


def downgrade() -> None:
    op.drop_table("gen_picks")
    op.drop_table("models")
    op.drop_column("tasks", "affinity")

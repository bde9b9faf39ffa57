"""The database schema: projects, tokens, jobs, tasks and their dependencies, attempts, and
which project uploaded which blob.

The database is the source of truth for job and task state; Ray is only the executor.
Migrations live in `store/migrations` (Alembic) and must match these tables.

Change tracking: every change the dispatcher did not make itself (submit, cancel, pause,
priority, retry, a project's weight or budget, from the API or from another process) takes the
next value of the one-row `sync_counter` in its transaction and stamps it on the rows it
changed (`revision`; `tasks_revision` too when the job's ready tasks may differ). The row lock
on the counter orders those commits, so the dispatcher reads only rows whose revision is above
the counter value it last read, and nothing at all while the counter stands still.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# byte counts pass 2 GiB: 64-bit (SQLite's INTEGER already is; migration 0007)
BYTES = BigInteger().with_variant(Integer(), "sqlite")

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("weight", Float, nullable=False, default=1.0),
    Column("budget_core_hours", Float, nullable=True),
    Column("budget_gpu_hours", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("revision", BigInteger, nullable=False, default=0, server_default="0"),
    Index("ix_projects_revision", "revision"),
)

sync_counter = Table(
    "sync_counter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one row
    Column("revision", BigInteger, nullable=False, default=0),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=True),  # NULL: admin
    Column("name", String(200), nullable=False, default=""),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    # submit (read + submit) or manage (also mint and revoke the project's tokens)
    Column("scope", String(20), nullable=False, default="submit", server_default="manage"),
    Column("expires_at", Float, nullable=True),
    Column("last_used_at", Float, nullable=True),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(300), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("spec", Text, nullable=False),  # JSON of the job type's spec
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("priority", Integer, nullable=False, default=50),
    Column("submitter", String(200), nullable=False, default=""),
    Column("message", Text, nullable=False, default=""),
    Column("depends_on", Text, nullable=False, default="[]"),  # JSON list of job ids
    Column("work_dir", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("revision", BigInteger, nullable=False, default=0, server_default="0"),
    Column("tasks_revision", BigInteger, nullable=False, default=0, server_default="0"),
    Column("reset_at", Float, nullable=True),  # last retried by a user: blocklist counts anew
    Index("ix_jobs_project_state", "project_id", "state"),
    Index("ix_jobs_fingerprint", "fingerprint"),
    Index("ix_jobs_revision", "revision"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("frame", Integer, nullable=True),
    Column("tile", Integer, nullable=True),
    Column("chunk", Integer, nullable=True),
    Column("state", String(20), nullable=False),
    Column("payload", Text, nullable=False),
    Column("deps_left", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    # own-fault and lost attempts since the task was last (re)queued: the retry rules' inputs
    Column("faults", Integer, nullable=False, default=0, server_default="0"),
    Column("losses", Integer, nullable=False, default=0, server_default="0"),
    Column("cpus", Float, nullable=False, default=1.0),
    Column("memory", BYTES, nullable=False, default=0),  # bytes the task reserves
    Column("gpus", Float, nullable=False, default=0.0),
    Column("affinity", String(200), nullable=True),  # what a worker that ran it keeps warm
    Column("output", Text, nullable=False, default="{}"),
    Column("error", Text, nullable=False, default=""),
    Column("progress", Float, nullable=False, default=0.0),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    UniqueConstraint("job_id", "key", name="uq_tasks_job_key"),
    Index("ix_tasks_job_state", "job_id", "state"),
    Index("ix_tasks_state", "state"),
)

task_deps = Table(
    "task_deps",
    metadata,
    Column("task_id", Integer, ForeignKey("tasks.id"), primary_key=True),
    Column("dep_id", Integer, ForeignKey("tasks.id"), primary_key=True),
    Index("ix_task_deps_dep", "dep_id"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, ForeignKey("tasks.id"), nullable=False),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("node", String(200), nullable=False, default=""),
    Column("worker", String(200), nullable=False, default=""),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("wall_s", Float, nullable=True),
    Column("cores", Float, nullable=False, default=1.0),
    Column("cpu_s", Float, nullable=True),
    Column("peak_rss", BYTES, nullable=True),
    Column("gpu_s", Float, nullable=False, default=0.0),
    Column("outcome", String(20), nullable=True),  # NULL while running
    Column("message", Text, nullable=False, default=""),
    Column("log_path", Text, nullable=False, default=""),
    # last sign of life (heartbeat); a lost attempt is metered up to it, the rest is unbilled
    Column("last_seen_at", Float, nullable=True),
    Column("unbilled_s", Float, nullable=False, default=0.0, server_default="0"),
    Index("ix_attempts_job", "job_id"),
    Index("ix_attempts_project_ended", "project_id", "ended_at"),
    Index("ix_attempts_open", "ended_at"),
)

# Which project uploaded which blob. The bytes are stored once (content addressing), but a
# project sees, and its jobs may use, only the blobs it uploaded itself: asking whether a hash
# is stored must not tell one project what another has.
project_blobs = Table(
    "project_blobs",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

# AI generation (wanhe.ai): models a studio registered (a diffusers folder or a single
# checkpoint), farm-wide (project_id NULL) or for one project; and people's picks among a
# generation job's candidates.
# OpenJD queue environments of one project (`wanhe project env add`): environment templates
# entered after the farm's (`wanhe serve --queue-env`) and before a job's own, in `position` order
project_environments = Table(
    "project_environments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("document", Text, nullable=False),  # the environment template, as JSON
    Column("created_at", Float, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_project_environments_name"),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=True),  # NULL: farm-wide
    Column("name", String(100), nullable=False),
    Column("path", Text, nullable=False),
    Column("format", String(20), nullable=False),  # "diffusers" or "checkpoint"
    Column("pipeline_class", String(100), nullable=False),
    Column("task", String(30), nullable=False),  # text-to-image, image-to-video, text-to-video
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("gpu_memory", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_models_project_name"),
)

gen_picks = Table(
    "gen_picks",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id"), primary_key=True),
    Column("shot", Integer, primary_key=True),
    Column("candidate", Integer, primary_key=True),
    Column("verdict", String(20), nullable=False),  # "picked" or "rejected"
    Column("by", String(200), nullable=False, default=""),
    Column("at", Float, nullable=False),
)

# Publishing to a production tracker (wanhe.publish, docs/kitsu.md): a project's link to its
# Kitsu production (the credentials encrypted with the service's key, never returned), and
# per job the shot and task it publishes to, with where that stands (one row per job: the
# publish lands at most once).
kitsu_links = Table(
    "kitsu_links",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
    Column("url", Text, nullable=False),
    Column("production", String(300), nullable=False),
    Column("production_id", String(64), nullable=False),
    Column("login", String(300), nullable=False, default=""),  # who publishes ("" for a token)
    Column("secret", Text, nullable=False),  # Fernet ciphertext of the credentials
    Column("linked_by", String(200), nullable=False, default=""),
    Column("linked_at", Float, nullable=False),
)

kitsu_publications = Table(
    "kitsu_publications",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id"), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("shot", String(300), nullable=False),  # SEQUENCE/SHOT
    Column("task", String(200), nullable=False),  # the task type's name
    Column("reel_task", String(200), nullable=True),  # a story reel: the sequence's task type
    # waiting (for the job to end, or for the next try) / published / failed / skipped
    Column("state", String(20), nullable=False),
    Column("tries", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=False, default=0.0),
    Column("message", Text, nullable=False, default=""),
    Column("comment_id", String(64), nullable=True),
    Column("preview_id", String(64), nullable=True),
    Column("revision", Integer, nullable=True),
    Column("file", Text, nullable=True),  # the output published, relative to the job's
    Column("created_at", Float, nullable=False),
    Column("published_at", Float, nullable=True),
    # the Kitsu task the revision went to: the job page links to it (0010)
    Column("task_id", String(64), nullable=True),
    # a story reel: create the shots Kitsu lacks, not leave them out (0011)
    Column("create_shots", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_kitsu_publications_state", "state", "next_at"),
)

"""The jobs store's tables as SQLAlchemy Core objects for queries. The schema itself is made by
the Alembic revision serving/migrations/versions/0002_jobs.py (one migration history for the
whole service database); a change there is mirrored here. Times are Unix seconds (floats for
heartbeats), so that every dialect compares them alike."""

import sqlalchemy as sa

metadata = sa.MetaData()

# `seq` orders rows (newest first in lists); `id` is what the API shows (file-..., ftjob-...).
files = sa.Table(
    "jobs_files", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("project", sa.String(200), nullable=False, index=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("status_details", sa.Text, nullable=True),
    sa.Column("validation", sa.JSON, nullable=True),  # {kind, rows, problems: [{line, code, message}]}
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

jobs = sa.Table(
    "jobs_jobs", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("project", sa.String(200), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("control", sa.String(20), nullable=True),  # "cancel" | "pause" asked of a running job
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("suffix", sa.String(64), nullable=True),
    sa.Column("training_file", sa.String(64), nullable=False),
    sa.Column("validation_file", sa.String(64), nullable=True),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=True),
    sa.Column("hyperparameters", sa.JSON, nullable=False),
    sa.Column("method", sa.JSON, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),  # the tunesmith RunConfig the worker trains
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("fine_tuned_model", sa.Text, nullable=True),
    sa.Column("trained_tokens", sa.BigInteger, nullable=True),
    sa.Column("result_files", sa.JSON, nullable=False),
    sa.Column("estimated_finish", sa.BigInteger, nullable=True),
    sa.Column("worker", sa.String(200), nullable=True),
    sa.Column("heartbeat", sa.Float, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=True),
    sa.Column("finished_at", sa.BigInteger, nullable=True),
)

events = sa.Table(
    "jobs_events", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("job_id", sa.String(64), nullable=False, index=True),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("type", sa.String(10), nullable=False),  # "message" | "metrics"
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", sa.JSON, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

checkpoints = sa.Table(
    "jobs_checkpoints", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("job_id", sa.String(64), nullable=False, index=True),
    sa.Column("step_number", sa.Integer, nullable=False),
    sa.Column("model", sa.Text, nullable=False),  # fine_tuned_model_checkpoint
    sa.Column("path", sa.Text, nullable=False),  # relative to the storage root
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("job_id", "step_number", name="uq_jobs_checkpoints_step"),
)

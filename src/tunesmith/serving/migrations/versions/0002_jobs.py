"""Fine-tuning jobs API: files, jobs, events, checkpoints (tunesmith.jobs.tables mirrors this).

Revision ID: 0002_jobs
Revises: 0001_registry
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_jobs"
down_revision = "0001_registry"
branch_labels = None
depends_on = None


def _key():
    return [sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("id", sa.String(64), nullable=False, unique=True)]


def upgrade() -> None:
    op.create_table(
        "jobs_files", *_key(),
        sa.Column("project", sa.String(200), nullable=False, index=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_details", sa.Text, nullable=True),
        sa.Column("validation", sa.JSON, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "jobs_jobs", *_key(),
        sa.Column("project", sa.String(200), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("control", sa.String(20), nullable=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("suffix", sa.String(64), nullable=True),
        sa.Column("training_file", sa.String(64), nullable=False),
        sa.Column("validation_file", sa.String(64), nullable=True),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=True),
        sa.Column("hyperparameters", sa.JSON, nullable=False),
        sa.Column("method", sa.JSON, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
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
    op.create_table(
        "jobs_events", *_key(),
        sa.Column("job_id", sa.String(64), nullable=False, index=True),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("type", sa.String(10), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "jobs_checkpoints", *_key(),
        sa.Column("job_id", sa.String(64), nullable=False, index=True),
        sa.Column("step_number", sa.Integer, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("job_id", "step_number", name="uq_jobs_checkpoints_step"),
    )


def downgrade() -> None:
    for table in ("jobs_checkpoints", "jobs_events", "jobs_jobs", "jobs_files"):
        op.drop_table(table)

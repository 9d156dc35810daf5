"""The registry's tables as SQLAlchemy Core objects for queries. The schema itself is made by the
Alembic revisions in migrations/versions; a change there is mirrored here."""

import sqlalchemy as sa

metadata = sa.MetaData()

versions = sa.Table(
    "registry_versions", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("run_path", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("figures", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# What NAME (target "") or NAME@alias points to, as an append-only history: the current state
# is the newest row not rolled back, so a rollback steps back through earlier states.
pointers = sa.Table(
    "registry_pointers", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("target", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("split", sa.JSON, nullable=True),  # {"3": 90, "4": 10} (percent); version is then NULL
    sa.Column("rolled_back", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

generation = sa.Table(
    "registry_generation", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
)

requests = sa.Table(
    "registry_requests", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("subject", sa.String(200), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

completions = sa.Table(
    "registry_completions", metadata,
    sa.Column("completion_id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("subject", sa.String(200), nullable=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
)

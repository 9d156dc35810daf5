"""The jobs store: the service database (tunesmith.serving.database, one migration history) and a
storage root shared by the server and every worker: blobs/ holds uploaded files by content hash,
runs/ a run directory per job."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import sqlalchemy as sa

from tunesmith.jobs import tables
from tunesmith.serving.database import open_engine, write_transaction

DEFAULT_PROJECT = "default"  # the one project of a server without API keys


def now() -> int:
    return int(time.time())


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


class Store:
    def __init__(self, url: str | None = None, storage: str | Path | None = None):
        from tunesmith.models.resolve import tunesmith_home

        self.engine = open_engine(url)
        self.url = self.engine.url.render_as_string(hide_password=False)
        self.storage = Path(storage or tunesmith_home() / "jobs").expanduser().resolve()
        (self.storage / "blobs").mkdir(parents=True, exist_ok=True)
        (self.storage / "runs").mkdir(parents=True, exist_ok=True)

    # --- paths (never built from a user's file name: only from hashes and our own ids) ------------
    def blob(self, sha256: str) -> Path:
        return self.storage / "blobs" / sha256[:2] / f"{sha256}.jsonl"

    def run_dir(self, job_id: str) -> Path:
        return self.storage / "runs" / job_id

    # --- transactions ----------------------------------------------------------------------------
    def read(self):
        return self.engine.connect()

    def write(self):
        """A transaction that writes (BEGIN IMMEDIATE on SQLite: writers queue instead of failing)."""
        return write_transaction(self.engine)

    def one(self, query) -> dict | None:
        with self.read() as connection:
            row = connection.execute(query).mappings().first()
        return dict(row) if row else None


def page(connection, table: sa.Table, where, after: str | None, limit: int, newest_first: bool = True,
         ) -> tuple[list[dict], bool]:
    """One page of `table` rows matching `where`, after the row with id `after` in list order:
    ({object: list} data, has_more). Rows are ordered by their insertion sequence."""
    query = sa.select(table).where(where)
    if after:
        seq = connection.execute(sa.select(table.c.seq).where(table.c.id == after).where(where)).scalar()
        if seq is not None:
            query = query.where(table.c.seq < seq if newest_first else table.c.seq > seq)
    query = query.order_by(table.c.seq.desc() if newest_first else table.c.seq.asc()).limit(limit + 1)
    rows = [dict(r) for r in connection.execute(query).mappings()]
    return rows[:limit], len(rows) > limit


def as_list(data: list[dict], has_more: bool) -> dict:
    return {"object": "list", "data": data, "has_more": has_more,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}


__all__ = ["DEFAULT_PROJECT", "Store", "as_list", "new_id", "now", "page", "tables"]

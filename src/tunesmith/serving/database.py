"""The service database: an SQLAlchemy engine on any URL (an SQLite file under $TUNESMITH_HOME by
default, PostgreSQL for several replicas), brought to the newest schema by Alembic on open."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool

from tunesmith.errors import TunesmithError
from tunesmith.models.resolve import tunesmith_home

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x7475_6E65  # any fixed number: the advisory lock that serializes migrations


class DatabaseError(TunesmithError):
    """A database URL that cannot be parsed or opened."""


def default_url() -> str:
    """$TUNESMITH_DB_URL, else the SQLite file registry.db under $TUNESMITH_HOME."""
    return os.environ.get("TUNESMITH_DB_URL") or f"sqlite:///{tunesmith_home() / 'registry.db'}"


def open_engine(url: str | None = None) -> Engine:
    """An engine on `url` (default: default_url()) with every migration applied."""
    url = url or default_url()
    try:
        parsed = make_url(url)
        shown = parsed.render_as_string(hide_password=True)
        engine = _sqlite_engine(parsed) if parsed.get_backend_name() == "sqlite" else sa.create_engine(
            parsed, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as err:
        raise DatabaseError(f"database URL {url!r} is not usable: {err}; "
                            "give e.g. sqlite:///path/registry.db or postgresql+psycopg://user@host/db") from err
    from alembic.util import CommandError

    try:
        upgrade(engine)
    except sa.exc.OperationalError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
        raise DatabaseError(f"cannot open database {shown}: {reason}") from err
    except CommandError as err:  # e.g. a schema revision from a newer tunesmith
        raise DatabaseError(f"database {shown} has a schema this tunesmith does not know ({err}); "
                            "upgrade tunesmith, or use another --db") from err
    return engine


def _sqlite_engine(url) -> Engine:
    args = {"check_same_thread": False, "timeout": 30}  # the server calls in from many threads
    memory = url.database in (None, "", ":memory:")
    if memory:  # one connection shared, or every connection would see its own empty database
        engine = sa.create_engine(url, connect_args=args, poolclass=StaticPool)
    else:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args=args)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        # The sqlite3 driver opens transactions itself and skips DDL, so a migration would not be
        # atomic; take over (SQLAlchemy's documented recipe) and emit BEGIN in _begin below.
        dbapi_connection.isolation_level = None
        if not memory:  # WAL: readers (replicas polling generation) and the writer never block each other
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a commit costs no fsync

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """A transaction that writes. On SQLite it takes the write lock at its start (BEGIN IMMEDIATE),
    so writers from several processes queue on the busy timeout instead of failing halfway."""
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        with connection.begin():
            yield connection


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the package's Alembic migrations up to `revision`; a database already there is unchanged."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with write_transaction(engine) as connection:
        if engine.dialect.name == "postgresql":  # replicas starting together migrate one at a time
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()

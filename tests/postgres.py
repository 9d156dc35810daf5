"""A throwaway PostgreSQL cluster per test session (recipe: ../shared/design/SERVICES.md).

`initdb` as the postgres user on a free port, started with pg_ctl, stopped and removed in the
finalizer. Where PostgreSQL is not installed or will not start, the tests that need it are
skipped locally and fail in CI (CI=true). Use with `from postgres import postgres_db, postgres_server`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL needed in CI: {reason}")
    pytest.skip(reason)


def _bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.insert(0, found.stdout.strip())
    return next((Path(c) for c in candidates if (Path(c) / "initdb").is_file()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """URL of the postgres database on a fresh cluster: postgresql+psycopg://postgres@127.0.0.1:PORT/postgres."""
    bindir = _bindir()
    if bindir is None:
        _unavailable("PostgreSQL is not installed (apt-get install -y postgresql)")
    # initdb refuses to run as root: run the cluster as the postgres user, on a folder it owns
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    workdir = Path(tempfile.mkdtemp(prefix="tunesmith-pg."))
    if as_postgres:
        shutil.chown(workdir, user="postgres")
    port, data = _free_port(), workdir / "data"
    pg_ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*pg_ctl, "-l", str(workdir / "log"), "-w", "start", "-o",
                        f"-k {workdir} -c listen_addresses=127.0.0.1 -p {port}"],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
        log = (workdir / "log").read_text()[-500:] if (workdir / "log").is_file() else ""
        shutil.rmtree(workdir, ignore_errors=True)
        _unavailable(f"could not start PostgreSQL: {err} {getattr(err, 'stderr', b'') or b''!r} {log}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server):
    """URL of a new empty database on the session's cluster, one per test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    plain = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"

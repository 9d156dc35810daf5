"""The model registry on real finished runs: versions with eval figures, sticky splits, rollback,
aliases, a second replica on the same database, Alembic migrations, the CLI, and PostgreSQL."""

import json
import random
import shutil
from collections import Counter

import pytest
import sqlalchemy as sa

from finished_runs import finished_runs  # noqa: F401  (fixture)
from inproc import exit_code
from postgres import postgres_db, postgres_server  # noqa: F401  (fixtures)
from tunesmith.serving.database import DatabaseError, current_revision, open_engine, upgrade
from tunesmith.serving.registry import ModelRegistry, RegistryError, pick_version

SUBJECTS = [f"user-{i}" for i in range(200)]


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def two_versions(url, finished_runs):  # noqa: F811
    registry = ModelRegistry(url)
    assert registry.add("chat", finished_runs[0]) == 1
    assert registry.add("chat", finished_runs[1], note="higher lr") == 2
    return registry


def test_add_records_eval_figures_and_the_first_version_serves(two_versions, finished_runs):  # noqa: F811
    shown = two_versions.show("chat")
    for entry, run in zip(shown["versions"], finished_runs):
        results = json.loads((run / "results.json").read_text())
        assert entry["figures"]["eval_loss"] == pytest.approx(results["eval_after"]["eval_loss"])
        assert entry["run_path"] == str(run.resolve())
    assert shown["versions"][1]["note"] == "higher lr"
    assert {two_versions.route("chat", s).version for s in SUBJECTS} == {1}  # v2 waits to be promoted or split in
    assert two_versions.route("chat").run_path == str(finished_runs[0].resolve())
    assert two_versions.list() == [{"name": "chat", "versions": 2, "latest": 2, "serves": {"version": 1},
                                    "aliases": {}}]


def test_add_refuses_a_run_that_is_not_finished(url, finished_runs, tmp_path):  # noqa: F811
    registry = ModelRegistry(url)
    running = tmp_path / "running"
    shutil.copytree(finished_runs[0], running)
    (running / "STATUS").write_text("running\n")
    with pytest.raises(RegistryError, match="not a finished run \\(STATUS: running\\)"):
        registry.add("chat", running)
    with pytest.raises(RegistryError, match="not a run directory"):
        registry.add("chat", tmp_path)
    with pytest.raises(RegistryError, match="name 'a@b' is not valid"):
        registry.add("a@b", finished_runs[0])
    assert registry.list() == []


def test_split_keeps_each_subject_on_one_version_and_shares_by_weight(two_versions, url):
    two_versions.split("chat", {1: 50, 2: 50})
    first = {s: two_versions.route("chat", s).version for s in SUBJECTS}
    replica = ModelRegistry(url)  # another server process on the same database
    assert all(replica.route("chat", s).version == v for s, v in first.items())
    assert all(two_versions.route("chat", s).version == v for s, v in first.items())
    counts = Counter(first.values())
    assert 80 <= counts[1] <= 120 and counts[1] + counts[2] == 200
    # moving to 80/20 only moves subjects from v2 to v1, never the other way
    two_versions.split("chat", {"v1": 80, "v2": 20})
    moved = {s: two_versions.route("chat", s).version for s in SUBJECTS}
    assert all(moved[s] == 1 for s, v in first.items() if v == 1)
    assert 140 <= Counter(moved.values())[1] <= 180


def test_without_a_subject_versions_are_drawn_by_weight():
    random.seed(0)
    drawn = Counter(pick_version({1: 90, 2: 10}, "chat", None) for _ in range(2000))
    assert 1700 <= drawn[1] <= 1900 and drawn[1] + drawn[2] == 2000
    assert pick_version({1: 0, 2: 100}, "chat", "anyone") == 2


def test_rollback_moves_all_traffic_at_once_and_replicas_see_it(two_versions, url):
    replica = ModelRegistry(url)
    two_versions.split("chat", {1: 50, 2: 50})
    seen = replica.generation()
    assert {replica.route("chat", s).version for s in SUBJECTS} == {1, 2}
    assert two_versions.rollback("chat") == {"version": 1}
    assert replica.generation() > seen
    assert {replica.route("chat", s).version for s in SUBJECTS} == {1}
    assert replica.show("chat")["split"] is None
    with pytest.raises(RegistryError, match="no earlier state to roll back to"):
        two_versions.rollback("chat")


def test_aliases_and_explicit_versions(two_versions):
    two_versions.alias("chat", "prod", 2)
    assert two_versions.route("chat@prod").version == 2
    assert two_versions.route("chat@v1").version == 1
    assert two_versions.route("chat").version == 1  # the bare name is unaffected by an alias
    two_versions.alias("chat", "prod", "v1")
    assert two_versions.route("chat@prod", "someone").version == 1
    assert two_versions.rollback("chat@prod") == {"version": 2}
    assert two_versions.show("chat")["aliases"] == {"prod": 2}
    assert two_versions.references() == ["chat", "chat@prod", "chat@v1", "chat@v2"]
    for missing in ("chat@staging", "chat@v9", "nobody", "nobody@prod"):
        assert two_versions.route(missing) is None
    with pytest.raises(RegistryError, match="has no version 7"):
        two_versions.alias("chat", "prod", 7)
    with pytest.raises(RegistryError, match="looks like a version number"):
        two_versions.alias("chat", "v2", 1)
    with pytest.raises(RegistryError, match="no model named 'nobody'"):
        two_versions.alias("nobody", "prod", 1)


def test_generation_bumps_on_every_change_only(two_versions):
    values = [two_versions.generation()]
    for change in (lambda r: r.alias("chat", "prod", 2), lambda r: r.split("chat", {1: 90, 2: 10}),
                   lambda r: r.promote("chat", 2), lambda r: r.rollback("chat")):
        change(two_versions)
        values.append(two_versions.generation())
    assert values == sorted(set(values))  # strictly increasing
    two_versions.record_request("chat", 1, 200, 12.5, "user-1")
    two_versions.record_completion("cmpl-1", "chat", 1, "user-1")
    two_versions.record_feedback("cmpl-1", 1)
    assert two_versions.generation() == values[-1]


def test_default_database_is_a_sqlite_file_in_tunesmith_home(finished_runs, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TUNESMITH_DB_URL", raising=False)
    ModelRegistry().add("chat", finished_runs[0])
    assert (tmp_path / "home" / "registry.db").is_file()
    assert ModelRegistry(f"sqlite:///{tmp_path / 'home' / 'registry.db'}").route("chat").version == 1


def test_bad_splits_and_feedback_are_refused(two_versions):
    for weights in ({1: 60, 2: 60}, {1: 110, 2: -10}, {}, {1: 50, 3: 50}):
        with pytest.raises(RegistryError):
            two_versions.split("chat", weights)
    with pytest.raises(RegistryError, match="unknown completion id 'nope'"):
        two_versions.record_feedback("nope", 1)
    two_versions.record_completion("cmpl-1", "chat", 1)
    with pytest.raises(RegistryError, match="already recorded"):
        two_versions.record_completion("cmpl-1", "chat", 2)
    with pytest.raises(RegistryError, match="not a finite number"):
        two_versions.record_feedback("cmpl-1", float("nan"))


def test_migrations_on_a_fresh_and_an_existing_database_are_idempotent(url, finished_runs):  # noqa: F811
    head = _head()
    engine = open_engine(url)
    assert current_revision(engine) == head
    tables = set(sa.inspect(engine).get_table_names())
    assert {"registry_versions", "registry_pointers", "registry_generation", "alembic_version"} <= tables
    ModelRegistry(url).add("chat", finished_runs[0])
    upgrade(engine)  # again, on a database that is already at head and holds data
    again = ModelRegistry(url)
    assert current_revision(again.engine) == head
    assert again.route("chat").version == 1 and again.generation() == 1
    with engine.begin() as connection:  # as if a newer tunesmith had migrated this database further
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(DatabaseError, match="has a schema this tunesmith does not know"):
        ModelRegistry(url)


def test_replicas_adding_at_once_get_distinct_versions(url, finished_runs):  # noqa: F811
    from concurrent.futures import ThreadPoolExecutor

    replicas = [ModelRegistry(url), ModelRegistry(url)]
    with ThreadPoolExecutor(4) as pool:
        added = list(pool.map(lambda i: replicas[i % 2].add("chat", finished_runs[i % 2]), range(8)))
    assert sorted(added) == list(range(1, 9))
    assert [v["version"] for v in replicas[0].show("chat")["versions"]] == list(range(1, 9))
    assert replicas[1].generation() == 8


def test_cli_drives_the_library_and_errors_are_one_line(url, finished_runs, capsys):  # noqa: F811
    assert exit_code("registry", "add", "chat", str(finished_runs[0]), "--db", url) == 0
    assert exit_code("registry", "add", "chat", str(finished_runs[1]), "--db", url) == 0
    assert exit_code("registry", "split", "chat", "v1=90", "v2=10", "--db", url) == 0
    assert exit_code("registry", "alias", "chat@prod", "2", "--db", url) == 0
    capsys.readouterr()
    assert exit_code("registry", "show", "chat", "--json", "--db", url) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["split"] == {"1": 90.0, "2": 10.0} and shown["aliases"] == {"prod": 2}
    assert exit_code("registry", "rollback", "chat", "--db", url) == 0
    assert ModelRegistry(url).route("chat", "anyone").version == 1
    capsys.readouterr()
    assert exit_code("registry", "split", "chat", "v1=90", "v2=20", "--db", url) == 2
    assert exit_code("registry", "alias", "chat", "2", "--db", url) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == ["error: split v1=90 v2=20 for 'chat': weights are percentages >= 0 that sum to 100, e.g. "
                   "v3=90 v4=10", "error: 'chat': write NAME@ALIAS, e.g. chat@prod"]
    assert exit_code("registry", "list", "--db", "nosuchdialect://x") == 2


def test_postgresql_by_url(postgres_db, finished_runs, tmp_path):  # noqa: F811
    registry, replica = ModelRegistry(postgres_db), ModelRegistry(postgres_db)
    diverged = shutil.copytree(finished_runs[0], tmp_path / "diverged")
    results = json.loads((diverged / "results.json").read_text())
    results["eval_after"]["eval_loss"] = float("nan")  # a run whose loss blew up still registers
    (diverged / "results.json").write_text(json.dumps(results))
    assert registry.add("other", diverged) == 1
    assert replica.show("other")["versions"][0]["figures"]["eval_loss"] is None
    assert registry.add("chat", finished_runs[0]) == 1 and registry.add("chat", finished_runs[1]) == 2
    registry.split("chat", {1: 50, 2: 50})
    subjects = SUBJECTS[:50]
    versions = {s: replica.route("chat", s).version for s in subjects}
    assert versions == {s: registry.route("chat", s).version for s in subjects}
    assert set(versions.values()) == {1, 2}
    before = replica.generation()
    registry.rollback("chat")
    assert replica.generation() > before
    assert {replica.route("chat", s).version for s in subjects} == {1}
    registry.record_completion("cmpl-1", "chat", 1)
    registry.record_feedback("cmpl-1", 0.5)
    assert replica.feedback_of("chat") == [(1, 0.5)]
    upgrade(registry.engine)  # idempotent on PostgreSQL too
    assert current_revision(registry.engine) == _head()


def _head() -> str:
    """The newest revision of the one migration history (registry, then jobs ...)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from tunesmith.serving.database import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()

"""A hostile user's data files and options, through the CLI in-process: each gets exit code 2
(1 for validate's findings), one line naming the file, line, key or option, no traceback,
and every file that existed before is byte-identical afterwards."""

import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from inproc import cli
from tunesmith.utils.io import read_jsonl

CHAT = {"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]}
ALPACA = [{"instruction": f"say {w}", "output": w} for w in ("one", "two", "three", "four")]


def _snapshot(root: Path) -> dict[str, str]:
    """sha256 of every regular file under root (pipes are skipped: reading one would block)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if stat.S_ISREG(path.lstat().st_mode):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out



def refused(capsys, tmp_path, *args, code: int = 2) -> str:
    """Run a command that must fail; returns its error line (files all untouched)."""
    before = _snapshot(tmp_path)
    got, out, err = cli(capsys, *args)
    assert got == code, f"exit {got}, expected {code}: {out}{err}"
    assert _snapshot(tmp_path) == before, "a failed command changed or created files"
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if code == 2:
        assert len(errors) == 1, err
        return errors[0]
    return err


@pytest.fixture
def corpus(tmp_path) -> dict[str, Path]:
    """Malformed and awkward files, made fresh for each test."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = {}

    def write(name: str, data: str | bytes) -> None:
        path = tmp_path / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        files[name] = path

    pq.write_table(pa.table({"instruction": ["a", "b"], "output": ["c", "d"]}), tmp_path / "good.parquet")
    whole = (tmp_path / "good.parquet").read_bytes()
    write("truncated.parquet", whole[: len(whole) // 2])
    write("random.parquet", os.urandom(4096))
    write("text.parquet", "".join(json.dumps(r) + "\n" for r in ALPACA))
    write("deep.jsonl", json.dumps(CHAT) + "\n" + '{"a": ' + "[" * 50_000 + "]" * 50_000 + "}\n")
    write("deep.json", "[" + "[" * 50_000 + "]" * 50_000 + "]")
    write("null_user.jsonl", json.dumps(CHAT) + "\n" + json.dumps(
        {"messages": [{"role": "user", "content": None}, {"role": "assistant", "content": "4"}]}) + "\n")
    write("null_answer.jsonl", json.dumps(
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": None}]}) + "\n")
    write("bom.csv", "\ufeffinstruction,output\nsay hi,hi\n")
    write("bom.jsonl", "\ufeff" + "".join(json.dumps(r) + "\n" for r in ALPACA))
    write("rows.jsonl", "".join(json.dumps(r) + "\n" for r in ALPACA))
    write("binary.yaml", os.urandom(512) + b"\xff\xfe")
    write("recursive.yaml", "data: &x [*x]\n")
    write("malformed.yaml", "model:\n  name_or_path: [unclosed\ntrain:\n  epochs: 2\n")
    write("deep.yaml", "a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefg", "bcdefgh"))
    write("laughs.yaml", laughs)
    write("empty.yaml", "")
    write("comments.yaml", "# nothing here yet\n")
    (tmp_path / "folder.jsonl").mkdir()
    files["folder.jsonl"] = tmp_path / "folder.jsonl"
    return files


# --- unreadable data files ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["truncated.parquet", "random.parquet", "text.parquet"])
@pytest.mark.parametrize("command", [["validate"], ["convert", "--to", "openai", "-o", "out.jsonl"],
                                     ["dedup", "-o", "out.jsonl"], ["clean", "-o", "out.jsonl"]])
def test_broken_parquet_is_one_line(capsys, tmp_path, corpus, name, command):
    args = ["data", command[0], corpus[name], *[str(tmp_path / a) if a.endswith(".jsonl") else a for a in command[1:]]]
    line = refused(capsys, tmp_path, *args)
    assert name in line and "not a readable parquet file" in line


def test_broken_parquet_in_training_data(tmp_path, corpus):
    from tunesmith.data.load import load_records
    from tunesmith.errors import DataError

    with pytest.raises(DataError, match="truncated.parquet: not a readable parquet"):
        load_records([str(corpus["truncated.parquet"])])


def test_deeply_nested_json(capsys, tmp_path, corpus):
    found = refused(capsys, tmp_path, "data", "validate", corpus["deep.jsonl"], code=1)
    assert "deep.jsonl:2" in found and "nested more than" in found  # listed as line 2's problem
    for name in ("deep.jsonl", "deep.json"):
        line = refused(capsys, tmp_path, "data", "convert", corpus[name], "--to", "alpaca", "-o", tmp_path / "o.jsonl")
        assert f"{name}:" in line and "nested more than" in line
        line = refused(capsys, tmp_path, "data", "dedup", corpus[name], "-o", tmp_path / "o.jsonl")
        assert f"{name}:" in line and "nested" in line


def test_directory_given_as_data_file(capsys, tmp_path, corpus):
    for command in (["validate"], ["convert", "--to", "openai", "-o", tmp_path / "o.jsonl"]):
        line = refused(capsys, tmp_path, "data", command[0], corpus["folder.jsonl"], *command[1:])
        assert "folder.jsonl is a directory" in line and "not found" not in line


def test_byte_order_mark_is_accepted_and_kept_out_of_headers(capsys, tmp_path, corpus):
    code, _, err = cli(capsys, "data", "clean", corpus["bom.csv"], "-o", tmp_path / "a.csv")
    assert code == 0, err
    assert (tmp_path / "a.csv").read_text(encoding="utf-8").splitlines()[0] == "instruction,output"
    code, _, err = cli(capsys, "data", "dedup", corpus["bom.jsonl"], "-o", tmp_path / "b.jsonl")
    assert code == 0, err
    assert read_jsonl(tmp_path / "b.jsonl")[0] == ALPACA[0]
    assert cli(capsys, "data", "validate", corpus["bom.jsonl"])[0] == 0


# --- bad rows: validate and training agree ---------------------------------------------
@pytest.mark.parametrize("name, line", [("null_user.jsonl", 2), ("null_answer.jsonl", 1)])
def test_null_content_is_a_bad_row_for_validate_and_training(capsys, tmp_path, corpus, name, line):
    from tunesmith.data.load import load_records
    from tunesmith.errors import DataError

    found = refused(capsys, tmp_path, "data", "validate", corpus[name], code=1)
    assert f"{name}:{line}" in found and "is empty" in found
    with pytest.raises(DataError, match=rf"{name}:{line}: message \d \((user|assistant)\) is empty"):
        load_records([str(corpus[name])])
    records, report = load_records([str(corpus[name])], on_bad_row="skip")
    assert [b.origin for b in report.bad_rows] == [f"{corpus[name]}:{line}"]


# --- YAML wherever it is read -----------------------------------------------------------
YAML_CASES = [("binary.yaml", "not UTF-8"), ("recursive.yaml", "refers to itself"),
              ("malformed.yaml", "invalid YAML"), ("deep.yaml", "nest"),
              ("laughs.yaml", "aliases expand")]


@pytest.mark.parametrize("name, problem", YAML_CASES)
def test_bad_yaml_config_glossary_and_synonyms(capsys, tmp_path, corpus, name, problem):
    rows, out = corpus["rows.jsonl"], tmp_path / "o.jsonl"
    commands = [["config", "check", corpus[name]],
                ["data", "validate", rows, "--config", corpus[name]],
                ["data", "clean", rows, "--glossary", corpus[name], "-o", out],
                ["data", "augment", rows, "--synonyms", corpus[name], "--ops", "synonym", "-o", out]]
    for args in commands:
        line = refused(capsys, tmp_path, *args)
        assert name in line and problem in line, line
    if name == "malformed.yaml":
        assert "malformed.yaml:" in line  # with its line number


def test_bad_yaml_sweep_space_and_saved_run_config(tmp_path, corpus):
    from tunesmith.errors import ConfigError
    from tunesmith.sweep.space import load_space

    for name, problem in YAML_CASES:
        with pytest.raises(ConfigError, match=problem):
            load_space(corpus[name])


@pytest.mark.parametrize("override", ["train.epochs=&x [*x]", "train.epochs=[unclosed"])
def test_bad_yaml_in_overrides_and_set(capsys, tmp_path, corpus, override):
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  train: {corpus['rows.jsonl']}\n")
    assert "override" in refused(capsys, tmp_path, "config", "check", config, override)
    line = refused(capsys, tmp_path, "data", "clean", corpus["rows.jsonl"], "-o", tmp_path / "o.jsonl",
                   "--set", "glossary=" + override.split("=", 1)[1])
    assert "--set glossary=" in line


@pytest.mark.parametrize("name", ["empty.yaml", "comments.yaml"])
def test_empty_config_fails(capsys, tmp_path, corpus, name):
    line = refused(capsys, tmp_path, "config", "check", corpus[name])
    assert name in line and "empty" in line


# --- numeric options --------------------------------------------------------------------
BAD_OPTIONS = [
    (["dedup", "--threshold", "nan"], "threshold"),
    (["dedup", "--threshold", "inf"], "threshold"),
    (["dedup", "--num-perm", "0"], "num_perm"),
    (["dedup", "--shingle-size", "-2"], "shingle_size"),
    (["clean", "--min-chars", "-1"], "min_chars"),
    (["clean", "--max-repeat-ratio", "nan"], "max_repeat_ratio"),
    (["clean", "--min-letter-ratio", "-inf"], "min_letter_ratio"),
    (["decontaminate", "--against", "{rows}", "--n", "0"], "n"),
    (["augment", "--alpha", "nan"], "alpha"),
    (["augment", "--copies", "0"], "copies"),
    (["balance", "--label", "output", "--target", "one=nan"], "target"),
    (["balance", "--label", "output", "--target", "one=abc"], "target"),
    (["balance", "--label", "output", "--target", "one=-1"], "target"),
]


@pytest.mark.parametrize("args, option", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_numeric_step_options(capsys, tmp_path, corpus, args, option):
    rows = str(corpus["rows.jsonl"])
    args = [rows if a == "{rows}" else a for a in args]
    line = refused(capsys, tmp_path, "data", args[0], rows, "-o", tmp_path / "o.jsonl", *args[1:])
    assert re.search(rf"\b{option}[.:]", line), line


@pytest.mark.parametrize("ratios", ["0.5,nan", "0.5,abc", "7:-1:2", "inf:1", "0.5,0.2"])
def test_bad_split_ratios(capsys, tmp_path, corpus, ratios):
    line = refused(capsys, tmp_path, "data", "split", corpus["rows.jsonl"], "-o", tmp_path / "parts",
                   "--ratios", ratios)
    assert "ratios" in line


@pytest.mark.parametrize("weight", ["nan", "-1", "abc", "inf"])
def test_bad_mix_weights_and_totals(capsys, tmp_path, corpus, weight):
    line = refused(capsys, tmp_path, "data", "mix", f"{corpus['rows.jsonl']}:{weight}", "-o", tmp_path / "o.jsonl")
    assert "weights" in line
    line = refused(capsys, tmp_path, "data", "mix", f"{corpus['rows.jsonl']}:1", "--total", "0",
                   "-o", tmp_path / "o.jsonl")
    assert "total" in line


@pytest.mark.parametrize("override, key", [
    ("train.epochs=.nan", "train.epochs"), ("train.epochs=.inf", "train.epochs"),
    ("train.batch_size=0", "train.batch_size"), ("train.batch_size=.inf", "train.batch_size"),
    ("train.learning_rate=-1e-4", "train.learning_rate"), ("train.max_steps=-7", "train.max_steps"),
    ("data.cutoff_len=-1", "data.cutoff_len"), ("data.eval_ratio=.nan", "data.eval_ratio"),
    ("train.warmup_ratio=.inf", "train.warmup_ratio"), ("eval.batch_size=0", "eval.batch_size"),
    ("data.pipeline=[{step: dedup, threshold: .nan}]", "data.pipeline.0.threshold"),
    ("train.seed=-1", "train.seed"),
])
def test_bad_numbers_in_run_config(capsys, tmp_path, corpus, override, key):
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  train: {corpus['rows.jsonl']}\n")
    assert key in refused(capsys, tmp_path, "config", "check", config, override)


@pytest.mark.parametrize("cutoff", ["-5", "0"])
def test_validate_cutoff_must_be_positive(capsys, tmp_path, corpus, cutoff):
    line = refused(capsys, tmp_path, "data", "validate", corpus["rows.jsonl"], "--cutoff", cutoff)
    assert "cutoff" in line and f"got {cutoff}" in line


def test_dedup_fields_no_row_has(capsys, tmp_path, corpus):
    for method in ("exact", "minhash"):
        line = refused(capsys, tmp_path, "data", "dedup", corpus["rows.jsonl"], "--fields", "instrucion",
                       "--method", method, "-o", tmp_path / "o.jsonl")
        assert "'instrucion'" in line and "instruction" in line  # names the typo and the real fields
    code, _, _ = cli(capsys, "data", "dedup", corpus["rows.jsonl"], "--fields", "instruction",
                     "-o", tmp_path / "o.jsonl")
    assert code == 0 and len(read_jsonl(tmp_path / "o.jsonl")) == len(ALPACA)


# --- data loss ----------------------------------------------------------------------------
def test_split_into_the_inputs_own_folder_is_refused(capsys, tmp_path, monkeypatch):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in ALPACA))
    monkeypatch.chdir(tmp_path)
    for spelling in (".", str(tmp_path), f"../{tmp_path.name}", f"{tmp_path}/./"):
        line = refused(capsys, tmp_path, "data", "split", "train.jsonl", "-o", spelling, "--ratios", "0.5,0.5")
        assert "train.jsonl" in line and "never rewrites its inputs" in line
    (tmp_path / "link.jsonl").symlink_to(train)
    os.link(train, tmp_path / "hard.jsonl")
    for other in ("link.jsonl", "hard.jsonl"):
        line = refused(capsys, tmp_path, "data", "convert", other, "--to", "openai", "-o", "train.jsonl")
        assert "never rewrites its inputs" in line
    line = refused(capsys, tmp_path, "data", "validate", "train.jsonl", "--histogram", "link.jsonl")
    assert "never rewrites" in line
    line = refused(capsys, tmp_path, "data", "dedup", "train.jsonl", "-o", "x.jsonl", "--report", "./train.jsonl")
    assert "never rewrites" in line


def test_glossary_and_eval_files_are_inputs_too(capsys, tmp_path, corpus):
    glossary = tmp_path / "g.json"
    glossary.write_text('{"hi": "hello"}')
    line = refused(capsys, tmp_path, "data", "clean", corpus["rows.jsonl"], "--glossary", glossary, "-o", glossary)
    assert "never rewrites" in line
    line = refused(capsys, tmp_path, "data", "decontaminate", corpus["rows.jsonl"], "--against", corpus["bom.jsonl"],
                   "-o", corpus["bom.jsonl"])
    assert "never rewrites" in line


def test_sqlite_is_opened_read_only(capsys, tmp_path):
    db = tmp_path / "clinic.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table visits (q text, a text)")
        conn.executemany("insert into visits values (?, ?)", [("q1", "a1"), ("q2", "a2")])
    conn.close()
    for query in ("WITH gone AS (SELECT 1) DELETE FROM visits RETURNING *",
                  "WITH x AS (SELECT 1) UPDATE visits SET a = 'hacked' RETURNING *"):
        line = refused(capsys, tmp_path, "data", "convert", f"{db}::{query}", "--to", "openai",
                       "-o", tmp_path / "o.jsonl", "--instruction", "{{ q }}", "--answer", "{{ a }}")
        assert "clinic.sqlite" in line and "readonly" in line
    with sqlite3.connect(db) as conn:
        assert conn.execute("select * from visits").fetchall() == [("q1", "a1"), ("q2", "a2")]
    conn.close()


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL 15 cluster on a free loopback port (../shared/design/SERVICES.md)."""
    pg_bin = Path("/usr/lib/postgresql/15/bin")
    if not (pg_bin / "initdb").is_file() or os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL 15 (run as root) is needed for this test")
        pytest.skip("PostgreSQL 15 is not installed")
    folder = tempfile.mkdtemp(prefix="pg.")
    shutil.chown(folder, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, pg_bin / "initdb", "-D", f"{folder}/data", "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*as_postgres, pg_bin / "pg_ctl", "-D", f"{folder}/data", "-l", f"{folder}/log", "-w", "start",
                    "-o", f"-k {folder} -c listen_addresses=127.0.0.1 -p {port}"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, pg_bin / "pg_ctl", "-D", f"{folder}/data", "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_queries_run_in_a_read_only_transaction(capsys, tmp_path, postgres_url):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("create table visits (q text, a text)")
        conn.exec_driver_sql("insert into visits values ('q1', 'a1'), ('q2', 'a2')")
    out = tmp_path / "o.jsonl"
    for query in ("WITH gone AS (DELETE FROM visits RETURNING *) SELECT * FROM gone",
                  "WITH x AS (SELECT 1) DELETE FROM visits RETURNING *"):
        line = refused(capsys, tmp_path, "data", "convert", f"{postgres_url}::{query}", "--to", "openai",
                       "-o", out, "--instruction", "{{ q }}", "--answer", "{{ a }}")
        assert "read-only transaction" in line
    code, _, err = cli(capsys, "data", "convert", f"{postgres_url}::visits", "--to", "openai", "-o", out,
                       "--instruction", "{{ q }}", "--answer", "{{ a }}")
    assert code == 0, err
    assert [r["messages"][0]["content"] for r in read_jsonl(out)] == ["q1", "q2"]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from visits").scalar() == 2
    engine.dispose()


def test_histogram_to_a_named_pipe_is_written_into_the_pipe(capsys, tmp_path, corpus):
    fifo = tmp_path / "hist.fifo"
    os.mkfifo(fifo)
    received = bytearray()

    def read_pipe():
        with open(fifo, "rb") as f:
            received.extend(f.read())

    reader = threading.Thread(target=read_pipe)
    reader.start()
    code, _, err = cli(capsys, "data", "validate", corpus["rows.jsonl"], "--histogram", fifo)
    reader.join(timeout=30)
    assert code == 0, err
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still a pipe, not a plain file
    assert bytes(received[:4]) == b"\x89PNG"


def test_outputs_to_dev_null_leave_the_device_alone(capsys, tmp_path, corpus):
    before = os.stat("/dev/null")
    assert cli(capsys, "data", "validate", corpus["rows.jsonl"], "--histogram", "/dev/null")[0] == 0
    assert cli(capsys, "data", "convert", corpus["rows.jsonl"], "--to", "openai", "-o", "/dev/null")[0] == 0
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino


def test_dash_writes_rows_to_stdout(capsys, tmp_path, corpus):
    code, out, _ = cli(capsys, "data", "convert", corpus["rows.jsonl"], "--to", "openai", "-o", "-")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["messages"][1]["content"] for r in rows] == [r["output"] for r in ALPACA]
    assert not (tmp_path / "-").exists()


def test_validate_histogram_goes_beside_the_report_never_into_the_cwd(capsys, tmp_path, corpus, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert cli(capsys, "data", "validate", corpus["rows.jsonl"])[0] == 0
    assert list(work.iterdir()) == []
    report = tmp_path / "reports" / "rows.json"
    assert cli(capsys, "data", "validate", corpus["rows.jsonl"], "--report", report)[0] == 0
    assert (tmp_path / "reports" / "rows.tokens.png").read_bytes()[:4] == b"\x89PNG"
    assert list(work.iterdir()) == []


def test_output_that_is_a_directory(capsys, tmp_path, corpus):
    (tmp_path / "out.jsonl").mkdir()
    line = refused(capsys, tmp_path, "data", "convert", corpus["rows.jsonl"], "--to", "openai", "-o",
                   tmp_path / "out.jsonl")
    assert "out.jsonl is a directory" in line
    line = refused(capsys, tmp_path, "data", "split", corpus["rows.jsonl"], "-o", corpus["bom.csv"])
    assert "cannot write" in line and "bom.csv" in line  # a folder that is a file


# --- security -----------------------------------------------------------------------------
@pytest.mark.parametrize("template", ["{{ ''.__class__.__mro__[1].__subclasses__() }}",
                                      "{{ cycler.__init__.__globals__.os }}", "{{ q.__class__ }}"])
def test_templates_are_sandboxed(capsys, tmp_path, corpus, template):
    line = refused(capsys, tmp_path, "data", "convert", corpus["bom.csv"], "--to", "openai",
                   "-o", tmp_path / "o.jsonl", "--instruction", template, "--answer", "x")
    assert "template instruction" in line


def test_tokenized_cache_never_imports_a_module_named_in_the_cache(tmp_path, monkeypatch):
    from tunesmith.data import cache
    from tunesmith.data.tokenize import TokenizeReport

    marker = tmp_path / "imported"
    (tmp_path / "planted_module.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\nclass Report:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))  # a cache of its own, even under a set home
    assert cache.save("k1", [{"input_ids": [1, 2]}], TokenizeReport(rows=1), {})
    assert cache.load("k1")[1] == TokenizeReport(rows=1)
    meta_file = cache.cache_dir() / "k1" / "report.json"
    meta = json.loads(meta_file.read_text())
    meta["class"] = "planted_module:Report"
    meta_file.write_text(json.dumps(meta))
    assert cache.load("k1") is None
    assert not marker.exists() and "planted_module" not in sys.modules

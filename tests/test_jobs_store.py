"""The jobs API without training (fast): upload validation with line numbers, a job failed by
its training file, limits (413, active jobs), refusals in OpenAI's error shape, tenancy of
files and jobs, state changes, and the atomic claim of N workers on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import httpx
import openai
import pytest
import sqlalchemy as sa

from inproc import exit_code
from jobs_helpers import ROWS, jsonl, running_server
from postgres import postgres_db, postgres_server  # noqa: F401  (fixtures)


@pytest.fixture
def store(tmp_path):
    from tunesmith.jobs.store import Store

    return Store(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path / "storage")


@pytest.fixture
def served(store):
    """A server without workers: jobs stay queued."""
    from tunesmith.jobs.tenancy import ProjectKeys

    keys = ProjectKeys.load(["a:key-a", "b:key-b"])
    with running_server(store, keys, workers=0, max_upload=20_000, max_active=2) as (url, _):
        yield url


def _client(url, key="key-a"):
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


BAD = [ROWS[0], ROWS[1], {"messages": [{"role": "user", "content": "no answer"}]}, "not json", ROWS[2]]


def _bad_file() -> bytes:
    return "".join((r if isinstance(r, str) else __import__("json").dumps(r)) + "\n" for r in BAD).encode()


def test_an_invalid_training_file_fails_its_job_with_the_problem_and_its_line(served, tiny_model_dir):
    client = _client(served)
    uploaded = client.files.create(file=("bad.jsonl", _bad_file()), purpose="fine-tune")
    assert uploaded.status == "error"
    assert "line 3: `messages` has no assistant message" in uploaded.status_details
    assert "line 4: not valid JSON" in uploaded.status_details
    job = client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=uploaded.id)
    assert job.status == "failed"
    assert job.error.code == "missing_assistant_message" and job.error.param == "training_file"
    assert "line 3" in job.error.message and uploaded.id in job.error.message
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id)]
    assert any(m.startswith("Job failed") and "line 3" in m for m in messages)


def test_a_dpo_job_needs_preference_rows_and_reinforcement_is_refused(served, tiny_model_dir):
    client = _client(served)
    chat = client.files.create(file=("chat.jsonl", jsonl(ROWS)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=chat.id,
                                         method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}})
    assert job.status == "failed" and job.error.code == "invalid_file_format"
    assert job.method.dpo.hyperparameters.beta == 0.2
    with pytest.raises(openai.BadRequestError) as refused:
        client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=chat.id,
                                       method={"type": "reinforcement"})
    assert refused.value.code == "unsupported_method" and refused.value.param == "method.type"


def test_refusals_are_4xx_openai_errors_that_the_client_does_not_retry(served, tiny_model_dir):
    client = _client(served)
    chat = client.files.create(file=("chat.jsonl", jsonl(ROWS)), purpose="fine-tune")
    cases = [
        (dict(model="no-such-model", training_file=chat.id), "model"),
        (dict(model=str(tiny_model_dir), training_file=chat.id, hyperparameters={"n_epochs": -1}),
         "hyperparameters.n_epochs"),
        (dict(model=str(tiny_model_dir), training_file=chat.id, suffix="a:b"), "suffix"),
        (dict(model=str(tiny_model_dir), training_file=chat.id, extra_body={"tunesmith": {"train": {"packin": 1}}}),
         "tunesmith"),
        (dict(model=str(tiny_model_dir), training_file=chat.id, extra_body={"tunesmith": {"output": {"dir": "/"}}}),
         "tunesmith"),
    ]
    for kwargs, param in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            client.fine_tuning.jobs.create(**kwargs)
        assert refused.value.param == param, kwargs
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file="file-nope")
    too_big = httpx.post(f"{served}/v1/files", headers={"Authorization": "Bearer key-a"},
                         files={"file": ("big.jsonl", b"x" * 30_000)}, data={"purpose": "fine-tune"})
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"
    assert not [f for f in client.files.list() if f.filename == "big.jsonl"]  # nothing of it was kept
    # the concurrent-jobs limit: two active jobs, the third refused with 429 and no retry
    first = client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=chat.id)
    client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=chat.id)
    with pytest.raises(openai.RateLimitError) as limited:
        client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=chat.id)
    assert limited.value.response.headers["x-should-retry"] == "false"
    assert client.fine_tuning.jobs.cancel(first.id).status == "cancelled"  # a queued job cancels at once
    client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=chat.id)  # room again
    with pytest.raises(openai.BadRequestError) as again:
        client.fine_tuning.jobs.cancel(first.id)
    assert again.value.code == "invalid_job_state"


def test_files_are_stored_once_listed_per_project_and_deleted(served, store):
    a, b = _client(served), _client(served, "key-b")
    one = a.files.create(file=("../../etc/passwd", jsonl(ROWS)), purpose="fine-tune")
    two = a.files.create(file=("copy.jsonl", jsonl(ROWS)), purpose="fine-tune")
    theirs = b.files.create(file=("b.jsonl", jsonl(ROWS)), purpose="fine-tune")
    assert one.filename == "passwd"  # a name is kept as a label, never used as a path
    assert len(list((store.storage / "blobs").rglob("*.jsonl"))) == 1  # content-addressed: stored once
    assert [f.id for f in a.files.list()] == [two.id, one.id]
    assert [f.id for f in a.files.list(order="asc", limit=1)] == [one.id, two.id]  # auto-paging, oldest first
    assert [f.id for f in b.files.list()] == [theirs.id]
    with pytest.raises(openai.BadRequestError):
        a.files.create(file=("x.jsonl", jsonl(ROWS)), purpose="assistants")
    assert a.files.delete(one.id).deleted and a.files.delete(two.id).deleted
    assert len(list((store.storage / "blobs").rglob("*.jsonl"))) == 1  # B's handle keeps the content
    assert b.files.content(theirs.id).content == jsonl(ROWS)
    with pytest.raises(openai.NotFoundError):
        a.files.retrieve(one.id)


def test_pause_resume_and_cancel_of_a_queued_job(served, tiny_model_dir):
    client = _client(served)
    chat = client.files.create(file=("chat.jsonl", jsonl(ROWS)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=chat.id)
    assert client.fine_tuning.jobs.pause(job.id).status == "paused"
    assert client.fine_tuning.jobs.resume(job.id).status == "queued"
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.resume(job.id)
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"


def _queue(store, n: int) -> list[str]:
    from tunesmith.jobs import files, jobs

    upload = files.upload(store, "p", "t.jsonl", "fine-tune", jsonl(ROWS))
    return [jobs.create(store, "p", {"model": "smollm2-135m-instruct", "training_file": upload["id"]})["id"]
            for _ in range(n)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_claims_take_each_job_exactly_once(backend, tmp_path, request):
    from tunesmith.jobs.store import Store
    from tunesmith.jobs.worker import claim

    url = f"sqlite:///{tmp_path / 'q.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_db")
    store = Store(url, tmp_path / "storage")
    queued = _queue(store, 6)
    taken, barrier = [], threading.Barrier(8)

    def grab(i):
        barrier.wait()
        while (job := claim(Store(url, tmp_path / "storage"), f"w{i}")) is not None:
            taken.append((job["id"], f"w{i}"))

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(j for j, _ in taken) == sorted(queued)  # each exactly once


def test_a_job_without_heartbeat_is_queued_again(store):
    from tunesmith.jobs.tables import jobs
    from tunesmith.jobs.worker import claim, requeue_stale

    job_id = _queue(store, 1)[0]
    assert claim(store, "w1")["status"] == "running"
    assert requeue_stale(store, stale_after=60) == []  # fresh heartbeat: kept
    with store.write() as connection:
        connection.execute(jobs.update().values(heartbeat=sa.literal(0.0)))
    assert requeue_stale(store, stale_after=60) == [job_id]
    again = claim(store, "w2")
    assert again["id"] == job_id and again["attempts"] == 2 and again["worker"] == "w2"


def test_the_jobs_cli_mirrors_the_api(served, tiny_model_dir, tmp_path, capsys):
    import json

    where = ["--base-url", f"{served}/v1", "--api-key", "key-a"]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(_bad_file())
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl(ROWS))
    capsys.readouterr()
    assert exit_code("jobs", "create", str(good), "--model", str(tiny_model_dir), "--suffix", "cli", "--n-epochs", "2",
                "--tunesmith", '{"train": {"max_steps": 3}}', *where) == 0
    queued_id, status = capsys.readouterr().out.split()
    assert queued_id.startswith("ftjob-") and status == "queued"
    assert exit_code("jobs", "show", queued_id, *where) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["hyperparameters"]["n_epochs"] == 2 and shown["user_provided_suffix"] == "cli"
    assert exit_code("jobs", "cancel", queued_id, *where) == 0
    assert capsys.readouterr().out.split() == [queued_id, "cancelled"]
    assert exit_code("jobs", "create", str(bad), "--model", str(tiny_model_dir), *where) == 2
    assert "line 3: `messages` has no assistant message" in capsys.readouterr().err  # refused at upload
    uploaded = _client(served).files.create(file=("bad.jsonl", _bad_file()), purpose="fine-tune")
    assert exit_code("jobs", "create", uploaded.id, "--model", str(tiny_model_dir), "--json", *where) == 0
    failed = json.loads(capsys.readouterr().out)
    assert failed["status"] == "failed" and failed["error"]["code"] == "missing_assistant_message"
    assert exit_code("jobs", "events", failed["id"], "--follow", *where) == 0  # ends: the job has ended
    lines = capsys.readouterr().out.splitlines()
    assert "Created fine-tuning job" in lines[0] and "Job failed" in lines[-1] and "line 3" in lines[-1]
    assert exit_code("jobs", "list", "--json", *where) == 0
    assert [j["id"] for j in json.loads(capsys.readouterr().out)] == [failed["id"], queued_id]
    assert exit_code("jobs", "show", "ftjob-nope", *where) == 2
    assert "404 not_found: no fine-tuning job with id 'ftjob-nope'" in capsys.readouterr().err


def test_upload_checks_follow_openais_rules_and_accept_tunesmiths_formats():
    import json

    from tunesmith.jobs.validate import check_lines

    def codes(*rows):
        lines = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()
        return [(p["line"], p["code"]) for p in check_lines(lines).problems]

    user = {"role": "user", "content": "hi"}
    assert codes(ROWS[0], {"messages": [user, {"role": "robot", "content": "x"}]}) == [(2, "invalid_role")]
    assert codes({"messages": [user, {"role": "assistant"}]}) == [(1, "missing_content")]
    assert codes({"messages": []}, "[1]", {"prompt": "x"}) == [(1, "missing_messages"), (2, "invalid_row"),
                                                              (3, "unknown_format")]
    assert codes(ROWS[0], "", "{oops") == [(3, "invalid_json")]  # blank lines are skipped, numbers kept
    assert codes({"instruction": "add", "input": "1+1", "output": "2"}, {"text": "plain text"}) == []
    preference = {"input": {"messages": [user]}, "preferred_output": [{"role": "assistant", "content": "a"}],
                  "non_preferred_output": [{"role": "assistant", "content": "b"}]}
    assert check_lines(jsonl([preference, preference])).kind == "preference"
    assert codes(ROWS[0], preference) == [(1, "mixed_formats")]
    assert codes() == [(1, "empty_file")] and check_lines(b"\xff\xfe").problems[0]["code"] == "invalid_encoding"

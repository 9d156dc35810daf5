"""The self-hosted fine-tuning API (issue 16) driven by the official `openai` client against
`tunesmith server` (jobs + inference on one port) with a worker, on SQLite and on PostgreSQL:
the whole OpenAI workflow, paging, cancel while running, tenancy between two projects."""

from __future__ import annotations

import openai
import pytest

from jobs_helpers import ROWS, jsonl, running_server, tiny_job, wait_for
from postgres import postgres_db, postgres_server  # noqa: F401  (fixtures)

KEYS = ["team-a:key-a", "team-b:key-b"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return request.getfixturevalue("postgres_db")


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def _finished(client, job_id: str, statuses=("succeeded", "failed", "cancelled")):
    def check():
        job = client.fine_tuning.jobs.retrieve(job_id)
        return job if job.status in statuses else None
    return wait_for(check, what=f"job {job_id} to finish")


def test_the_openai_workflow_with_the_official_client(db_url, tmp_path, tiny_model_dir):
    from tunesmith.jobs.store import Store
    from tunesmith.jobs.tenancy import ProjectKeys

    store = Store(db_url, tmp_path / "storage")
    with running_server(store, ProjectKeys.load(KEYS)) as (url, _):
        a, b = _client(url, "key-a"), _client(url, "key-b")
        uploaded = a.files.create(file=("train.jsonl", jsonl(ROWS)), purpose="fine-tune")
        assert uploaded.status == "processed" and uploaded.bytes == len(jsonl(ROWS))
        assert a.files.content(uploaded.id).content == jsonl(ROWS)

        job = a.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=uploaded.id, suffix="sums", seed=3,
                                        hyperparameters={"n_epochs": 1, "batch_size": 4},
                                        metadata={"team": "a"}, extra_body={"tunesmith": tiny_job(4, 2)})
        assert job.status == "queued" and job.hyperparameters.n_epochs == 1 and job.hyperparameters.batch_size == 4
        assert job.hyperparameters.learning_rate_multiplier == 1.0  # "auto" resolved to the number used
        done = _finished(a, job.id)
        assert done.status == "succeeded", done.error
        assert done.fine_tuned_model == f"ft:{tiny_model_dir.name}:sums:{job.id}"
        assert done.trained_tokens > 0 and done.finished_at >= done.created_at

        events = list(a.fine_tuning.jobs.list_events(job.id, limit=3))  # the auto-pager walks every page
        metrics = [e for e in events if e.type == "metrics"]
        assert sorted({e.data["step"] for e in metrics}) == [1, 2, 3, 4]
        assert all(isinstance(e.data["train_loss"], float) for e in metrics)
        assert events[0].message == "The job has successfully completed"  # newest first, as OpenAI lists them
        checkpoints = a.fine_tuning.jobs.checkpoints.list(job.id).data
        assert [c.step_number for c in checkpoints] == [4, 2]
        assert checkpoints[0].metrics.train_loss is not None
        assert checkpoints[1].fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-2"
        csv = a.files.content(done.result_files[0]).text.splitlines()
        assert csv[0].startswith("step,train_loss") and len(csv) == 5

        chat = a.chat.completions.create(model=done.fine_tuned_model, max_tokens=4,
                                         messages=[{"role": "user", "content": "what is 2 plus 2?"}])
        assert chat.model == done.fine_tuned_model and isinstance(chat.choices[0].message.content, str)
        early = a.chat.completions.create(model=checkpoints[1].fine_tuned_model_checkpoint, max_tokens=2,
                                          messages=[{"role": "user", "content": "hi"}])
        assert early.choices[0].finish_reason in ("length", "stop")
        assert {done.fine_tuned_model, str(tiny_model_dir)} <= {m.id for m in a.models.list()}  # tuned and base
        base = a.chat.completions.create(model=str(tiny_model_dir), max_tokens=2,
                                         messages=[{"role": "user", "content": "hi"}])
        assert base.model == str(tiny_model_dir) and base.choices[0].finish_reason in ("length", "stop")

        # a second job, cancelled while it runs, ends cancelled and keeps a checkpoint
        long = a.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=uploaded.id,
                                         extra_body={"tunesmith": tiny_job(400, 1)})
        wait_for(lambda: a.fine_tuning.jobs.checkpoints.list(long.id).data, what="a checkpoint of the long job")
        assert a.fine_tuning.jobs.cancel(long.id).status in ("running", "cancelled")
        stopped = _finished(a, long.id)
        assert stopped.status == "cancelled" and stopped.fine_tuned_model is None
        kept = a.fine_tuning.jobs.checkpoints.list(long.id).data
        folder = store.storage / "runs" / long.id / "checkpoints" / f"checkpoint-{kept[0].step_number}"
        assert kept and folder.is_dir()

        first = a.fine_tuning.jobs.list(limit=1)
        assert first.has_more and first.data[0].id == long.id
        assert [j.id for j in a.fine_tuning.jobs.list(limit=1)] == [long.id, job.id]  # auto-paging
        assert [j.id for j in a.fine_tuning.jobs.list(metadata={"team": "a"})] == [job.id]

        # tenancy: project B sees none of it, and cannot use A's model
        assert b.files.list().data == [] and b.fine_tuning.jobs.list().data == []
        assert not {done.fine_tuned_model, str(tiny_model_dir)} & {m.id for m in b.models.list()}
        for call in (lambda: b.files.retrieve(uploaded.id), lambda: b.files.content(uploaded.id),
                     lambda: b.files.delete(uploaded.id), lambda: b.fine_tuning.jobs.retrieve(job.id),
                     lambda: b.fine_tuning.jobs.cancel(long.id), lambda: b.fine_tuning.jobs.list_events(job.id),
                     lambda: b.fine_tuning.jobs.checkpoints.list(job.id),
                     lambda: b.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=uploaded.id),
                     lambda: b.chat.completions.create(model=done.fine_tuned_model,
                                                       messages=[{"role": "user", "content": "hi"}])):
            with pytest.raises(openai.NotFoundError):
                call()
        with pytest.raises(openai.AuthenticationError):
            _client(url, "key-c").files.list()
        assert a.files.retrieve(uploaded.id).id == uploaded.id  # still A's


def test_a_running_job_paused_then_resumed_continues_from_its_checkpoint(tmp_path, tiny_model_dir):
    from tunesmith.jobs.store import Store

    store = Store(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path / "storage")
    with running_server(store) as (url, _):
        client = _client(url, "none")
        uploaded = client.files.create(file=("train.jsonl", jsonl(ROWS)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=uploaded.id,
                                             extra_body={"tunesmith": tiny_job(8, 1)})
        wait_for(lambda: client.fine_tuning.jobs.checkpoints.list(job.id).data, what="a checkpoint")
        assert client.fine_tuning.jobs.pause(job.id).status == "running"  # until the training has stopped
        paused = _finished(client, job.id, ("paused",))
        stopped_at = client.fine_tuning.jobs.checkpoints.list(job.id).data[0].step_number
        assert paused.fine_tuned_model is None and 1 <= stopped_at < 8
        assert client.fine_tuning.jobs.resume(job.id).status == "queued"
        done = _finished(client, job.id)
        assert done.status == "succeeded", done.error
        messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
        assert f"resuming from checkpoint-{stopped_at}" in messages
        steps = [e.data["step"] for e in client.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"]
        assert max(steps) == 8 and min(steps) == 1

"""The public API the dashboard stands on (docs/api.md): runs, registry, file inspection and the
config schema, on `tunesmith server`'s app with a real CLI-trained tiny run."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from inproc import exit_code, serving

KEY = "team-a:key-a"
AUTH = {"Authorization": "Bearer key-a"}


@pytest.fixture(scope="module")
def runs_root(tiny_model_dir, tmp_path_factory):
    """A runs root holding one run trained by `tunesmith train` (CLI) with an eval split."""
    root = tmp_path_factory.mktemp("runs-root")
    data = root.parent / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                                                     {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]})
                            + "\n" for i in range(8)))
    config = root.parent / "cli-run.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"name_or_path": str(tiny_model_dir)},
        "data": {"train": [str(data)], "eval_ratio": 0.25, "template": "chatml"},
        "method": {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        "train": {"max_steps": 3, "batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1, "precision": "fp32"},
        "eval": {"before_training": False, "steps": 1},
        "output": {"dir": str(root / "cli-run")},
    }))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNESMITH_HOME", str(root.parent / "home"))
        assert exit_code("train", config) == 0
    return root


@contextmanager
def server(tmp_path, runs_root, keys=(KEY,), registry=True):
    from tunesmith.jobs.store import Store
    from tunesmith.jobs.tenancy import ProjectKeys
    from tunesmith.server.jobs_routes import create_server_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.registry import ModelRegistry
    from tunesmith.serving.service import Service

    store = Store(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "storage")
    catalog = Catalog(store.storage / "models", [], ModelRegistry(store.url) if registry else None)
    service = Service(catalog, LocalEngine())
    app = create_server_app(store, service, ProjectKeys.load(list(keys)), runs_root=runs_root)
    with serving(app) as url:
        yield httpx.Client(base_url=f"{url}/v1", headers=AUTH, timeout=120), store
    service.engine.close()


def _error(answer: httpx.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["message"] and error["type"]
    return error


# --- runs ----------------------------------------------------------------------------------------
def test_a_cli_trained_run_is_listed_with_its_figures_and_metric_series(tmp_path, runs_root):
    from tunesmith.runs.rundir import RunDir
    from tunesmith.utils.io import read_jsonl

    run = RunDir(runs_root / "cli-run")
    logged = read_jsonl(run.metrics_file)
    with server(tmp_path, runs_root) as (client, _):
        listed = client.get("/runs").json()
        assert listed["object"] == "list" and listed["has_more"] is False
        [found] = [r for r in listed["data"] if r["path"] == str(run.path)]
        assert found["id"] == run.id and found["status"] == "succeeded" and found["job_id"] is None
        assert found["method"] == "lora" and found["task"] == "sft"
        results = json.loads((run.path / "results.json").read_text())
        assert found["metrics"]["eval_loss"] == pytest.approx(results["eval_after"]["eval_loss"])

        detail = client.get(f"/runs/{run.id}").json()
        assert detail["config"]["train"]["max_steps"] == 3
        assert yaml.safe_load(detail["config_yaml"]) == detail["config"]
        assert detail["results"]["eval_after"]["eval_loss"] == found["metrics"]["eval_loss"]
        assert detail["data_report"]["train"]["records"] == 6

        metrics = client.get(f"/runs/{run.id}/metrics").json()
        series = metrics["series"]
        train_rows = [r for r in logged if "loss" in r]
        eval_rows = [r for r in logged if "eval_loss" in r]
        assert series["train_loss"] == [[r["step"], r["loss"]] for r in train_rows]
        assert len(series["eval_loss"]) == len(eval_rows) >= 3
        assert "learning_rate" in series and "grad_norm" in series
        assert not {"train_runtime", "eval_runtime", "epoch", "step"} & set(series)
        assert metrics["progress"] == {"step": 3, "total_steps": 3, "eta_seconds": None}


def test_a_run_whose_writer_died_is_interrupted_not_running(tmp_path, runs_root):
    import shutil
    import socket
    import time
    from datetime import datetime, timedelta, timezone

    from tunesmith.runs.rundir import RunDir

    root = tmp_path / "runs"
    dead = RunDir(shutil.copytree(runs_root / "cli-run", root / "dead"))
    (dead.path / "run.json").unlink()  # a run of its own (an id from its path)
    dead.set_status("running")
    gone = _dead_pid()
    (dead.path / "LOCK").write_text(json.dumps({"pid": gone, "host": socket.gethostname(), "since": "x"}))
    lockless = RunDir(shutil.copytree(dead.path, root / "lockless"))
    (lockless.path / "LOCK").unlink()
    live = RunDir(shutil.copytree(dead.path, root / "live"))  # resumed at step 1 ten seconds ago, now at 3 of 6
    (live.path / "LOCK").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "x"}))
    began = datetime.now(timezone.utc) - timedelta(seconds=10)
    (live.path / "events.jsonl").open("a").write(json.dumps({"time": began.isoformat(), "event": "train_begin",
                                                             "message": "", "max_steps": 6, "step": 1}) + "\n")
    with server(tmp_path, root) as (client, _):
        runs = client.get("/runs").json()["data"]
        assert {Path(r["path"]).name: r["status"] for r in runs} == {
            "dead": "interrupted", "lockless": "interrupted", "live": "running"}
        ids = {Path(r["path"]).name: r["id"] for r in runs}
        before = time.time()
        progress = client.get(f"/runs/{ids['live']}/metrics").json()["progress"]
        after = time.time()
        assert progress["step"] == 3 and progress["total_steps"] == 6
        # 2 steps since the restart, 3 left: the elapsed time x 1.5
        assert 1.5 * (before - began.timestamp()) - 0.1 <= progress["eta_seconds"] <= 1.5 * (
            after - began.timestamp()) + 0.1
        assert client.get(f"/runs/{ids['dead']}/metrics").json()["progress"]["eta_seconds"] is None
        [first] = client.get("/runs", params={"limit": 1}).json()["data"]
        rest = client.get("/runs", params={"after": first["id"]}).json()
        assert len(rest["data"]) == 2 and first["id"] not in {r["id"] for r in rest["data"]} and not rest["has_more"]


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_compare_gives_what_runs_compare_computes(tmp_path, runs_root, capsys):
    import shutil

    from tunesmith.runs.listing import compare
    from tunesmith.runs.rundir import RunDir

    root = tmp_path / "runs"
    a = shutil.copytree(runs_root / "cli-run", root / "a")
    b = shutil.copytree(runs_root / "cli-run", root / "b")
    (b / "run.json").write_text(json.dumps({"id": "run-b", "created": "2026-11-30T00:00:00+00:00"}))
    config = RunDir(b).read_config()
    config["train"]["learning_rate"] = 0.5
    RunDir(b).write_config(config)
    with server(tmp_path, root) as (client, _):
        ids = f"{RunDir(a).id},run-b"
        answer = client.get("/runs/compare", params={"ids": ids}).json()
        assert answer == json.loads(json.dumps(compare([a, b])))
        assert answer["differing"] == ["train.learning_rate"]
        assert [r["config"]["train.learning_rate"] for r in answer["runs"]] == ["0.01", "0.5"]
        assert all(r["best"] for r in answer["runs"])  # equal eval losses: both are the best
        assert _error(client.get("/runs/compare", params={"ids": "run-b,nope"}), 404)["param"] == "run_id"
    capsys.readouterr()
    assert exit_code("runs", "compare", a, b, "--output", tmp_path / "c.png") == 0
    table = capsys.readouterr().out
    assert "0.5" in table and table.count("★") == 2 and (tmp_path / "c.png").is_file()


def test_runs_answer_401_without_a_key_and_404_for_unknown_ids(tmp_path, runs_root):
    with server(tmp_path, runs_root) as (client, _):
        assert _error(httpx.get(f"{client.base_url}runs"), 401)
        assert _error(client.get("/runs/nope"), 404)["code"] == "not_found"
        assert _error(client.get("/runs/nope/metrics"), 404)
        assert _error(client.get("/runs", params={"limit": 0}), 400)["param"] == "limit"


def test_a_jobs_run_carries_its_job_id_and_the_job_its_run_id(tmp_path, runs_root, tiny_model_dir):
    """A job's run (written by a worker; here the run folder alone) is seen only by its project."""
    import shutil

    from jobs_helpers import ROWS, jsonl, tiny_job
    from tunesmith.runs.rundir import RunDir

    with server(tmp_path, None, keys=(KEY, "team-b:key-b")) as (client, store):
        file = client.post("/files", files={"file": ("t.jsonl", jsonl(ROWS))}, data={"purpose": "fine-tune"}).json()
        job = client.post("/fine_tuning/jobs", json={"model": str(tiny_model_dir), "training_file": file["id"],
                                                     "tunesmith": tiny_job()}).json()
        assert job["run_id"] is None  # no worker: the run does not exist yet
        shutil.copytree(runs_root / "cli-run", store.run_dir(job["id"]))
        run_id = RunDir(store.run_dir(job["id"])).id
        assert client.get(f"/fine_tuning/jobs/{job['id']}").json()["run_id"] == run_id
        assert client.get("/fine_tuning/jobs").json()["data"][0]["run_id"] == run_id
        [run] = client.get("/runs").json()["data"]
        assert run["id"] == run_id and run["job_id"] == job["id"]
        other = httpx.get(f"{client.base_url}runs", headers={"Authorization": "Bearer key-b"}).json()
        assert other["data"] == []
        RunDir(store.run_dir(job["id"])).set_status("running")  # its worker died before writing STATUS
        (store.run_dir(job["id"]) / "LOCK").write_text(json.dumps({"pid": os.getpid(), "host": "elsewhere",
                                                                   "since": "x"}))
        client.post(f"/fine_tuning/jobs/{job['id']}/cancel")
        assert client.get(f"/runs/{run_id}").json()["status"] == "cancelled"


# --- registry -----------------------------------------------------------------------------------
def test_registry_versions_split_and_rollback_round_trip_over_http(tmp_path, runs_root):
    import openai

    from tunesmith.runs.rundir import RunDir

    run = RunDir(runs_root / "cli-run")
    with server(tmp_path, runs_root) as (client, _):
        assert client.get("/registry").json() == {"object": "list", "data": [], "has_more": False}
        first = client.post("/registry/chat/versions", json={"run": run.id, "note": "first"}).json()
        assert first["version"] == 1 and first["serves"] == {"version": 1}
        second = client.post("/registry/chat/versions", json={"run": str(run.path)}).json()
        assert second["version"] == 2 and second["serves"] == {"version": 1}  # a new version serves once promoted
        assert [v["note"] for v in second["versions"]] == ["first", ""]
        assert second["versions"][0]["figures"]["eval_loss"] > 0

        split = client.put("/registry/chat/split", json={"weights": {"1": 0.9, "2": 0.1}}).json()
        assert split["split"] == {"1": 90.0, "2": 10.0}
        back = client.post("/registry/chat/rollback").json()
        assert back["now"] == {"version": 1} and back["serves"] == {"version": 1} and back["split"] is None
        assert client.post("/registry/chat/aliases", json={"alias": "prod", "version": "v2"}).json()["aliases"] == {
            "prod": 2}
        assert client.post("/registry/chat/promote", json={"version": 2}).json()["serves"] == {"version": 2}
        [listed] = client.get("/registry").json()["data"]
        assert listed["name"] == "chat" and listed["versions"] == 2 and listed["aliases"] == {"prod": 2}

        oai = openai.OpenAI(base_url=str(client.base_url), api_key="key-a", max_retries=0)
        answer = oai.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}],
                                             max_tokens=2)
        assert answer.model == "chat@v2"
        stats = oai.get("/registry/chat/stats", cast_to=object, options={"params": {"bucket": 3600}})
        by_version = {v["version"]: v for v in stats["versions"]}
        assert by_version[2]["requests"] == 1 and by_version[2]["errors"] == 0 and by_version[1]["requests"] == 0
        assert by_version[2]["latency_p50_ms"] > 0 and by_version[2]["timeline"][0][1:] == [1, 0]
        report = oai.get("/registry/chat/ab", cast_to=object)
        assert report["plot"] is None and [v["requests"] for v in report["versions"]] == [1]
        assert "an A/B test needs two" in report["verdict"]

        assert _error(client.get("/registry/other"), 404)["code"] == "not_found"
        assert _error(client.post("/registry/chat/promote", json={"version": 7}), 404)
        assert _error(client.put("/registry/chat/split", json={"weights": {"1": 50, "2": 20}}), 400)
        assert _error(client.post("/registry/chat/versions", json={"run": "/etc"}), 404)["param"] == "run"
        assert _error(httpx.get(f"{client.base_url}registry"), 401)
    assert not list(Path.cwd().glob("ab/chat*"))  # the A/B report wrote no file


def test_registry_routes_without_a_registry_say_how_to_get_one(tmp_path, runs_root):
    with server(tmp_path, runs_root, registry=False) as (client, _):
        error = _error(client.get("/registry"), 400)
        assert "--db" in error["message"] and error["code"] == "registry_not_configured"
        assert _error(client.get("/registry/chat/stats"), 400)["code"] == "registry_not_configured"


# --- data inspection ------------------------------------------------------------------------------
def test_inspect_names_a_bad_line_counts_tokens_previews_and_estimates(tmp_path, tiny_model_dir):
    from jobs_helpers import ROWS, jsonl

    content = jsonl(ROWS[:2]) + b'{"messages": [{"role": "user", "content": "hi"}\n' + jsonl(ROWS[2:8])
    with server(tmp_path, None) as (client, _):
        file = client.post("/files", files={"file": ("t.jsonl", content)}, data={"purpose": "fine-tune"}).json()
        plain = client.post(f"/files/{file['id']}/inspect", json={"preview": 2}).json()
        assert plain["object"] == "file.inspection" and plain["id"] == file["id"]
        assert plain["format"] == "openai" and plain["task"] == "sft" and plain["rows"] == 9
        [bad] = [p for p in plain["problems"] if p["severity"] == "error"]
        assert bad["line"] == 3 and "JSON" in bad["message"]
        assert plain["token_lengths"] is None and "tokenizer" in plain["notes"][0]
        assert [p["line"] for p in plain["preview"]] == [1, 2]
        assert plain["preview"][0]["text"].startswith("<|im_start|>user\nwhat is 0 plus 0?")
        assert [s["trainable"] for s in plain["preview"][0]["segments"]] == [False, False, True]

        config = {"method": {"name": "lora", "r": 4}, "data": {"template": "chatml"},
                  "train": {"max_steps": 4, "batch_size": 2, "precision": "fp32"}, "eval": {"before_training": False}}
        fast = client.post(f"/files/{file['id']}/inspect", json={"model": str(tiny_model_dir), "estimate": config,
                                                                 "tokens_per_second": 100.0}).json()
        lengths = fast["token_lengths"]
        assert sum(lengths["counts"]) == fast["valid_rows"] == 8 and len(lengths["edges"]) == len(lengths["counts"]) + 1
        assert lengths["edges"][0] <= lengths["p50"] <= lengths["p95"] <= lengths["max"] == lengths["edges"][-1]
        estimate = fast["estimate"]
        assert estimate["steps"] == 4 and estimate["speed_basis"] == "given" and estimate["peak_memory_mb"] is None
        assert estimate["estimated_seconds"] == round(estimate["trained_tokens"] / 100.0)

        measured = client.post(f"/files/{file['id']}/inspect", json={"model": str(tiny_model_dir),
                                                                     "estimate": config, "preview": 0}).json()
        assert measured["estimate"]["speed_basis"].startswith("measured") and measured["preview"] == []
        assert measured["estimate"]["peak_memory_mb"] > 0 and measured["estimate"]["steps"] == 4

        assert _error(client.post(f"/files/{file['id']}/inspect", json={"previews": 2}), 400)["param"] == "previews"
        assert _error(client.post(f"/files/{file['id']}/inspect", json={"estimate": {"train": {"lr": 1}}}), 400)
        assert _error(client.post("/files/file-nope/inspect", json={}), 404)["code"] == "not_found"
        assert _error(client.post(f"/files/{file['id']}/inspect", content=b"[1]",
                                  headers={"Content-Type": "application/json"}), 400)["code"] == "invalid_json"


# --- config schema and rendering ------------------------------------------------------------------
def test_the_schema_lists_every_method_task_and_zoo_model_with_options_and_auto_rules(tmp_path):
    from tunesmith.methods import METHODS
    from tunesmith.models.zoo import ZOO
    from tunesmith.tasks import TASKS

    with server(tmp_path, None) as (client, _):
        schema = client.get("/config/schema").json()
    assert [m["name"] for m in schema["methods"]] == [m.name for m in METHODS]
    assert schema["tasks"] == [t.name for t in TASKS] and schema["models"] == list(ZOO)
    lora = next(m for m in schema["methods"] if m["name"] == "lora")
    assert lora["options"]["r"]["default"] == 16 and lora["options"]["r"]["exclusiveMinimum"] == 0
    assert lora["summary"] and "sft" in lora["tasks"]
    train = schema["json_schema"]["$defs"]["TrainSection"]["properties"]
    assert train["warmup_ratio"]["maximum" if "maximum" in train["warmup_ratio"] else "exclusiveMaximum"] == 1
    assert "auto" in train["learning_rate"]["description"]
    assert set(schema["auto"]) == {"batch_size", "learning_rate", "epochs"} and "0.2%" in schema["auto"]["batch_size"]


def test_render_gives_yaml_that_config_check_accepts_and_the_jobs_equivalent(tmp_path, tiny_model_dir, capsys):
    from jobs_helpers import ROWS, jsonl, tiny_job

    data = tmp_path / "train.jsonl"
    data.write_bytes(jsonl(ROWS))
    config = {"model": {"name_or_path": str(tiny_model_dir)}, "data": {"train": [str(data)], "template": "chatml"},
              **{k: v for k, v in tiny_job().items() if k != "data"}}
    with server(tmp_path, None) as (client, _):
        rendered = client.post("/config/render", json={"config": config}).json()
        assert rendered["problems"] == [] and rendered["command"] == "tunesmith train config.yaml"
        (tmp_path / "config.yaml").write_text(rendered["yaml"])
        capsys.readouterr()
        assert exit_code("config", "check", tmp_path / "config.yaml") == 0
        body = rendered["jobs_request"]
        assert body["model"] == str(tiny_model_dir) and body["training_file"] == str(data)
        assert body["tunesmith"] == {**tiny_job(), "data": {"template": "chatml"}}
        assert rendered["jobs_command"].startswith(f"tunesmith jobs create {data} --model {tiny_model_dir} --tunesmith")
        file = client.post("/files", files={"file": ("t.jsonl", jsonl(ROWS))}, data={"purpose": "fine-tune"}).json()
        job = client.post("/fine_tuning/jobs", json={**body, "training_file": file["id"]}).json()
        assert job["status"] == "queued", job  # the jobs API takes the rendered request as it is

        bad = {**config, "method": {"name": "lora", "rr": 4}, "train": {"learning_rate": -1},
               "data": {"train": [str(tmp_path / "missing.jsonl")]}}
        problems = client.post("/config/render", json={"config": bad}).json()["problems"]
        assert {p["key"] for p in problems} == {"method.rr", "train.learning_rate"}
        assert "'r'" in next(p["message"] for p in problems if p["key"] == "method.rr")
        missing = client.post("/config/render", json={"config": {**config, "data": bad["data"]}}).json()
        assert [p["key"] for p in missing["problems"]] == ["data.train"]
        assert _error(client.post("/config/render", json={"yaml": "x"}), 400)
        assert _error(httpx.get(f"{client.base_url}config/schema"), 401)


# --- the documented API ------------------------------------------------------------------------------
def documented_endpoints() -> set[tuple[str, str]]:
    """(method, path) of every row of docs/api.md's endpoint table."""
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \|", text, re.MULTILINE))


def test_docs_api_lists_exactly_the_apps_routes(tmp_path):
    """The dashboard may use only documented endpoints: the documented list is the app's own."""
    from tunesmith.jobs.store import Store
    from tunesmith.server.jobs_routes import create_server_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.service import Service

    store = Store(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "storage")
    app = create_server_app(store, Service(Catalog(tmp_path, []), LocalEngine()))
    routes = {(method.upper(), path) for path, methods in app.openapi()["paths"].items() for method in methods}
    assert len(routes) > 40 and documented_endpoints() == routes

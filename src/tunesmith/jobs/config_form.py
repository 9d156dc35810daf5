"""What a new-job form needs (GET /v1/config/schema) and what it shows back (POST
/v1/config/render): the run config's JSON schema with every registered method and task and
their options, the zoo, how each `auto` hyperparameter is chosen; and a config as YAML, its
`tunesmith train` command and the equivalent jobs API request and `tunesmith jobs create`
command, with its problems, validated without training."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import yaml

from tunesmith.config.components import METHOD_CONFIGS, TASK_CONFIGS
from tunesmith.config.load import config_problems
from tunesmith.config.schema_doc import full_schema
from tunesmith.methods import METHODS
from tunesmith.models.zoo import ZOO
from tunesmith.tasks import TASKS
from tunesmith.training import auto

AUTO = {  # how training/auto.py resolves each `auto` (its docstring, with its constants)
    "batch_size": f"about {auto.BATCH_SHARE:.1%} of the training rows per optimizer step, split over "
                  f"train.grad_accum, between 1 and {auto.MAX_DEVICE_BATCH} rows per device",
    "learning_rate": "the method's base rate (adapters learn with larger rates than full weights), scaled by "
                     "sqrt(effective batch / 8) within 0.5x..2x",
    "epochs": f"{auto.DEFAULT_EPOCHS}, raised for small data sets so the model sees at least {auto.MIN_SEEN:,} rows "
              f"in total (at most {auto.MAX_EPOCHS} epochs) and lowered for large ones so it sees at most "
              f"{auto.MAX_SEEN:,} (at least 1 epoch)",
}


def _options(config_class) -> dict:
    """{option: its JSON schema (type, default, range, description)}, `name` aside."""
    schema = config_class.model_json_schema()
    return {k: v for k, v in schema.get("properties", {}).items() if k != "name"}


def config_schema() -> dict:
    methods = [{"name": m.name, "summary": m.summary, "base_learning_rate": m.base_learning_rate,
                "tasks": list(m.tasks), "options": _options(METHOD_CONFIGS.get(m.name))} for m in METHODS]
    tasks = [{"name": t.name, "summary": t.summary, "options": _options(TASK_CONFIGS.get(t.name))} for t in TASKS]
    models = [{"name": z.name, "architecture": z.architecture, "parameters": z.parameters, "summary": z.summary}
              for z in ZOO.values()]
    return {"object": "config.schema", "json_schema": full_schema(), "methods": methods,
            "tasks": [t["name"] for t in tasks], "task_details": tasks, "models": list(ZOO),
            "model_details": models, "auto": AUTO}


def render_config(config) -> dict:
    """The config as config.yaml, the commands and jobs request that train it, and its problems
    ([{key, message}], empty when it is valid). Nothing is trained or written."""
    if not isinstance(config, dict):
        return {"object": "config.rendering", "yaml": "", "problems": [
            {"key": None, "message": "config must be a JSON object of config sections (model, data, ...)"}]}
    problems = config_problems(config) or _missing_files(config)
    body = jobs_request(config)
    return {"object": "config.rendering", "yaml": yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
            "command": "tunesmith train config.yaml", "jobs_request": body, "jobs_command": jobs_command(body),
            "problems": problems}


def _missing_files(config: dict) -> list[dict]:
    """Input files of a valid config that this server does not have (`config check` refuses them)."""
    from tunesmith.config.load import validate_config
    from tunesmith.config.paths import input_files

    return [{"key": key, "message": f"{path} not found on the server (a job uploads its file instead: "
                                    "POST /v1/files, then training_file)"}
            for key, path, _ in input_files(validate_config(config)) if not Path(path).exists()]


def jobs_request(config: dict) -> dict:
    """The POST /v1/fine_tuning/jobs body that trains `config`: model, training and validation
    file (the path here: `tunesmith jobs create` uploads it; the API wants its file id), and every
    other option in the `tunesmith` extension object."""
    data = dict(config.get("data") or {})
    train, valid = data.pop("train", None) or ["FILE_ID"], data.pop("eval", None) or []
    extension = {k: v for k, v in config.items() if k not in ("model", "data", "output", "config_version")}
    if data:
        extension["data"] = data
    model = (config.get("model") or {}) if isinstance(config.get("model"), dict) else {}
    body = {"model": model.get("name_or_path", "MODEL"), "training_file": _first(train)}
    if valid:
        body["validation_file"] = _first(valid)
    task = config.get("task")
    if (task.get("name") if isinstance(task, dict) else task) == "dpo":
        body["method"] = {"type": "dpo"}
    if extension:
        body["tunesmith"] = extension
    return body


def _first(files) -> str:
    return str(files[0] if isinstance(files, list) and files else files)


def jobs_command(body: dict) -> str:
    parts = ["tunesmith", "jobs", "create", body["training_file"], "--model", body["model"]]
    if "validation_file" in body:
        parts += ["--validation-file", body["validation_file"]]
    if "method" in body:
        parts += ["--method", body["method"]["type"]]
    if "tunesmith" in body:
        parts += ["--tunesmith", json.dumps(body["tunesmith"], separators=(",", ":"))]
    return shlex.join(parts)

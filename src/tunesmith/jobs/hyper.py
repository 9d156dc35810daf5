"""OpenAI's job settings as a tunesmith RunConfig: hyperparameters (n_epochs, batch_size,
learning_rate_multiplier; each "auto" by default, resolved here with tunesmith's own auto rules,
training/auto.py), the method (supervised, dpo with beta), and the `tunesmith` extension object
that sets any other config option (method lora/dora/full..., r, data.cutoff_len, train.packing ...)."""

from __future__ import annotations

from pathlib import Path

from tunesmith.config.load import validate_config
from tunesmith.errors import ConfigError
from tunesmith.jobs.errors import BadRequest
from tunesmith.methods import METHODS
from tunesmith.training.auto import auto_batch_size, auto_epochs, auto_learning_rate

HYPER_KEYS = {"n_epochs", "batch_size", "learning_rate_multiplier"}
METHOD_TYPES = {"supervised", "dpo", "reinforcement"}
RESERVED = {"model", "output"}  # set by the API itself (the job's model, its run directory)
JOB_TRAIN_DEFAULTS = {"logging_steps": 1}  # OpenAI reports metrics every step


def method_settings(method: dict | None, hyperparameters: dict | None) -> tuple[str, dict, dict]:
    """(type, hyperparameters, method-only settings such as beta) from the request's fields."""
    method = method or {"type": "supervised"}
    kind = method.get("type", "supervised")
    if kind not in METHOD_TYPES:
        raise BadRequest(f"method.type {kind!r} is not one of supervised, dpo, reinforcement", "method.type")
    if kind == "reinforcement":
        raise BadRequest("method reinforcement is not supported by tunesmith yet; use supervised or dpo",
                         "method.type", code="unsupported_method")
    inner = dict((method.get(kind) or {}).get("hyperparameters") or {})
    merged = {**(hyperparameters or {}), **{k: v for k, v in inner.items() if k in HYPER_KEYS}}
    unknown = set(merged) - HYPER_KEYS
    if unknown:
        raise BadRequest(f"unknown hyperparameter(s) {', '.join(sorted(unknown))}; known: "
                         f"{', '.join(sorted(HYPER_KEYS))}", "hyperparameters")
    extra = {k: v for k, v in inner.items() if k not in HYPER_KEYS}
    settings = {}
    if kind == "dpo":
        beta = extra.pop("beta", "auto")
        settings["beta"] = 0.1 if beta in (None, "auto") else _number(beta, "method.dpo.hyperparameters.beta")
    if extra:
        raise BadRequest(f"unknown {kind} setting(s) {', '.join(sorted(extra))}", f"method.{kind}.hyperparameters")
    return kind, merged, settings


def _number(value, param: str, kind=float):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise BadRequest(f"{param} must be 'auto' or a number > 0 (got {value!r})", param)
    if kind is int and value != int(value):
        raise BadRequest(f"{param} must be a whole number (got {value!r})", param)
    return kind(value)


def build_config(model: str, train_file: Path, valid_file: Path | None, rows: int, seed: int, kind: str,
                 hyper: dict, settings: dict, extension: dict | None) -> tuple[dict, dict]:
    """(RunConfig as plain data, hyperparameters with every "auto" resolved to the numbers used)."""
    extension = dict(extension or {})
    clash = RESERVED & set(extension) or {"train", "eval"} & set(extension.get("data") or {})
    if clash:
        raise BadRequest(f"tunesmith.{sorted(clash)[0]} is set by the job itself (model, training_file, "
                         "validation_file); remove it from the extension object", "tunesmith")
    data = {"model": {"name_or_path": model},
            "data": {"train": [str(train_file)], "eval": [str(valid_file)] if valid_file else []},
            "train": {**JOB_TRAIN_DEFAULTS, "seed": seed}}
    if kind == "dpo":
        data["task"] = {"name": "dpo", "beta": settings["beta"]}
    for section, values in extension.items():
        if not isinstance(values, dict):
            raise BadRequest(f"tunesmith.{section} must be an object of config options", "tunesmith")
        data[section] = {**data.get(section, {}), **values}
    try:
        config = validate_config(data, "tunesmith (extension object)")
    except ConfigError as err:
        raise BadRequest(str(err), "tunesmith") from None
    train = config.train
    given = extension.get("train") or {}
    n_epochs = hyper.get("n_epochs", "auto")
    batch = hyper.get("batch_size", "auto")
    multiplier = hyper.get("learning_rate_multiplier", "auto")
    if "batch_size" not in given:
        train.batch_size = (auto_batch_size(rows, train.grad_accum) if batch in ("auto", None)
                            else _number(batch, "hyperparameters.batch_size", int))
    if "epochs" not in given:
        train.epochs = float(auto_epochs(rows) if n_epochs in ("auto", None)
                             else _number(n_epochs, "hyperparameters.n_epochs", int))
    base = auto_learning_rate(METHODS.get(config.method.name), train.batch_size * train.grad_accum)
    if "learning_rate" not in given:
        scale = 1.0 if multiplier in ("auto", None) else _number(multiplier, "hyperparameters.learning_rate_multiplier")
        train.learning_rate = base * scale
    resolved = {"n_epochs": int(train.epochs) if float(train.epochs).is_integer() else train.epochs,
                "batch_size": train.batch_size,
                "learning_rate_multiplier": round(train.learning_rate / base, 6)}
    return config.model_dump(mode="json"), resolved


def base_name(model: str) -> str:
    """The base model's short name for `ft:` names: a zoo name as is, a folder by its last part."""
    return Path(model).name if ("/" in model or Path(model).exists()) else model

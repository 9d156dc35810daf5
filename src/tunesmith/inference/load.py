"""Load a finished run (base + adapter, or full model) or a plain model for inference.

`load_weights` is the one loader of a model plus any adapters on it: runs, plain models and
adapter sets (tunesmith.adapters.multi) all come through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunesmith.config.load import validate_config
from tunesmith.config.schema import RunConfig
from tunesmith.data.templates import get_template
from tunesmith.errors import ConfigError, RunDirError
from tunesmith.methods import METHODS
from tunesmith.models import load_model, load_tokenizer, resolve_model
from tunesmith.models.load import check_weights
from tunesmith.runs.rundir import RunDir
from tunesmith.tasks import TASKS

DEFAULT_ADAPTER = "default"  # the name PEFT gives a run's single adapter


@dataclass
class Loaded:
    model: object
    tokenizer: object
    template: object
    config: RunConfig  # the run's config, or defaults for a plain model


def load_for_inference(run_or_model: str, template: str | None = None, trust_remote_code: bool = False) -> Loaded:
    """A run directory loads its trained weights; anything else loads as a base model.
    Model code from the model folder runs only when the caller (a command-line flag) allows it:
    a run's own config.yaml cannot turn it on, since the run may come from someone else."""
    if RunDir.is_run(run_or_model):
        return _load_run(RunDir(run_or_model), template, trust_remote_code)
    config = validate_config({"model": {"name_or_path": run_or_model, "trust_remote_code": trust_remote_code}})
    if template:
        config.data.template = template
    model_dir = resolve_model(run_or_model)
    return load_weights(config, model_dir, model_dir)


def load_weights(config: RunConfig, weights: str | Path, tokenizer_dir: str | Path,
                 adapters: dict[str, Path] | None = None) -> Loaded:
    """The model in `weights` with the head and load options of the config's task, in eval mode,
    then each adapter of `adapters` (name -> folder) on it; the tokenizer from `tokenizer_dir`."""
    task = TASKS.get(config.task.name)
    tokenizer = load_tokenizer(tokenizer_dir, config.model.trust_remote_code)
    extra = task.model_kwargs(config, tokenizer) if task.model_kwargs else {}
    model = load_model(weights, task.model_class(), config.model.trust_remote_code, **extra)
    method = METHODS.get(config.method.name)
    for name, path in (adapters or {}).items():
        check_weights(path)
        try:
            model = attach_adapter(model, name, path, method)
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"adapter {name} ({path}) does not fit {config.model.name_or_path}: {err}") from None
    return Loaded(model.eval(), tokenizer, get_template(config.data.template, tokenizer), config)


def attach_adapter(model, name: str, path: str | Path, method=None):
    """`model` with adapter `name` from `path` on it: a PeftModel gains one more adapter (the active
    one stays); a method with its own adapter format (not PEFT) loads through its spec."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model.load_adapter(path, adapter_name=name)
        return model
    if method is not None and not method.peft:
        return method.load_adapter(model, path)
    return PeftModel.from_pretrained(model, path, adapter_name=name)


def _load_run(run: RunDir, template: str | None, trust_remote_code: bool = False) -> Loaded:
    config = validate_config(run.read_config(), str(run.path / "config.yaml"))
    config.model.trust_remote_code = trust_remote_code
    if template:
        config.data.template = template
    if run.adapter_dir.is_dir():
        return load_weights(config, resolve_model(config.model.name_or_path), run.adapter_dir,
                            {DEFAULT_ADAPTER: run.adapter_dir})
    if run.model_dir.is_dir():
        return load_weights(config, run.model_dir, run.model_dir)
    raise RunDirError(
        f"{run.path} has no adapter/ or model/ (status: {run.status()}); "
        "finish it with: tunesmith train <config> --resume"
    )

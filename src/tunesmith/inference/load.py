"""Load a finished run (base + adapter, or full model) or a plain model for inference."""

from __future__ import annotations

from dataclasses import dataclass

from tunesmith.config.load import validate_config
from tunesmith.config.schema import RunConfig
from tunesmith.data.templates import get_template
from tunesmith.errors import RunDirError
from tunesmith.methods import METHODS
from tunesmith.models import load_model, load_tokenizer, resolve_model
from tunesmith.models.load import check_weights
from tunesmith.runs.rundir import RunDir
from tunesmith.tasks import TASKS


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
    config = validate_config({"model": {"name_or_path": run_or_model}})
    if template:
        config.data.template = template
    model_dir = resolve_model(run_or_model)
    tokenizer = load_tokenizer(model_dir, trust_remote_code)
    model = load_model(model_dir, trust_remote_code=trust_remote_code).eval()
    return Loaded(model, tokenizer, get_template(config.data.template, tokenizer), config)


def _load_run(run: RunDir, template: str | None, trust_remote_code: bool = False) -> Loaded:
    config = validate_config(run.read_config(), str(run.path / "config.yaml"))
    config.model.trust_remote_code = trust_remote_code
    if template:
        config.data.template = template
    task = TASKS.get(config.task.name)
    model_class = task.model_class()
    if run.adapter_dir.is_dir():
        check_weights(run.adapter_dir)
        base_dir = resolve_model(config.model.name_or_path)
        tokenizer = load_tokenizer(run.adapter_dir)
        extra = task.model_kwargs(config, tokenizer) if task.model_kwargs else {}
        base = load_model(base_dir, model_class, config.model.trust_remote_code, **extra)
        model = METHODS.get(config.method.name).load_adapter(base, run.adapter_dir)
    elif run.model_dir.is_dir():
        tokenizer = load_tokenizer(run.model_dir)
        extra = task.model_kwargs(config, tokenizer) if task.model_kwargs else {}
        model = load_model(run.model_dir, model_class, config.model.trust_remote_code, **extra)
    else:
        raise RunDirError(
            f"{run.path} has no adapter/ or model/ (status: {run.status()}); "
            "finish it with: tunesmith train <config> --resume"
        )
    return Loaded(model.eval(), tokenizer, get_template(config.data.template, tokenizer), config)



"""`train(config)`: the one call that the CLI, the jobs worker and the tests make."""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tunesmith.config.schema import RunConfig
from tunesmith.data.prepare import prepare_data
from tunesmith.errors import ConfigError, RunDirError
from tunesmith.methods import METHODS, trainable_parameters
from tunesmith.models import load_model, load_tokenizer, resolve_model
from tunesmith.runs.rundir import RunDir
from tunesmith.tasks import TASKS, TrainerParts
from tunesmith.tasks.collate import CausalLMCollator
from tunesmith.training.auto import resolve_auto
from tunesmith.training.callbacks import InterruptCallback, ProgressCallback, RunLogCallback
from tunesmith.training.metric_callback import evaluation_callbacks
from tunesmith.training.model_card import write_model_card
from tunesmith.training.plots import plot_loss, plot_metrics
from tunesmith.training.precision import resolve_precision
from tunesmith.training.speed import prepare_speed
from tunesmith.training.tracking import tracking_callbacks
from tunesmith.training.trainer import TunesmithTrainer
from tunesmith.utils.io import write_json
from tunesmith.utils.progress import console


@dataclass
class RunResult:
    run_dir: Path
    status: str
    eval_before: dict = field(default_factory=dict)
    eval_after: dict = field(default_factory=dict)
    train_metrics: dict = field(default_factory=dict)


def train(config: RunConfig, *, resume: bool = False, callbacks: list = (), trainer_class=None) -> RunResult:
    """Fine-tune as configured and write the run directory; resumable after a crash or Ctrl-C.
    `callbacks`: extra TrainerCallbacks (a sweep's pruning callback, for instance).
    `trainer_class` (default TunesmithTrainer) lets a variant such as distillation change the
    loss while keeping everything else of a run."""
    run = _open_run(config, resume)
    run.set_status("running")
    try:
        result = _train(config, run, resume, list(callbacks), trainer_class or TunesmithTrainer)
    except BaseException as err:
        cancelled = isinstance(err, KeyboardInterrupt)
        reason = "interrupted; resume with --resume" if cancelled else f"{type(err).__name__}: {err}"
        run.set_status("cancelled" if cancelled else "failed", reason)
        run.event("cancelled" if cancelled else "failed", reason)
        raise
    run.set_status(result.status, "" if result.status == "succeeded" else "interrupted; resume with --resume")
    return result


def _open_run(config: RunConfig, resume: bool) -> RunDir:
    if not config.output.dir:
        raise RunDirError("output.dir is not set; give a run directory, e.g. output.dir=runs/my-run")
    run = RunDir.create(config.output.dir, overwrite=config.output.overwrite, resume=resume)
    run.write_config(config.model_dump(mode="json"))
    return run


def _train(config: RunConfig, run: RunDir, resume: bool, extra_callbacks: list, trainer_class) -> RunResult:
    import torch
    from transformers import set_seed

    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    set_seed(config.train.seed)
    task, method = TASKS.get(config.task.name), METHODS.get(config.method.name)
    reason = method.refusal(task)
    if reason:
        raise ConfigError(reason)
    model_dir = resolve_model(config.model.name_or_path)
    tokenizer = load_tokenizer(model_dir, config.model.trust_remote_code)
    data = prepare_data(config, tokenizer, task)
    write_json(run.path / "data_report.json", data.report)
    _resolve_auto(config, run, len(data.train))
    run.write_config(config.model_dump(mode="json"))  # again: tasks may learn settings from data (labels)
    load_kwargs = method.load_kwargs(config.method)
    load_kwargs.update(task.model_kwargs(config, tokenizer) if task.model_kwargs else {})
    model = load_model(model_dir, task.model_class(), config.model.trust_remote_code, **load_kwargs)
    model = method.apply(model, config.method)
    if config.train.gradient_checkpointing:
        model.config.use_cache = False
    precision, note = resolve_precision(config.train.precision)
    trainable, total = trainable_parameters(model)
    run.event("setup", f"{method.name} on {config.model.name_or_path}: {trainable:,} of {total:,} "
              f"parameters train; {note}", trainable=trainable, total=total, precision=precision)
    from tunesmith.training.arguments import training_arguments

    overrides = method.training_args(config.method)

    def arguments(args_class=None, **extra):
        classes = {"args_class": args_class} if args_class else {}
        return training_arguments(config, run.checkpoints, precision, bool(data.eval), overrides, **classes, **extra)

    interrupt = InterruptCallback()
    callbacks = [RunLogCallback(run), ProgressCallback(), interrupt, *tracking_callbacks(config, run)]
    callbacks += evaluation_callbacks(config, run, tokenizer, data.eval_records if data.eval else [])
    callbacks += extra_callbacks
    callbacks += method.callbacks(model, config.method)
    if method.optimizer:
        trainer_class = partial(trainer_class, make_optimizer=partial(method.optimizer, cfg=config.method))
    parts = TrainerParts(config, model, tokenizer, data.train, data.eval, callbacks, run.path, arguments,
                         trainer_class)
    trainer = task.make_trainer(parts) if task.make_trainer else _default_trainer(parts, task, data, run)
    _drop_default_printers(trainer)
    return _fit(config, run, trainer, tokenizer, resume, interrupt, bool(data.eval), method)


def _resolve_auto(config: RunConfig, run: RunDir, rows: int) -> None:
    """Settle `auto` training values from the data; config.yaml keeps the numbers used."""
    notes = resolve_auto(config.train, rows, METHODS.get(config.method.name))
    if notes:
        run.write_config(config.model_dump(mode="json"))
        run.event("auto", "; ".join(f"{k} auto -> {v}" for k, v in notes.items()), **notes)


def _default_trainer(parts: TrainerParts, task, data, run: RunDir):
    """transformers' Trainer on the task's features, with our batching plan (packing or length
    grouping) and the LM head computed only where labels are (training/speed.py)."""
    args = parts.arguments()
    plan = prepare_speed(parts.config, task, parts.tokenizer, data, args, parts.model, run)
    trainer = parts.trainer_class(
        model=parts.model, args=args, train_dataset=plan.train, eval_dataset=plan.eval or None,
        data_collator=plan.collator, callbacks=parts.callbacks,
    )
    trainer.labelled_logits_only = plan.labelled_logits_only
    trainer.eval_data_collator = plan.eval_collator
    return trainer


def _fit(config, run, trainer, tokenizer, resume, interrupt, has_eval, method) -> RunResult:
    checkpoint = run.last_checkpoint() if resume else None
    if resume:
        run.event("resume", f"resuming from {checkpoint.name}" if checkpoint else "no checkpoint; starting over")
    before = {}
    if has_eval and config.eval.before_training and not checkpoint:
        before = _with_ppl(trainer.evaluate(metric_key_prefix="eval"), config)
        run.event("eval_before", f"eval loss before training: {before['eval_loss']:.4f}", **before)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if interrupt.requested:
        run.event("cancelled", f"interrupted at step {trainer.state.global_step}; checkpoint saved")
        return RunResult(run.path, "cancelled", before, {}, output.metrics)
    after = _with_ppl(trainer.evaluate(), config) if has_eval else {}
    if after:
        run.event("eval_after", f"eval loss after training: {after['eval_loss']:.4f}", **after)
    _save_final(trainer.model, tokenizer, run, method)
    results = {"eval_before": before, "eval_after": after, "train": output.metrics}
    write_json(run.path / "results.json", results)
    plot_loss(run.metrics_file, run.path / "plots" / "loss.png")
    plot_metrics(run.metrics_file, run.path / "plots" / "metrics.png")
    write_model_card(run, config, results)
    run.event("succeeded", "run finished", **{k: v for k, v in after.items() if k == "eval_loss"})
    return RunResult(run.path, "succeeded", before, after, output.metrics)


def _with_ppl(metrics: dict, config: RunConfig) -> dict:
    """Perplexity, for tasks whose eval loss is a language-model loss (not classification, DPO ...)."""
    loss = metrics.get("eval_loss")
    if loss is not None and TASKS.get(config.task.name).collator is CausalLMCollator:
        metrics["eval_perplexity"] = math.exp(min(loss, 50))
    return metrics


def _drop_default_printers(trainer) -> None:
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_callback import ProgressCallback as HFProgress

    for cls in (PrinterCallback, HFProgress):
        trainer.remove_callback(cls)


def _save_final(model, tokenizer, run: RunDir, method) -> None:
    """Write adapter/ or model/ (with tokenizer) whole, by renaming a finished temp folder."""
    target = run.adapter_dir if method.saves_adapter else run.model_dir
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=run.path))
    try:
        method.save_trained(model, tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    console.print(f"[green]saved[/] {target}")

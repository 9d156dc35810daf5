"""`train(config)`: the one call that the CLI, the jobs worker and the tests make."""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.config.schema import RunConfig
from tunesmith.errors import RunDirError
from tunesmith.methods import METHODS, trainable_parameters
from tunesmith.models import load_model, load_tokenizer, resolve_model
from tunesmith.tasks import TASKS
from tunesmith.training.callbacks import EarlyStoppingCallback, InterruptCallback, ProgressCallback, RunLogCallback
from tunesmith.training.data import prepare_data
from tunesmith.training.model_card import write_model_card
from tunesmith.training.plots import plot_loss
from tunesmith.training.precision import resolve_precision
from tunesmith.training.rundir import RunDir
from tunesmith.training.speed import prepare_speed
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


def train(config: RunConfig, *, resume: bool = False) -> RunResult:
    """Fine-tune as configured and write the run directory; resumable after a crash or Ctrl-C."""
    run = _open_run(config, resume)
    run.set_status("running")
    try:
        result = _train(config, run, resume)
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


def _train(config: RunConfig, run: RunDir, resume: bool) -> RunResult:
    import torch
    from transformers import set_seed

    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    set_seed(config.train.seed)
    task, method = TASKS.get(config.task.name), METHODS.get(config.method.name)
    model_dir = resolve_model(config.model.name_or_path)
    tokenizer = load_tokenizer(model_dir, config.model.trust_remote_code)
    data = prepare_data(config, tokenizer, task)
    write_json(run.path / "data_report.json", data.report)
    model = load_model(model_dir, task.model_class(), config.model.trust_remote_code)
    model = method.apply(model, config.method)
    if config.train.gradient_checkpointing:
        model.config.use_cache = False
    precision, note = resolve_precision(config.train.precision)
    trainable, total = trainable_parameters(model)
    run.event("setup", f"{method.name} on {config.model.name_or_path}: {trainable:,} of {total:,} "
              f"parameters train; {note}", trainable=trainable, total=total, precision=precision)
    from tunesmith.training.arguments import training_arguments

    args = training_arguments(config, run.checkpoints, precision, bool(data.eval))
    plan = prepare_speed(config, task, tokenizer, data, args, model, run)
    interrupt = InterruptCallback()
    callbacks = [RunLogCallback(run), ProgressCallback(), interrupt]
    if config.eval.early_stopping_patience and data.eval:
        callbacks.append(EarlyStoppingCallback(config.eval.early_stopping_patience))
    trainer = TunesmithTrainer(
        model=model, args=args, train_dataset=plan.train, eval_dataset=plan.eval or None,
        data_collator=plan.collator, callbacks=callbacks,
    )
    trainer.labelled_logits_only = plan.labelled_logits_only
    trainer.eval_data_collator = plan.eval_collator
    _drop_default_printers(trainer)
    return _fit(config, run, trainer, tokenizer, resume, interrupt, bool(data.eval), method)


def _fit(config, run, trainer, tokenizer, resume, interrupt, has_eval, method) -> RunResult:
    checkpoint = run.last_checkpoint() if resume else None
    if resume:
        run.event("resume", f"resuming from {checkpoint.name}" if checkpoint else "no checkpoint; starting over")
    before = {}
    if has_eval and config.eval.before_training and not checkpoint:
        before = _with_ppl(trainer.evaluate(metric_key_prefix="eval"))
        run.event("eval_before", f"eval loss before training: {before['eval_loss']:.4f}", **before)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if interrupt.requested:
        run.event("cancelled", f"interrupted at step {trainer.state.global_step}; checkpoint saved")
        return RunResult(run.path, "cancelled", before, {}, output.metrics)
    after = _with_ppl(trainer.evaluate()) if has_eval else {}
    if after:
        run.event("eval_after", f"eval loss after training: {after['eval_loss']:.4f}", **after)
    _save_final(trainer.model, tokenizer, run, method.saves_adapter)
    results = {"eval_before": before, "eval_after": after, "train": output.metrics}
    write_json(run.path / "results.json", results)
    plot_loss(run.metrics_file, run.path / "plots" / "loss.png")
    write_model_card(run, config, results)
    run.event("succeeded", "run finished", **{k: v for k, v in after.items() if k == "eval_loss"})
    return RunResult(run.path, "succeeded", before, after, output.metrics)


def _with_ppl(metrics: dict) -> dict:
    loss = metrics.get("eval_loss")
    if loss is not None:
        metrics["eval_perplexity"] = math.exp(min(loss, 50))
    return metrics


def _drop_default_printers(trainer) -> None:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback as HFProgress

    for cls in (PrinterCallback, HFProgress):
        trainer.remove_callback(cls)


def _save_final(model, tokenizer, run: RunDir, adapter: bool) -> None:
    """Write adapter/ or model/ (with tokenizer) whole, by renaming a finished temp folder."""
    target = run.adapter_dir if adapter else run.model_dir
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=run.path))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    console.print(f"[green]saved[/] {target}")

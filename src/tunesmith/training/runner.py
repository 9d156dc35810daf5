"""`train(config)`: the one call that the CLI, the jobs worker and the tests make."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tunesmith.config.schema import RunConfig
from tunesmith.continual.session import (
    Continual,
    anchor,
    earlier_evals,
    forgetting,
    plan_continual,
    start_model,
)
from tunesmith.data.prepare import PreparedData, prepare_data
from tunesmith.errors import ConfigError, RunDirError
from tunesmith.methods import METHODS, trainable_parameters
from tunesmith.models import load_model, load_tokenizer, resolve_model
from tunesmith.runs.cancel import CancelToken
from tunesmith.runs.events import Subscriber, as_subscribers
from tunesmith.runs.lock import LOCK_FILE, RunLock
from tunesmith.runs.rundir import RunDir
from tunesmith.tasks import TASKS, TrainerParts
from tunesmith.training.auto import resolve_auto
from tunesmith.training.callbacks import CancelCallback, EvaluationLog, InterruptCallback, RunLogCallback
from tunesmith.training.compile import compile_layers, compiler_missing
from tunesmith.training.distributed import (
    FollowerRun,
    SharedStop,
    gathered_state_dict,
    is_main,
    strategy_arguments,
    world_size,
)
from tunesmith.training.metric_callback import evaluation_callbacks
from tunesmith.training.model_card import write_model_card
from tunesmith.training.plots import plot_loss, plot_metrics
from tunesmith.training.precision import resolve_precision
from tunesmith.training.process import configure_process
from tunesmith.training.speed import prepare_speed
from tunesmith.training.tracking import tracking_callbacks
from tunesmith.training.trainer import TunesmithTrainer, with_optimizer
from tunesmith.utils.io import replace_dir, write_json


@dataclass
class RunResult:
    run_dir: Path
    status: str
    eval_before: dict = field(default_factory=dict)
    eval_after: dict = field(default_factory=dict)
    train_metrics: dict = field(default_factory=dict)
    run_id: str | None = None


@dataclass
class _Setup:
    """What a run needs before it writes anything: checked config, tokenizer and data."""

    task: object
    method: object
    model_dir: Path
    tokenizer: object
    data: PreparedData
    continual: Continual


def train(config: RunConfig, *, resume: bool = False, callbacks: Iterable = (), cancel: CancelToken | None = None,
          events: Subscriber | Iterable[Subscriber] | None = None, trainer_class=None) -> RunResult:
    """Fine-tune as configured and write the run directory; resumable after a crash, Ctrl-C or cancel.

    `callbacks`: extra TrainerCallbacks (a progress bar, a sweep's pruning callback ...).
    `cancel`: a CancelToken; once set (from any thread) training stops after the current optimizer
    step with a checkpoint and STATUS cancelled. Creating RUN/CANCEL does the same from any process.
    `events`: subscribers (callables, or one) called with every event dict also written to events.jsonl.
    `trainer_class` (default TunesmithTrainer) lets a variant such as distillation change the loss
    while keeping everything else of a run.
    The run directory has one writer: a second train() into it raises RunDirError naming the first;
    in a distributed run (training/launch.py) that is rank 0, the other ranks only read it.
    """
    if not config.output.dir:
        raise RunDirError("output.dir is not set; give a run directory, e.g. output.dir=runs/my-run")
    if not is_main():
        return _follow(config, resume, list(callbacks), cancel, trainer_class or TunesmithTrainer)
    run = RunDir(config.output.dir)
    if not (run.path / LOCK_FILE).exists():  # a lock file is made first: its folder is a run being written
        run.check_target(overwrite=True, resume=True)  # a folder that is not a run gets not even a lock file
    with run.lock() as lock:
        run.events.subscribe(*as_subscribers(events))
        return _locked_train(config, run, lock, resume, list(callbacks), cancel, trainer_class or TunesmithTrainer)


def _locked_train(config, run: RunDir, lock: RunLock, resume, callbacks, cancel, trainer_class) -> RunResult:
    run.check_target(overwrite=config.output.overwrite, resume=resume, inputs=input_paths(config))
    replacing = run.has_contents() and not resume  # an old run, replaced once the new one is known to be sound
    if not replacing:
        _start(run, config, lock)
    try:
        configure_process(config.train)
        setup = _setup(config)
        if replacing:
            run.clear()
            _start(run, config, lock)
            replacing = False
        result = _train(config, run, setup, resume, callbacks, cancel, trainer_class)
    except BaseException as err:
        if not replacing:  # (while replacing is still pending, the old run is whole: leave it be)
            cancelled = isinstance(err, KeyboardInterrupt)
            reason = "interrupted; resume with --resume" if cancelled else f"{type(err).__name__}: {err}"
            run.set_status("cancelled" if cancelled else "failed", reason)
            run.event("cancelled" if cancelled else "failed", reason)
        raise
    if result.status == "succeeded":
        run.set_status("succeeded")
    return result


def _follow(config: RunConfig, resume, callbacks, cancel, trainer_class) -> RunResult:
    """A process other than rank 0 of a distributed run: trains in step with it, writes nothing."""
    configure_process(config.train)
    run = FollowerRun(config.output.dir)
    return _train(config, run, _setup(config), resume, callbacks, cancel, trainer_class)


def _start(run: RunDir, config: RunConfig, lock: RunLock) -> None:
    run.start(config.model_dump(mode="json"))
    if lock.stale is not None:
        run.event("lock", f"took over the lock of {lock.stale.describe()}, which no longer runs")


def input_paths(config: RunConfig) -> list[Path]:
    """Existing files and folders the config reads (data files, a local model ...): a run that
    would be replaced must not hold them."""
    found: list[Path] = []

    def walk(value, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and value and not key.startswith("output.") and _exists(value):
            found.append(Path(value))

    walk(config.model_dump(mode="json"), "")
    return found


def _exists(text: str) -> bool:
    try:
        return Path(text).exists()
    except (OSError, ValueError):  # not a path at all: a long template, a NUL byte
        return False


def _setup(config: RunConfig) -> _Setup:
    """Check the config against its task and method and read the data; writes nothing."""
    task, method = TASKS.get(config.task.name), METHODS.get(config.method.name)
    reason = method.refusal(task) or (config.train.torch_compile and compiler_missing())
    if reason:
        raise ConfigError(reason)
    plan = plan_continual(config, method)  # model.from_run: the earlier run's base model and weights
    model_dir = resolve_model(config.model.name_or_path)  # model.from_run: set by plan_continual
    tokenizer = load_tokenizer(model_dir, config.model.trust_remote_code)
    data = prepare_data(config, tokenizer, task)
    if plan.active:
        plan.old_evals = earlier_evals(plan, task, tokenizer, config)
    return _Setup(task, method, model_dir, tokenizer, data, plan)


def _train(config: RunConfig, run: RunDir, setup: _Setup, resume: bool, extra_callbacks: list, cancel,
           trainer_class) -> RunResult:
    task, method, tokenizer, data = setup.task, setup.method, setup.tokenizer, setup.data
    if is_main():
        write_json(run.path / "data_report.json", data.report)
    plan = setup.continual
    if plan.active and is_main():
        from tunesmith.runs.lineage import record_lineage

        steps = record_lineage(run, config.model.from_run)
        run.event("continual", f"continues {plan.earlier.path} (chain of {len(steps)}); earlier eval sets: "
                  f"{', '.join(plan.old_evals) or 'none'}; regulariser "
                  f"{plan.regulariser.name if plan.regulariser else 'none'}", from_run=str(plan.earlier.path))
    for found in data.report.get("unreadable_text", []):  # a tokenizer that cannot read the data
        run.event("warning", found["message"], file=found["file"], unreadable_share=found["unreadable_share"])
    _resolve_auto(config, run, len(data.train))
    run.write_config(config.model_dump(mode="json"))  # again: tasks may learn settings from data (labels)
    load_kwargs = method.load_kwargs(config.method)
    load_kwargs.update(task.model_kwargs(config, tokenizer) if task.model_kwargs else {})
    if config.model.attn_implementation != "auto":
        load_kwargs["attn_implementation"] = config.model.attn_implementation
    model = load_model(setup.model_dir, task.model_class(), config.model.trust_remote_code, **load_kwargs)
    model = start_model(plan, model, config, method)
    if config.train.gradient_checkpointing:
        model.config.use_cache = False
    if config.train.torch_compile:
        layers = compile_layers(model)
        what = f"{layers} transformer layers" if layers else "the whole model (no transformer layers found)"
        run.event("setup", f"torch.compile: {what}; the first steps compile, later ones reuse it")
    precision, note = resolve_precision(config.train.precision)
    trainable, total = trainable_parameters(model)
    run.event("setup", f"{method.name} on {config.model.name_or_path}: {trainable:,} of {total:,} "
              f"parameters train; {note}", trainable=trainable, total=total, precision=precision)
    if world_size() > 1:
        d = config.train.distributed
        run.event("distributed", f"{world_size()} processes on {d.nnodes} machine(s), strategy {d.strategy}; "
                  f"rank 0 writes the run", world_size=world_size(), strategy=d.strategy)
    from tunesmith.training.arguments import training_arguments

    overrides = method.training_args(config.method)

    def arguments(args_class=None, **extra):
        classes = {"args_class": args_class} if args_class else {}
        extra = {**strategy_arguments(config), **extra}
        return training_arguments(config, run.checkpoints, precision, bool(data.eval), overrides, **classes, **extra)

    stops = [InterruptCallback(), CancelCallback(cancel, CancelToken(run.cancel_file))]
    evaluations = EvaluationLog()
    callbacks = [RunLogCallback(run), *stops, *([SharedStop(stops)] if world_size() > 1 else [])]
    callbacks += tracking_callbacks(config, run)
    callbacks += evaluation_callbacks(config, run, tokenizer, data.eval_records if data.eval else [])
    callbacks += [*extra_callbacks, evaluations]
    callbacks += method.callbacks(model, config.method)
    if method.optimizer:
        trainer_class = with_optimizer(trainer_class, partial(method.optimizer, cfg=config.method))
    parts = TrainerParts(config, model, tokenizer, data.train, data.eval, callbacks, run.path, arguments,
                         trainer_class)
    penalty = anchor(plan, model, run.path, task, tokenizer, config)
    trainer = task.make_trainer(parts) if task.make_trainer else _default_trainer(parts, task, data, run)
    if penalty is not None and not isinstance(trainer, TunesmithTrainer):
        raise ConfigError(f"train.regulariser: task {task.name} trains with {type(trainer).__name__}, which "
                          "takes no regulariser; drop train.regulariser (replay works for every task)")
    _check_extra_evals(trainer, task, config, plan, run)
    trainer.extra_evals = {**data.eval_by_task, **plan.old_evals}  # eval_<name>_loss beside eval_loss
    trainer.penalty = penalty
    _drop_default_printers(trainer)
    return _fit(config, run, trainer, tokenizer, resume, stops, evaluations if data.eval else None, method, plan)


def _check_extra_evals(trainer, task, config, plan: Continual, run: RunDir) -> None:
    """Each task's eval set (data.tasks) and the earlier tasks' (model.from_run) are measured by our
    Trainer's evaluate; a task trained by another trainer (TRL's, Seq2SeqTrainer) cannot report them."""
    if isinstance(trainer, TunesmithTrainer):
        return
    name = type(trainer).__name__
    if config.data.tasks:
        raise ConfigError(f"data.tasks: task {task.name} trains with {name}, which cannot report each task's "
                          "eval loss; pool their files in data.train (sft, pretrain, classification, label_words "
                          "and qa take data.tasks)")
    if plan.old_evals and is_main():
        run.event("warning", f"model.from_run: task {task.name} trains with {name}, which cannot measure the "
                  "earlier tasks' eval sets: no forgetting figures in results.json")


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


def _fit(config, run, trainer, tokenizer, resume, stops, evaluations: EvaluationLog | None, method,
         plan: Continual) -> RunResult:
    checkpoint = run.last_checkpoint() if resume else None
    resumed_at = int(checkpoint.name.split("-")[-1]) if checkpoint else 0
    if resume:
        run.event("resume", f"resuming from {checkpoint.name}" if checkpoint else "no checkpoint; starting over")
        run.trim_metrics(resumed_at)  # the steps after the checkpoint are trained (and logged) again
    before = {}
    if evaluations and config.eval.before_training and not checkpoint:
        before = _with_ppl(trainer.evaluate(metric_key_prefix="eval"), config)
        run.event("eval_before", f"eval loss before training: {before['eval_loss']:.4f}", **before)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    metrics = whole_run_train_loss(output.metrics, trainer.state.log_history, resumed_at, trainer.state.global_step)
    step = trainer.state.global_step
    if any(stop.requested for stop in stops):
        how = "interrupted" if stops[0].requested else "cancelled"
        run.set_status("cancelled", f"{how} at step {step}; resume with --resume")
        run.event("cancelled", f"{how} at step {step}; checkpoint saved", step=step)
        return RunResult(run.path, "cancelled", before, {}, metrics, run.id)
    after = _with_ppl(_final_evaluation(trainer, evaluations), config) if evaluations else {}
    if after:
        run.event("eval_after", f"eval loss after training: {after['eval_loss']:.4f}", **after)
    state = gathered_state_dict(trainer)  # every process takes part (FSDP, ZeRO-3); None: weights are whole
    if not is_main():
        return RunResult(run.path, "succeeded", before, after, metrics, run.id)
    _save_final(trainer.model, tokenizer, run, method, plan, state)
    results = {"eval_before": before, "eval_after": after, "train": metrics}
    if plan.active and before and after:
        results["forgetting"] = forgetting(before, after, list(plan.old_evals))
    write_json(run.path / "results.json", results)
    plot_loss(run.metrics_file, run.path / "plots" / "loss.png")
    plot_metrics(run.metrics_file, run.path / "plots" / "metrics.png")
    write_model_card(run, config, results)
    run.event("succeeded", "run finished", **{k: v for k, v in after.items() if k == "eval_loss"})
    return RunResult(run.path, "succeeded", before, after, metrics, run.id)


def _final_evaluation(trainer, evaluations: EvaluationLog) -> dict:
    """The evaluation of the weights training ended with. When the Trainer already evaluated them (at
    the last step, e.g. at the end of the last epoch, or at the best checkpoint it loaded back at the
    end), that evaluation is the answer: evaluating the same weights again costs a whole eval pass."""
    state = trainer.state
    step = state.global_step
    if trainer.args.load_best_model_at_end and state.best_model_checkpoint:
        step = int(Path(state.best_model_checkpoint).name.split("-")[-1])
    done = evaluations.by_step.get(step)
    return dict(done) if done is not None else trainer.evaluate()


def whole_run_train_loss(metrics: dict, history: list[dict], resumed_at: int, last_step: int) -> dict:
    """`metrics` with train_loss over the whole run: transformers averages the steps of this call
    only, so a resumed run weighs in the losses logged up to its checkpoint (log_history)."""
    if not resumed_at or "train_loss" not in metrics:
        return metrics
    total, covered = 0.0, 0
    for row in history:
        if "loss" in row and covered < row.get("step", 0) <= resumed_at:
            total += row["loss"] * (row["step"] - covered)
            covered = row["step"]
    now = last_step - resumed_at
    # a checkpoint logs its step (RunLogCallback), so covered == resumed_at but for older runs
    return {**metrics, "train_loss": (total + metrics["train_loss"] * now) / max(covered + now, 1)}


def _with_ppl(metrics: dict, config: RunConfig) -> dict:
    """Perplexity, for tasks whose eval loss is a language-model loss (not classification, DPO ...)."""
    loss = metrics.get("eval_loss")
    if loss is not None and TASKS.get(config.task.name).lm_loss:
        metrics["eval_perplexity"] = math.exp(min(loss, 50))
    return metrics


def _drop_default_printers(trainer) -> None:
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_callback import ProgressCallback as HFProgress

    for cls in (PrinterCallback, HFProgress):
        trainer.remove_callback(cls)


def _save_final(model, tokenizer, run: RunDir, method, plan: Continual, state: dict | None = None) -> None:
    """Write adapter/ or model/ (with tokenizer) whole, by renaming a finished temp folder.
    `state`: the whole weights of a sharded model, gathered from all processes."""
    target = run.adapter_dir if method.saves_adapter else run.model_dir
    with replace_dir(target) as tmp:
        if state is None:
            method.save_trained(model, tmp)
        else:  # (methods that save otherwise are refused sharding: training/distributed.py)
            model.save_pretrained(tmp, state_dict=state)
        if plan.regulariser is not None:  # O-LoRA writes the earlier and the new adapter as one
            plan.regulariser.save(model, tmp, plan.earlier)
        tokenizer.save_pretrained(tmp)
    run.event("saved", f"saved {target}", path=str(target))

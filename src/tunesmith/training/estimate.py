"""`tunesmith estimate`: tokens, steps, peak memory and time of a run, from a short measured warm-up.

The warm-up is the real thing: the same model, method, precision, batching and Trainer as
`train(config)`, for a few optimizer steps in a throwaway directory. The first step is left out
of the rate (kernel selection, allocator warm-up); the rest give real tokens per second, which
times the run's real tokens gives the training time.
"""

from __future__ import annotations

import math
import resource
import tempfile
import time
from dataclasses import asdict, dataclass

from transformers import TrainerCallback

from tunesmith.errors import ConfigError


@dataclass
class Estimate:
    examples: int
    rows_after_batching: int
    real_tokens: int
    trainable_tokens: int
    eval_tokens: int
    steps_per_epoch: int
    total_steps: int
    batching: str
    precision: str
    warmup_steps: int
    real_tokens_per_second: float
    seconds_per_step: float
    train_seconds: float
    eval_seconds: float
    total_seconds: float
    peak_memory_mb: float
    memory_kind: str

    def as_dict(self) -> dict:
        return asdict(self)


class _StepTimer(TrainerCallback):
    def __init__(self):
        self.marks: list[tuple[float, int]] = []

    def on_step_begin(self, args, state, control, **kw):
        if not self.marks:
            self.marks.append((time.perf_counter(), state.num_input_tokens_seen))

    def on_step_end(self, args, state, control, **kw):
        self.marks.append((time.perf_counter(), state.num_input_tokens_seen))


def _total_steps(config, batches_per_epoch: int) -> tuple[int, int]:
    t = config.train
    per_epoch = max(1, math.ceil(batches_per_epoch / t.grad_accum))
    total = t.max_steps if t.max_steps > 0 else math.ceil(t.epochs * per_epoch)
    return per_epoch, total


def _peak_memory() -> tuple[float, str]:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "GPU allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process RSS"


def _setup(config):
    """Model, data and batching exactly as the runner builds them."""
    from tunesmith.data.prepare import prepare_data
    from tunesmith.methods import METHODS
    from tunesmith.models import load_model, load_tokenizer, resolve_model
    from tunesmith.tasks import TASKS
    from tunesmith.training.batching import plan_batching
    from tunesmith.training.loss import supports_labelled_logits
    from tunesmith.training.speed import attention_span

    task, method = TASKS.get(config.task.name), METHODS.get(config.method.name)
    model_dir = resolve_model(config.model.name_or_path)
    tokenizer = load_tokenizer(model_dir, config.model.trust_remote_code)
    data = prepare_data(config, tokenizer, task)
    model = method.apply(load_model(model_dir, task.model_class(), config.model.trust_remote_code), config.method)
    plan = plan_batching(config, task, tokenizer, data.train, data.eval, attention_span(model))
    plan.labelled_logits_only = config.train.labelled_logits_only and supports_labelled_logits(model)
    return model, data, plan


def estimate(config, warmup_steps: int = 4) -> Estimate:
    """Measure `warmup_steps` optimizer steps (the first is not timed) and extrapolate."""
    from tunesmith.training.arguments import training_arguments
    from tunesmith.training.precision import resolve_precision
    from tunesmith.training.process import configure_process
    from tunesmith.training.trainer import TunesmithTrainer

    if warmup_steps < 2:
        raise ConfigError("estimate needs at least 2 warm-up steps (the first one is not timed)")
    configure_process(config.train)
    model, data, plan = _setup(config)
    precision, _ = resolve_precision(config.train.precision)
    measured = config.model_copy(deep=True)
    measured.train.max_steps = warmup_steps
    timer = _StepTimer()
    with tempfile.TemporaryDirectory(prefix="tunesmith-estimate-") as tmp:
        measured.train.save_steps = warmup_steps + 1
        args = training_arguments(measured, tmp, precision, has_eval=False)
        plan.apply(args, model)
        trainer = TunesmithTrainer(model=model, args=args, train_dataset=plan.train,
                                   data_collator=plan.collator, callbacks=[timer])
        trainer.labelled_logits_only = plan.labelled_logits_only
        trainer.eval_data_collator = plan.eval_collator
        _quiet(trainer)
        trainer.train()
        eval_rate = _eval_rate(trainer, plan) if plan.eval else None
    return _extrapolate(config, data, plan, precision, timer, warmup_steps, eval_rate)


def _quiet(trainer) -> None:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cls in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cls)


def _eval_rate(trainer, plan) -> float:
    """Real tokens per second of evaluation, from one timed eval batch."""
    import torch

    batch_size = trainer.args.per_device_eval_batch_size
    features = plan.eval[:batch_size]
    inputs = trainer._prepare_inputs((plan.eval_collator or plan.collator)(features))
    start = time.perf_counter()
    with torch.no_grad(), trainer.autocast_smart_context_manager():
        trainer.prediction_step(trainer.model, inputs, prediction_loss_only=True)
    return sum(len(f["input_ids"]) for f in features) / max(time.perf_counter() - start, 1e-6)


def _extrapolate(config, data, plan, precision, timer, warmup_steps, eval_rate) -> Estimate:
    (t0, n0), (t1, n1) = timer.marks[1], timer.marks[-1]  # from the end of the first step
    rate = (n1 - n0) / (t1 - t0) if t1 > t0 and n1 > n0 else 0.0
    real_tokens = sum(len(f["input_ids"]) for f in data.train)
    batches = math.ceil(len(plan.train) / config.train.batch_size)
    per_epoch, total = _total_steps(config, batches)
    epochs_done = total / per_epoch
    train_seconds = real_tokens * epochs_done / rate if rate else float("inf")
    eval_tokens = sum(len(f["input_ids"]) for f in data.eval)
    evaluations = (1 + (1 if config.eval.before_training else 0)) if data.eval else 0
    if data.eval and config.eval.steps:
        evaluations = total // config.eval.steps + (1 if config.eval.before_training else 0) + 1
    elif data.eval:
        evaluations += max(0, math.ceil(epochs_done) - 1)
    eval_seconds = evaluations * eval_tokens / eval_rate if eval_rate else 0.0
    memory, kind = _peak_memory()
    return Estimate(
        examples=len(data.train), rows_after_batching=len(plan.train), real_tokens=real_tokens,
        trainable_tokens=data.report["train"].get("trainable_tokens", 0), eval_tokens=eval_tokens,
        steps_per_epoch=per_epoch, total_steps=total, batching=plan.mode, precision=precision,
        warmup_steps=warmup_steps, real_tokens_per_second=round(rate, 1),
        seconds_per_step=round(train_seconds / total, 3) if total else 0.0,
        train_seconds=round(train_seconds, 3), eval_seconds=round(eval_seconds, 3),
        total_seconds=round(train_seconds + eval_seconds, 3), peak_memory_mb=round(memory, 1),
        memory_kind=kind,
    )

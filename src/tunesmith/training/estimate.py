"""`tunesmith estimate`: tokens, steps, peak memory and time of a run, from a short measured warm-up.

The warm-up is the run itself, cut short: `train()` on a copy of the config whose run directory is
a throwaway folder (never the user's), for a few optimizer steps with one checkpoint and one
evaluation on the way. A clock on the Trainer's callbacks times each part: setting up (model,
data, trainer), optimizer steps (the first is left out: kernel selection, allocator warm-up), a
checkpoint, an evaluation (generation metrics included), and finishing (final save, plots, card).
The run's own counts of steps, evaluations and checkpoints then scale each part. A fixed speed
figure cannot do this: the same model trains at 2x different speeds on two machines, or with
another batch, cutoff or method.
"""

from __future__ import annotations

import math
import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import TrainerCallback

from tunesmith.errors import ConfigError


@dataclass
class Estimate:
    examples: int
    eval_examples: int
    examples_per_step: int
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
    setup_seconds: float
    train_seconds: float
    evaluations: int
    eval_seconds: float
    checkpoints: int
    checkpoint_seconds: float
    finish_seconds: float
    total_seconds: float
    peak_memory_mb: float
    memory_kind: str

    def as_dict(self) -> dict:
        return asdict(self)


class _Clock(TrainerCallback):
    """Times of the warm-up's callbacks: (what, time, step, tokens seen)."""

    def __init__(self, timer):
        self.timer = timer
        self.marks: list[tuple[str, float, int, int]] = []
        self.batches = self.rows = 0

    def _mark(self, what, state):
        self.marks.append((what, self.timer(), state.global_step, state.num_input_tokens_seen))

    def on_train_begin(self, args, state, control, train_dataloader=None, **kw):
        if train_dataloader is not None:
            self.batches = len(train_dataloader)
            self.rows = len(getattr(train_dataloader, "dataset", None) or [])
        self._mark("begin", state)

    def on_step_end(self, args, state, control, **kw):
        self._mark("step", state)

    def on_evaluate(self, args, state, control, **kw):
        self._mark("eval", state)

    def on_save(self, args, state, control, **kw):
        self._mark("save", state)

    def on_train_end(self, args, state, control, **kw):
        self._mark("end", state)


@dataclass
class _Timings:
    setup: float  # to the end of the first step, less an ordinary step: loading, data, first-step warm-up
    steps: int  # timed optimizer steps (all but the first)
    step_seconds: float  # their wall time, evaluations and checkpoints taken out
    tokens: int  # real tokens of those steps (0 when the trainer does not count them: TRL)
    eval_seconds: float | None
    save_seconds: float | None
    finish: float


def _timings(clock: _Clock, started: float, returned: float) -> _Timings:
    begin, end = (next(t for what, t, *_ in clock.marks if what == kind) for kind in ("begin", "end"))
    steps = [(t, step, seen) for what, t, step, seen in clock.marks if what == "step"]
    evals, saves = [], []  # (when it ended, how long it took: from the mark before it)
    previous = begin
    for what, t, *_ in clock.marks:
        if what == "eval" and t < end:
            evals.append((t, t - previous))
        elif what == "save":
            saves.append((t, t - previous))
        previous = t
    (t0, s0, n0), (t1, s1, n1) = steps[0], steps[-1]
    inside = sum(d for when, d in evals + saves if t0 < when <= t1)

    def mean(parts):
        return sum(d for _, d in parts) / len(parts) if parts else None

    seconds = max(t1 - t0 - inside, 1e-6)
    return _Timings(max(t0 - started - seconds / max(s1 - s0, 1), 0.0), s1 - s0, seconds, n1 - n0, mean(evals),
                    mean(saves), returned - end)


def _warmup_config(config, run_dir: str, steps: int):
    """The config cut to `steps` optimizer steps in `run_dir`, with a checkpoint after step 2 and an
    evaluation at the last step (the run's final evaluation reuses it), nothing reported outside."""
    measured = config.model_copy(deep=True)
    measured.output.dir, measured.output.overwrite = run_dir, True
    measured.train.max_steps, measured.train.save_steps = steps, 2
    measured.train.report_to = ["none"]
    measured.eval.steps, measured.eval.before_training = steps, False
    measured.eval.load_best_at_end, measured.eval.early_stopping_patience = False, None
    return measured


def estimate(config, warmup_steps: int = 4, timer=time.perf_counter) -> Estimate:
    """Train `warmup_steps` optimizer steps of `config` in a throwaway folder and extrapolate.
    `timer`: wall time by default; `time.process_time` gives the CPU seconds of this process, what
    the run would take on a machine it had to itself (other work on a shared machine left out)."""
    from tunesmith.training.runner import train

    if warmup_steps < 3:
        raise ConfigError("estimate needs at least 3 warm-up steps (the first is not timed, one saves a checkpoint)")
    clock, events = _Clock(timer), []
    with tempfile.TemporaryDirectory(prefix="tunesmith-estimate-") as tmp:
        run_dir = Path(tmp) / "run"
        started = timer()
        train(_warmup_config(config, str(run_dir), warmup_steps), callbacks=[clock], events=events.append)
        timings = _timings(clock, started, timer())
        report = _read_json(run_dir / "data_report.json")
        settled = _read_yaml(run_dir / "config.yaml")["train"]  # `auto` batch size and epochs, as the run sets them
    resolved = {**config.train.model_dump(), "batch_size": settled["batch_size"], "epochs": settled["epochs"]}
    kinds = {e["event"]: e for e in events}
    return _extrapolate(config, resolved, report, clock, timings, kinds, warmup_steps)


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def _read_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _run_counts(config, train: dict, batches: int) -> dict:
    """Steps per epoch, total optimizer steps, evaluations and checkpoints of the full run (its
    `train` section with `auto` values settled), as the Trainer will schedule them."""
    e = config.eval
    per_epoch = max(1, math.ceil(batches / train["grad_accum"]))
    total = train["max_steps"] if train["max_steps"] > 0 else math.ceil(train["epochs"] * per_epoch)
    every = e.steps or per_epoch
    during = math.ceil(total / every)  # the last step evaluates too, and the run's final evaluation reuses it
    evaluations = int(e.before_training) + during
    save_every = every if e.load_best_at_end else train["save_steps"]
    checkpoints = math.ceil(total / save_every)  # the last step saves too
    return {"per_epoch": per_epoch, "total": total, "evaluations": evaluations, "checkpoints": checkpoints}


def _extrapolate(config, train: dict, report: dict, clock: _Clock, t: _Timings, events: dict,
                 warmup_steps: int) -> Estimate:
    has_eval = bool(report["eval"].get("rows"))
    counts = _run_counts(config, train, clock.batches)
    total, epochs = counts["total"], counts["total"] / counts["per_epoch"]
    real_tokens = report["train"].get("tokens", 0)
    rate = t.tokens / t.step_seconds if t.tokens else 0.0
    per_step = t.step_seconds / max(t.steps, 1)
    train_seconds = real_tokens * epochs / rate if rate and real_tokens else per_step * total
    evaluations = counts["evaluations"] if has_eval else 0
    eval_seconds = evaluations * (t.eval_seconds or 0.0)
    checkpoint_seconds = counts["checkpoints"] * (t.save_seconds or 0.0)
    total_seconds = t.setup + train_seconds + eval_seconds + checkpoint_seconds + t.finish
    memory, kind = _peak_memory()
    return Estimate(
        examples=report["train"].get("records", 0), eval_examples=report["eval"].get("records", 0),
        examples_per_step=train["batch_size"] * train["grad_accum"], rows_after_batching=clock.rows,
        real_tokens=real_tokens,
        trainable_tokens=report["train"].get("trainable_tokens", 0), eval_tokens=report["eval"].get("tokens", 0),
        steps_per_epoch=counts["per_epoch"], total_steps=total,
        batching=events.get("speed", {}).get("batching", "trainer"),
        precision=events.get("setup", {}).get("precision", "?"), warmup_steps=warmup_steps,
        real_tokens_per_second=round(rate, 1), seconds_per_step=round(train_seconds / total, 3) if total else 0.0,
        setup_seconds=round(t.setup, 3), train_seconds=round(train_seconds, 3), evaluations=evaluations,
        eval_seconds=round(eval_seconds, 3), checkpoints=counts["checkpoints"],
        checkpoint_seconds=round(checkpoint_seconds, 3), finish_seconds=round(t.finish, 3),
        total_seconds=round(total_seconds, 3), peak_memory_mb=round(memory, 1), memory_kind=kind,
    )


def _peak_memory() -> tuple[float, str]:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "GPU allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process RSS"

"""Measurement shared by every benchmark leg, imported inside the leg's own process and venv.

It wraps `transformers.Trainer.training_step` (which LLaMA-Factory, the plain-Trainer baseline and
tunesmith all go through) to count, per micro-batch, the tokens processed (`input_ids.numel()`)
and the real ones (attention_mask sum; batches without a mask are packed: their padding is a
trailing run of pad ids without labels). A callback added to every Trainer times the optimizer
steps: from the first step's begin to the last step's end, so data loading, collation, forward,
backward and the optimizer all count, and evaluation does not. The loop's CPU time is kept too:
on a machine shared with other work, tokens per CPU-second move much less than tokens per second. `Trainer.log` is wrapped to keep
the logged losses. At exit it writes a JSON file with these counts and the peak RSS.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import time

STATS = {"micro_batches": 0, "tokens_processed": 0, "tokens_real": 0, "steps": 0,
         "loop_seconds": 0.0, "first_step_seconds": None, "logs": []}


def _real_tokens(inputs) -> int:
    mask = inputs.get("attention_mask")
    if mask is not None:
        return int(mask.sum())
    ids = inputs["input_ids"]
    positions = inputs.get("position_ids")
    labels = inputs.get("labels")
    pad = int(os.environ.get("BENCH_PAD_ID", "-1"))
    if positions is None or labels is None or pad < 0:
        return ids.numel()
    # A packed row's padding is a trailing run of pad ids with no label (data/packing.py).
    real = 0
    for row_ids, row_labels in zip(ids.tolist(), labels.tolist()):
        n = len(row_ids)
        while n and row_ids[n - 1] == pad and row_labels[n - 1] == -100:
            n -= 1
        real += n
    return real


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all threads): what the work cost, whatever else ran."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def install() -> None:
    from transformers import Trainer, TrainerCallback

    class StepClock(TrainerCallback):
        begin = None

        def on_step_begin(self, args, state, control, **kw):
            if StepClock.begin is None:
                StepClock.begin = time.perf_counter()
                StepClock.cpu_begin = _cpu_seconds()

        def on_step_end(self, args, state, control, **kw):
            now = time.perf_counter()
            STATS["steps"] += 1
            STATS["loop_seconds"] = now - StepClock.begin
            STATS["loop_cpu_seconds"] = _cpu_seconds() - StepClock.cpu_begin
            if STATS["first_step_seconds"] is None:
                STATS["first_step_seconds"] = STATS["loop_seconds"]
                STATS["tokens_real_first_step"] = STATS["tokens_real"]

    init, step, log = Trainer.__init__, Trainer.training_step, Trainer.log

    def patched_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(StepClock())

    def training_step(self, model, inputs, *args, **kwargs):
        loss = step(self, model, inputs, *args, **kwargs)
        STATS["micro_batches"] += 1
        STATS["tokens_processed"] += int(inputs["input_ids"].numel())
        STATS["tokens_real"] += _real_tokens(inputs)
        return loss

    def logged(self, logs, *args, **kwargs):
        STATS["logs"].append({"step": self.state.global_step, **{k: v for k, v in logs.items()
                                                                 if isinstance(v, (int, float))}})
        return log(self, logs, *args, **kwargs)

    Trainer.__init__, Trainer.training_step, Trainer.log = patched_init, training_step, logged
    start = time.perf_counter()

    def dump() -> None:
        STATS["wall_seconds"] = time.perf_counter() - start
        STATS["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out = os.environ.get("BENCH_PROBE_OUT")
        if out:
            with open(out, "w") as f:
                json.dump(STATS, f)

    atexit.register(dump)

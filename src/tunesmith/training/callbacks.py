"""Trainer callbacks: the run's logs, a progress bar, early stopping, clean interruption and
cancellation. The progress bar is for front ends: the caller of train() adds it."""

from __future__ import annotations

import signal
import time
from contextlib import ExitStack

from transformers import TrainerCallback

from tunesmith.runs.rundir import RunDir
from tunesmith.utils.progress import progress


class RunLogCallback(TrainerCallback):
    """metrics.jsonl (one line per log) and events.jsonl (lifecycle) in the run directory."""

    def __init__(self, run: RunDir):
        self.run = run
        self._last = (time.time(), 0)

    def on_train_begin(self, args, state, control, **kw):
        self.run.event("train_begin", f"training for {state.max_steps} steps", max_steps=state.max_steps,
                       step=state.global_step)  # a resumed run begins at its checkpoint's step
        self._last = (time.time(), state.num_input_tokens_seen)

    def on_log(self, args, state, control, logs=None, **kw):
        row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        row.update({k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))})
        if "loss" in row:
            now, tokens = time.time(), state.num_input_tokens_seen
            elapsed = now - self._last[0]
            if elapsed > 0 and tokens > self._last[1]:
                row["tokens_per_second"] = round((tokens - self._last[1]) / elapsed, 1)
            self._last = (now, tokens)
        self.run.log_metrics(row)

    def on_step_end(self, args, state, control, **kw):
        if control.should_save:  # the checkpoint's log history then covers every step up to it,
            control.should_log = True  # so a resumed run can report its whole-run train loss

    def on_save(self, args, state, control, **kw):
        self.run.event("checkpoint", f"checkpoint at step {state.global_step}", step=state.global_step)

    def on_train_end(self, args, state, control, **kw):
        self.run.event("train_end", f"stopped at step {state.global_step}", step=state.global_step)


class ProgressCallback(TrainerCallback):
    """A progress bar (utils.progress reporter) with loss and real (non-padding) tokens per second."""

    def __init__(self):
        self.bar = ExitStack()  # the progress block spans on_train_begin .. on_train_end
        self.advance = None
        self.start = (0.0, 0)  # time, tokens seen
        self.step = 0  # the last step the bar shows

    def on_train_begin(self, args, state, control, **kw):
        self.advance = self.bar.enter_context(progress("train", state.max_steps))
        self.advance(state.global_step)  # a resumed run starts where it stopped
        self.start, self.step = (time.time(), state.num_input_tokens_seen), state.global_step

    def on_step_end(self, args, state, control, **kw):
        elapsed = time.time() - self.start[0]
        rate = (state.num_input_tokens_seen - self.start[1]) / elapsed if elapsed else 0.0
        loss = next((h["loss"] for h in reversed(state.log_history) if "loss" in h), None)
        info = f"loss {loss:.4f} · {rate:.0f} tok/s" if loss is not None else f"{rate:.0f} tok/s"
        self.advance(state.global_step - self.step, info=info)
        self.step = state.global_step

    def on_train_end(self, args, state, control, **kw):
        self.bar.close()


class EvaluationLog(TrainerCallback):
    """Every evaluation's metrics by the step it ran at: the dict the Trainer returns, with what the
    other callbacks added to it (eval_perplexity, generation scores). The runner reads the final
    evaluation from here instead of evaluating the same weights a second time."""

    def __init__(self):
        self.by_step: dict[int, dict] = {}

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        if metrics is not None:
            self.by_step[state.global_step] = metrics  # the dict itself: later callbacks still add to it


class EarlyStoppingCallback(TrainerCallback):
    """Stop after `patience` evaluations without improvement of `metric`."""

    def __init__(self, patience: int, metric: str = "eval_loss", greater_is_better: bool = False):
        self.patience, self.metric, self.greater = patience, metric, greater_is_better
        self.best: float | None = None
        self.bad = 0

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        value = (metrics or {}).get(self.metric)
        if value is None or state.global_step == 0:
            return
        better = self.best is None or (value > self.best if self.greater else value < self.best)
        self.best, self.bad = (value, 0) if better else (self.best, self.bad + 1)
        if self.bad >= self.patience:
            control.should_training_stop = True


def stop_with_checkpoint(control) -> None:
    """End training after this optimizer step, with a checkpoint and the step's loss logged."""
    control.should_save = control.should_log = True
    control.should_training_stop = True


class CancelCallback(TrainerCallback):
    """Stops at the end of the first optimizer step at which any of `tokens` (runs/cancel.py)
    is set: a checkpoint is saved and the run ends cancelled, as with Ctrl-C."""

    def __init__(self, *tokens):
        self.tokens = [t for t in tokens if t is not None]
        self.requested = False

    def on_step_end(self, args, state, control, **kw):
        if any(token.is_set() for token in self.tokens):
            self.requested = True
            stop_with_checkpoint(control)


class InterruptCallback(TrainerCallback):
    """Ctrl-C / SIGTERM: finish the current step, save a checkpoint, stop. A second Ctrl-C aborts."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def on_train_begin(self, args, state, control, **kw):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def on_step_end(self, args, state, control, **kw):
        if self.requested:
            stop_with_checkpoint(control)

    def on_train_end(self, args, state, control, **kw):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

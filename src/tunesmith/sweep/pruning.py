"""Report a trial's intermediate metric to Optuna and stop the run when its pruner says so."""

from __future__ import annotations

from transformers import TrainerCallback


class PruningCallback(TrainerCallback):
    """trial.report(metric, step) each time the run logs the metric after step 0 (evaluations
    for eval_* metrics, logging steps for train loss); if trial.should_prune(), the
    run stops like an early-stopped run (its directory stays complete and readable) and the
    sweep marks the trial pruned."""

    def __init__(self, trial, metric: str):
        self.trial, self.metric = trial, metric
        self.reported: set[int] = set()
        self.pruned_at: int | None = None

    def on_log(self, args, state, control, logs=None, **kw):
        value = (logs or {}).get(self.metric)
        step = state.global_step
        # step 0 is the untuned model (the same for every trial); a step already reported is
        # the final evaluation repeating the last scheduled one
        if value is None or step == 0 or step in self.reported or self.pruned_at is not None:
            return
        self.reported.add(step)
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            self.pruned_at = step
            control.should_training_stop = True

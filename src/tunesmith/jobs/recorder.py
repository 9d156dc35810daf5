"""What a running job tells the store: the run's events as job events, each logged step as a
metrics event, each checkpoint as a checkpoint row (servable by its `ft:...:ckpt-step-N` name),
the estimated finish and the tokens trained. Runs in the training process (jobs.child)."""

from __future__ import annotations

import time

from transformers import TrainerCallback

from tunesmith.jobs.jobs import add_event
from tunesmith.jobs.store import Store, new_id, now
from tunesmith.jobs.tables import checkpoints, jobs

QUIET = {"lock", "speed"}  # run bookkeeping that a job's event list need not show
LEVELS = {"failed": "error", "cancelled": "warn"}


class Recorder(TrainerCallback):
    def __init__(self, store: Store, job: dict, model_name: str):
        self.store, self.job_id, self.model_name = store, job["id"], model_name
        self.last: dict = {}  # the latest step metrics, given to the next checkpoint
        self.started: tuple[float, int] | None = None

    # --- run events (subscriber of tunesmith.train's events) -------------------------------------
    def event(self, row: dict) -> None:
        kind = row["event"]
        if kind in QUIET:
            return
        with self.store.write() as connection:
            if kind == "checkpoint":
                self._checkpoint(connection, row["step"])
            message = "Fine-tuning job started" if kind == "train_begin" else row["message"]
            add_event(connection, self.job_id, message, level=LEVELS.get(kind, "info"))

    def _checkpoint(self, connection, step: int) -> None:
        path = self.store.run_dir(self.job_id) / "checkpoints" / f"checkpoint-{step}"
        exists = connection.execute(checkpoints.select().where(
            checkpoints.c.job_id == self.job_id, checkpoints.c.step_number == step)).first()
        values = {"model": f"{self.model_name}:ckpt-step-{step}", "path": str(path.relative_to(self.store.storage)),
                  "metrics": {"step": float(step), **{k: v for k, v in self.last.items() if k != "step"}},
                  "created_at": now()}
        if exists:  # a resumed job saves a step again: the newer files replace the row's figures
            connection.execute(checkpoints.update().where(checkpoints.c.id == exists.id).values(**values))
        else:
            connection.execute(checkpoints.insert().values(id=new_id("ftckpt"), job_id=self.job_id,
                                                           step_number=step, **values))

    # --- steps (a TrainerCallback) ----------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kw):
        self.started = (time.time(), state.global_step)

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        data = {"step": state.global_step, "total_steps": state.max_steps}
        if "loss" in logs:
            data["train_loss"] = logs["loss"]
        if "mean_token_accuracy" in logs:
            data["train_mean_token_accuracy"] = logs["mean_token_accuracy"]
        if "eval_loss" in logs:
            data["valid_loss"] = logs["eval_loss"]
        if len(data) == 2:
            return
        self.last.update(data)
        figures = ", ".join(f"{k.replace('_', ' ')}={v:.4f}" for k, v in data.items() if isinstance(v, float))
        values = {"estimated_finish": self._finish_time(state)}
        if state.num_input_tokens_seen:
            values["trained_tokens"] = int(state.num_input_tokens_seen)
        with self.store.write() as connection:
            add_event(connection, self.job_id, f"Step {state.global_step}/{state.max_steps}: {figures}",
                      type="metrics", data=data)
            connection.execute(jobs.update().where(jobs.c.id == self.job_id).values(**values))

    def _finish_time(self, state) -> int | None:
        """Now plus the remaining steps at the rate measured since this process began training."""
        if self.started is None or state.global_step <= self.started[1]:
            return None
        per_step = (time.time() - self.started[0]) / (state.global_step - self.started[1])
        return int(time.time() + per_step * max(0, state.max_steps - state.global_step))

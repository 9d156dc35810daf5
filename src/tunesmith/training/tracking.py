"""Experiment trackers (`train.report_to`): TensorBoard event files and MLflow runs.

TensorBoard uses transformers' own callback, pointed at RUN/tensorboard. MLflow has its own
callback here because transformers' MLflowCallback takes its tracking URI and experiment
from process-wide environment variables (parallel sweep trials would share them) and logs
every TrainingArguments field; ours logs the run's own config keys through an MlflowClient
bound to one URI, and reuses the MLflow run when a tunesmith run is resumed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

from tunesmith.errors import ConfigError
from tunesmith.runs.rundir import RunDir
from tunesmith.training.process import allow_mlflow_file_store
from tunesmith.utils.flat import flatten
from tunesmith.utils.io import write_json

MLFLOW_FILE = "mlflow.json"  # in the run dir: where its MLflow run lives


def tracking_callbacks(config, run: RunDir) -> list[TrainerCallback]:
    trackers = [t for t in config.train.report_to if t != "none"]
    callbacks: list[TrainerCallback] = []
    if "tensorboard" in trackers:
        from transformers.integrations import TensorBoardCallback, is_tensorboard_available

        if not is_tensorboard_available():
            raise ConfigError("train.report_to: tensorboard needs the tensorboard package: pip install tensorboard")

        tensorboard = TensorBoardCallback()
        tensorboard.logging_dir = str(run.path / "tensorboard")
        callbacks.append(tensorboard)
    if "mlflow" in trackers:
        callbacks.append(MlflowCallback(config, run))
    return callbacks


def default_tracking_uri(run_path: Path) -> str:
    """A local MLflow file store shared by the runs of one folder: <folder>/mlruns."""
    return (run_path.resolve().parent / "mlruns").as_uri()


def mlflow_client(uri: str):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError("train.report_to: mlflow needs the mlflow package: pip install mlflow-skinny") from None
    if uri.startswith("file:"):
        allow_mlflow_file_store()  # the one environment variable tunesmith sets (training/process.py)
    return MlflowClient(tracking_uri=uri)




class MlflowCallback(TrainerCallback):
    """Params (flattened config), metrics per logged step, and the run's final status."""

    def __init__(self, config, run: RunDir):
        self.run = run
        self.uri = config.train.tracking_uri or default_tracking_uri(run.path)
        self.experiment = config.train.experiment or run.path.resolve().parent.name or "tunesmith"
        self.config = config
        self.client = None
        self.run_id: str | None = None

    def on_train_begin(self, args, state, control, **kw):
        self.client = mlflow_client(self.uri)
        known = self.run.path / MLFLOW_FILE
        if known.is_file() and json.loads(known.read_text()).get("tracking_uri") == self.uri:
            self.run_id = json.loads(known.read_text())["run_id"]  # a resumed run continues
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self.client.get_experiment_by_name(self.experiment)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(self.experiment)
        tags = {"tunesmith.run_dir": str(self.run.path.resolve()), "mlflow.source.name": "tunesmith"}
        mlrun = self.client.create_run(experiment_id, run_name=self.run.path.name, tags=tags)
        self.run_id = mlrun.info.run_id
        self._log_params(self.config.model_dump(mode="json"))
        write_json(known, {"tracking_uri": self.uri, "experiment": self.experiment, "run_id": self.run_id})
        self.run.event("mlflow", f"MLflow run {self.run_id} in {self.uri}", run_id=self.run_id)

    def _log_params(self, config: dict) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)[:6000]) for k, v in flatten(config).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[start:start + 100])

    def on_log(self, args, state, control, logs=None, **kw):
        if self.client is None or self.run_id is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, state.global_step) for k, v in (logs or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def on_train_end(self, args, state, control, **kw):
        # the final evaluation after training still logs into this run (MLflow allows it)
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id, "FINISHED")


def read_tensorboard_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} from every event file under RUN/tensorboard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[tuple[int, float]]] = {}
    for folder in sorted({p.parent for p in Path(run_dir, "tensorboard").rglob("events.out.tfevents.*")}):
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return scalars


def read_mlflow_run(run_dir: str | Path) -> dict:
    """The MLflow run a tunesmith run logged to: params, final metrics and metric histories."""
    info = json.loads(Path(run_dir, MLFLOW_FILE).read_text())
    client = mlflow_client(info["tracking_uri"])
    mlrun = client.get_run(info["run_id"])
    history = {key: [(m.step, m.value) for m in client.get_metric_history(info["run_id"], key)]
               for key in mlrun.data.metrics}
    return {"run_id": info["run_id"], "status": mlrun.info.status, "params": mlrun.data.params,
            "metrics": mlrun.data.metrics, "history": history, "experiment": info["experiment"]}

"""An Optuna study whose trials are ordinary tunesmith runs in one sweep folder.

The study lives in an SQL database (SQLite in the sweep folder by default, or any Optuna
storage URL shared by several machines), so `tunesmith sweep` run again continues it:
finished trials are kept, and a trial cut short by Ctrl-C or a crash is run again with the
same parameters, resuming its run directory from the last checkpoint.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from tunesmith.config import load_config, validate_config
from tunesmith.errors import ConfigError
from tunesmith.runs.rundir import RunDir
from tunesmith.sweep.pruning import PruningCallback
from tunesmith.sweep.space import (
    SweepSpace,
    apply_params,
    load_space,
    param_lines,
    sample_points,
    suggest,
)
from tunesmith.utils.io import read_jsonl, write_json, write_yaml
from tunesmith.utils.progress import say

WORKER = f"{socket.gethostname()}:{os.getpid()}"
HEARTBEAT_SECONDS, GRACE_SECONDS = 30, 120  # a trial silent this long on another machine is dead


@dataclass
class Sweep:
    base: dict  # the run config (as a dict) every trial starts from
    space: SweepSpace
    directory: Path
    trials: int
    storage: str
    study_name: str
    jobs: int = 1
    threads: int | None = None  # torch threads per trial when several run side by side
    sources: dict = field(default_factory=dict)  # config/space file names, for messages


def open_sweep(config_path: str | Path, space_path: str | Path, trials: int, *, jobs: int = 1,
               out: str | Path | None = None, storage: str | None = None, study_name: str | None = None,
               overrides: list[str] = ()) -> Sweep:
    """Read and check everything a sweep needs before any trial runs."""
    if trials < 1 or jobs < 1:
        raise ConfigError("--trials and --jobs must be at least 1")
    config, space = load_config(config_path, list(overrides)), load_space(space_path)
    directory = Path(out or Path("sweeps") / Path(config_path).stem).resolve()
    base = config.model_dump(mode="json")
    _check(base, space, str(space_path))
    threads = config.train.threads or (max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None)
    return Sweep(base, space, directory, trials, storage or f"sqlite:///{directory / 'study.db'}",
                 study_name or directory.name, jobs, threads,
                 {"config": str(config_path), "space": str(space_path)})


def _check(base: dict, space: SweepSpace, source: str) -> None:
    """Every param, at both ends of its range, must make a valid config."""
    lines = {tuple(key.split(".")): f"{source} line {line}" for key, line in param_lines(source).items()}
    for point in sample_points(space):
        validate_config(apply_params(base, point), source, lines)
    data = base["data"]
    if space.objective.startswith("eval_") and not data["eval"] and not data["eval_ratio"]:
        raise ConfigError(f"{source}: objective {space.objective!r} needs evaluation data; "
                          "set data.eval or data.eval_ratio in the config")


# --- the study ------------------------------------------------------------------------------
def make_storage(url: str):
    if not url.startswith(("sqlite:", "postgresql", "mysql")):
        raise ConfigError(f"--storage {url!r}: give a database URL (sqlite:///path.db, "
                          "postgresql://..., mysql://...)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url, engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {},
            heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=retry_trial,
        )


def make_sampler(space: SweepSpace, seed_offset: int = 0):
    """`seed_offset` differs per worker and per resumption, or they would propose the same
    random points again; a fresh one-process sweep is reproducible from `seed`."""
    seed = space.seed + seed_offset
    if space.sampler == "grid":
        grid = {key: p.grid_values(key) for key, p in space.params.items()}
        return RetrySafeGridSampler(grid, seed=seed)
    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=space.startup_trials)


class RetrySafeGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler; a retried trial (enqueued with its params) has no grid id, on
    which GridSampler.after_trial fails, so it is skipped there (our trial count stops)."""

    def after_trial(self, study, trial, state, values):
        if "grid_id" in trial.system_attrs:
            super().after_trial(study, trial, state, values)


def make_pruner(space: SweepSpace):
    p = space.pruner
    if p.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_steps)
    if p.name == "halving":
        # resources are steps; by default optuna takes the first rung from the first finished trial
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=p.warmup_steps or "auto", reduction_factor=3)
    return optuna.pruners.NopPruner()


def load_study(sweep: Sweep, worker: int = 0):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep.directory.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=sweep.study_name, storage=make_storage(sweep.storage), load_if_exists=True,
        direction=sweep.space.direction, sampler=make_sampler(sweep.space), pruner=make_pruner(sweep.space),
    )
    study.sampler = make_sampler(sweep.space, len(study.trials) + 1000 * worker)
    if study.direction.name.lower() != sweep.space.direction:
        raise ConfigError(f"study {sweep.study_name!r} in {sweep.storage} was started to "
                          f"{study.direction.name.lower()}; give another --out or --study-name")
    return study


# --- interrupted and crashed trials ----------------------------------------------------------
def retry_trial(study, trial) -> None:
    """Queue an interrupted/crashed trial again with its parameters and run directory (once)."""
    if any(t.user_attrs.get("retry_of") == trial.number for t in study.get_trials(deepcopy=False)):
        return
    attrs = {"retry_of": trial.number}
    if trial.user_attrs.get("run_dir"):
        attrs["run_dir"] = trial.user_attrs["run_dir"]
    study.enqueue_trial(trial.params, user_attrs=attrs)
    say(f"trial {trial.number} was cut short; it runs again and resumes {attrs.get('run_dir', '')}")


def recover_interrupted(study) -> None:
    """Ctrl-C'd trials (FAIL + interrupted) and trials of dead processes on this machine."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False):
        worker = t.user_attrs.get("worker", "")
        if t.state == TrialState.RUNNING and worker.rsplit(":", 1)[0] == host and not _alive(worker):
            study.tell(t.number, state=TrialState.FAIL)
            retry_trial(study, t)
        elif t.state == TrialState.FAIL and t.user_attrs.get("interrupted"):
            retry_trial(study, t)


def _alive(worker: str) -> bool:
    try:
        os.kill(int(worker.rsplit(":", 1)[1]), 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def counted_trials(study) -> int:
    """Trials that use up the budget: ended (complete, pruned, failed) or running. A trial that
    was cut short and queued again is counted once, through its retry."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.FAIL)
    return sum(1 for t in trials if t.state in ended and t.number not in retried)


# --- one trial --------------------------------------------------------------------------------
def objective(trial, sweep: Sweep) -> float:
    from tunesmith.training.callbacks import ProgressCallback
    from tunesmith.training.runner import train

    params = suggest(trial, sweep.space)
    run_dir = trial.user_attrs.get("run_dir") or str(sweep.directory / f"trial-{trial.number:04d}")
    trial.set_user_attr("run_dir", run_dir)
    trial.set_user_attr("worker", WORKER)
    data = apply_params(sweep.base, params)
    data["output"] = {"dir": run_dir, "overwrite": False}
    if sweep.threads:
        data["train"]["threads"] = sweep.threads
    config = validate_config(data, f"{sweep.sources.get('space', 'sweep')} trial {trial.number}")
    pruning = PruningCallback(trial, sweep.space.objective)
    try:
        result = train(config, resume="retry_of" in trial.user_attrs, callbacks=[pruning, ProgressCallback()])
    except KeyboardInterrupt:
        trial.set_user_attr("interrupted", True)
        raise
    if result.status == "cancelled":
        trial.set_user_attr("interrupted", True)
        raise KeyboardInterrupt
    value = metric_value(result, sweep.space.objective)
    trial.set_user_attr("final_value", value)
    summary = {"trial": trial.number, "params": params, sweep.space.objective: value,
               "pruned_at_step": pruning.pruned_at}
    write_json(Path(run_dir) / "trial.json", summary)
    if pruning.pruned_at is not None:
        trial.set_user_attr("pruned_at", pruning.pruned_at)
        RunDir(run_dir).event("pruned", f"sweep trial {trial.number} pruned at step {pruning.pruned_at}")
        raise optuna.TrialPruned(f"pruned at step {pruning.pruned_at}")
    return value


def metric_value(result, metric: str) -> float:
    """The run's final value of `metric`: its last evaluation, its train summary, or the last
    line of metrics.jsonl that has it."""
    for source in (result.eval_after, result.train_metrics):
        if metric in source:
            return float(source[metric])
    rows = read_jsonl(result.run_dir / "metrics.jsonl") if (result.run_dir / "metrics.jsonl").is_file() else []
    found = [r[metric] for r in rows if metric in r]
    if found:
        return float(found[-1])
    logged = sorted({k for r in rows for k in r} | set(result.eval_after) | set(result.train_metrics))
    raise ConfigError(f"objective {metric!r} was not logged by run {result.run_dir}; it logged: "
                      f"{', '.join(logged)}")


# --- running ----------------------------------------------------------------------------------
def run_worker(sweep: Sweep, worker: int = 0) -> None:
    """Run trials until the study holds `sweep.trials` of them (shared with other workers)."""
    study = load_study(sweep, worker)
    recover_interrupted(study)
    if counted_trials(study) >= sweep.trials:
        return
    started = time.time()
    done: list[float] = []

    def after_trial(study, trial) -> None:
        done.append(time.time())
        count = counted_trials(study)
        mean = (done[-1] - started) / len(done)
        left = max(0, sweep.trials - count)
        value = "" if trial.value is None else f" {sweep.space.objective}={trial.value:.4g}"
        say(f"[bold]trial {trial.number}[/] {trial.state.name.lower()}{value} "
            f"{_short(trial.params)} · {count}/{sweep.trials} · ETA {_eta(mean * left / sweep.jobs)}")
        if count >= sweep.trials:
            study.stop()

    study.optimize(lambda t: objective(t, sweep), callbacks=[after_trial], catch=(RuntimeError,))


def to_json(sweep: Sweep) -> dict:
    return {**{k: getattr(sweep, k) for k in ("base", "trials", "storage", "study_name", "jobs", "threads",
                                              "sources")},
            "space": sweep.space.model_dump(mode="json"), "directory": str(sweep.directory)}


def from_json(data: dict) -> Sweep:
    return Sweep(**{**data, "space": SweepSpace.model_validate(data["space"]), "directory": Path(data["directory"])})


def _start_workers(sweep: Sweep) -> list:
    """jobs - 1 more worker processes (`python -m tunesmith.sweep.worker SPEC`), sharing the study
    through its database exactly as workers on other machines would."""
    import subprocess
    import sys

    if sweep.jobs < 2:
        return []
    spec = sweep.directory / "worker.json"
    write_json(spec, to_json(sweep))
    return [subprocess.Popen([sys.executable, "-m", "tunesmith.sweep.worker", str(spec), str(index)])
            for index in range(1, sweep.jobs)]


def run_sweep(sweep: Sweep):
    """Run (or continue) the sweep with `jobs` worker processes; returns the study."""
    sweep.directory.mkdir(parents=True, exist_ok=True)
    write_yaml(sweep.directory / "base_config.yaml", sweep.base)
    write_yaml(sweep.directory / "space.yaml", sweep.space.model_dump(mode="json"))
    study = load_study(sweep)  # create the tables once, before workers race to
    recover_interrupted(study)
    say(f"sweep {sweep.study_name}: {counted_trials(study)}/{sweep.trials} trials so far "
        f"· {sweep.space.sampler} sampler · {sweep.space.pruner.name} pruner · {sweep.storage}")
    workers = _start_workers(sweep)
    try:
        run_worker(sweep)
    finally:
        for w in workers:
            w.wait()
    return load_study(sweep)


def _short(params: dict) -> str:
    return "(" + ", ".join(f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
                           for k, v in params.items()) + ")"


def _eta(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"

"""What a sweep leaves behind: trials.csv, summary.json, best.yaml and PNG plots."""

from __future__ import annotations

import csv
import io
import math
import warnings
from pathlib import Path

import yaml

from tunesmith.errors import ConfigError
from tunesmith.utils.io import save_png, write_json, write_text
from tunesmith.utils.progress import say
from tunesmith.utils.yaml_files import read_yaml


def trial_rows(study) -> list[dict]:
    """One row per trial: number, state, objective value, params, where it stopped, its run."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append({
            "trial": t.number, "state": t.state.name.lower(),
            "value": t.value if t.value is not None else t.user_attrs.get("final_value"),
            **{f"param:{k}": v for k, v in t.params.items()},
            "pruned_at_step": t.user_attrs.get("pruned_at"),
            "last_step": max(t.intermediate_values) if t.intermediate_values else None,
            "seconds": round(duration, 1) if duration is not None else None,
            "retry_of": t.user_attrs.get("retry_of"), "run_dir": t.user_attrs.get("run_dir"),
        })
    return rows


def write_report(study, directory: Path, objective: str) -> dict:
    """Write every output of the sweep; returns the summary (also summary.json)."""
    rows = trial_rows(study)
    _write_csv(directory / "trials.csv", rows)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    summary = {
        "study": study.study_name, "direction": study.direction.name.lower(), "objective": objective,
        "trials": len(rows), "states": {s: sum(r["state"] == s for r in rows) for s in {r["state"] for r in rows}},
        "best": None, "plots": [],
    }
    if complete:
        best = study.best_trial
        summary["best"] = {"trial": best.number, "value": best.value, "params": best.params,
                           "run_dir": best.user_attrs.get("run_dir"), "config": str(directory / "best.yaml")}
        _write_best_config(best, directory, objective, study.direction.name.lower())
    summary["plots"] = [str(p) for p in write_plots(study, directory / "plots")]
    write_json(directory / "summary.json", summary)
    return summary


def _write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def _write_best_config(best, directory: Path, objective: str, direction: str) -> None:
    """The config the best trial actually ran (auto values resolved), ready for `tunesmith train`."""
    run_dir = Path(best.user_attrs["run_dir"])
    config = read_yaml(run_dir / "config.yaml", ConfigError, "run config")
    config["output"] = {"dir": str(directory / "best"), "overwrite": False}
    header = (f"# Best trial {best.number} of sweep {directory.name}: {objective} = {best.value:.6g} "
              f"({direction}).\n# Its run: {run_dir}\n# Params: {best.params}\n"
              f"# Train it again (e.g. on more data): tunesmith train {directory / 'best.yaml'}\n")
    write_text(directory / "best.yaml", header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def write_plots(study, out: Path) -> list[Path]:
    """Optimisation history, parameter importance and intermediate values (where they exist)."""
    import matplotlib

    matplotlib.use("Agg")
    import optuna
    from optuna.visualization import matplotlib as vis

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    varied = {k for t in complete for k in t.params if len({str(u.params.get(k)) for u in complete}) > 1}
    wanted = {"history.png": vis.plot_optimization_history}
    if len(complete) >= 2 and varied:
        wanted["importance.png"] = vis.plot_param_importances
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        wanted["intermediate.png"] = vis.plot_intermediate_values
    if complete and len(complete[0].params) <= 4:
        wanted["slice.png"] = vis.plot_slice
    written = []
    for name, plot in wanted.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.simplefilter("ignore", UserWarning)  # matplotlib layout notes on one-point axes
                result = plot(study)
        except (ImportError, ValueError, RuntimeError) as err:  # e.g. importance without scikit-learn
            say(f"[yellow]skipped {name}:[/] {err}")
            continue
        panels = list(result.flat) if hasattr(result, "flat") else [result]
        if name in ("history.png", "intermediate.png") and _spans_decades(study):
            panels[0].set_yscale("log")  # diverged trials would flatten the rest
        figure = panels[0].figure
        if len(panels) == 1:  # optuna sizes multi-panel figures (and their colour bars) itself
            figure.set_size_inches(7.5, 4.5)
        if len(panels) == 1:
            figure.tight_layout()
        out.mkdir(parents=True, exist_ok=True)
        save_png(figure, out / name)
        written.append(out / name)
    return written


def _spans_decades(study) -> bool:
    values = [v for t in study.get_trials(deepcopy=False) for v in [t.value, *t.intermediate_values.values()]
              if v is not None and not math.isnan(v)]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 100

"""The sweep file: what to search (params over any config key), what to optimise, and how.

```yaml
objective: eval_loss          # any metric the run logs (eval_*, train_loss, ...)
direction: minimize           # required unless the metric is a loss or a perplexity
sampler: tpe                  # tpe | random | grid
pruner: median                # median | halving | none   (or {name: median, warmup_steps: 2})
params:
  train.learning_rate: {type: float, low: 1e-5, high: 1e-2, log: true}
  method.r: [4, 8, 16]        # a list is a categorical choice
  train.epochs: {type: int, low: 1, high: 3}
```
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tunesmith.config.components import METHOD_CONFIGS, TASK_CONFIGS
from tunesmith.config.load import _line_index, format_validation_error
from tunesmith.errors import ConfigError
from tunesmith.utils.yaml_files import parse_yaml, read_yaml_text

COMPONENTS = {"method": METHOD_CONFIGS, "task": TASK_CONFIGS}  # sections chosen by `name`


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Param(Strict):
    type: Literal["float", "int", "categorical"] = Field(description="Kind of value.")
    low: float | None = Field(None, description="Smallest value (float, int).")
    high: float | None = Field(None, description="Largest value (float, int).")
    log: bool = Field(False, description="Sample on a log scale (learning rates).")
    step: float | None = Field(None, description="Spacing of values (int default 1).")
    choices: list[Any] | None = Field(None, description="The values of a categorical.")
    grid: list[Any] | None = Field(None, description="Values the grid sampler tries (float, int).")

    @model_validator(mode="after")
    def _complete(self):
        if self.type == "categorical" and not self.choices:
            raise ValueError("a categorical needs choices: [...]")
        if self.type != "categorical" and (self.low is None or self.high is None or self.low > self.high):
            raise ValueError(f"a {self.type} needs low <= high")
        if self.log and self.low is not None and self.low <= 0:
            raise ValueError("log: true needs low > 0")
        return self

    def grid_values(self, key: str) -> list:
        if self.type == "categorical":
            return list(self.choices)
        if self.grid:
            return list(self.grid)
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        raise ConfigError(f"params.{key}: the grid sampler needs grid: [values] for a float range")


class Pruner(Strict):
    name: Literal["median", "halving", "none"] = Field("median", description="Pruning rule.")
    startup_trials: int = Field(2, ge=0, description="Trials that always run to the end first.")
    warmup_steps: int = Field(0, ge=0, description="Steps before a trial may be pruned.")


class SweepSpace(Strict):
    objective: str = Field("eval_loss", description="Metric to optimise, as the run logs it.")
    direction: Literal["minimize", "maximize"] | None = Field(None, description="minimize or maximize.")
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="How trials are proposed.")
    startup_trials: int = Field(4, ge=1, description="TPE: random trials before modelling.")
    pruner: Pruner = Field(default_factory=Pruner, description="Early stop of weak trials.")
    seed: int = Field(0, description="Sampler seed.")
    params: dict[str, Param] = Field(description="Config key (e.g. train.learning_rate) -> range.")

    @field_validator("pruner", mode="before")
    @classmethod
    def _pruner_name(cls, v):
        return {"name": v} if isinstance(v, str) else v

    @field_validator("params", mode="before")
    @classmethod
    def _list_is_categorical(cls, v):
        if not isinstance(v, dict) or not v:
            raise ValueError("give at least one config key to search, e.g. train.learning_rate")
        return {k: {"type": "categorical", "choices": p} if isinstance(p, list) else p for k, p in v.items()}

    @model_validator(mode="after")
    def _direction(self):
        if self.direction is None:
            if not any(word in self.objective for word in ("loss", "perplexity")):
                raise ValueError(f"set direction: maximize or minimize for objective {self.objective!r}")
            self.direction = "minimize"
        return self

    def ordered_keys(self) -> list[str]:
        """`method.name`/`task.name` first: which other method.* keys exist depends on them."""
        return sorted(self.params, key=lambda k: (k.split(".")[-1] != "name", list(self.params).index(k)))


def load_space(path: str | Path) -> SweepSpace:
    path = Path(path)
    text = read_yaml_text(path, ConfigError, "sweep space file")
    data, node = parse_yaml(text, str(path), ConfigError) or {}, yaml.compose(text)  # no loops: checked
    try:
        return SweepSpace.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, str(path), _line_index(node) if node else {})) from None


def param_lines(path: str | Path) -> dict[str, int]:
    """{param key: line in the sweep file}, so config errors point at the param's line."""
    node = yaml.compose(read_yaml_text(path, ConfigError, "sweep space file"))
    return {key[1]: line for key, line in (_line_index(node) if node else {}).items()
            if len(key) == 2 and key[0] == "params"}


def suggest(trial, space: SweepSpace) -> dict[str, Any]:
    """Ask the trial for a value of every param that applies to the chosen method/task."""
    chosen: dict[str, Any] = {}
    for key in space.ordered_keys():
        if not _applies(key, chosen):
            continue  # e.g. method.r when this trial picked method.name: full
        p = space.params[key]
        if p.type == "categorical":
            chosen[key] = trial.suggest_categorical(key, p.choices)
        elif p.type == "int":
            chosen[key] = trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            chosen[key] = trial.suggest_float(key, p.low, p.high, step=p.step, log=p.log)
    return chosen


def _applies(key: str, chosen: dict[str, Any]) -> bool:
    section = key.split(".")[0]
    if section not in COMPONENTS or key.endswith(".name") or f"{section}.name" not in chosen:
        return True
    name = chosen[f"{section}.name"]
    fields = COMPONENTS[section].get(name).model_fields if name in COMPONENTS[section] else {}
    return key.split(".")[1] in fields


def apply_params(base: dict, params: dict[str, Any]) -> dict:
    """A copy of the config dict with each dotted key set; a new method/task name keeps only the
    base options that the new component also has."""
    data = copy.deepcopy(base)
    for key, value in params.items():
        parts = key.split(".")
        if len(parts) == 2 and parts[0] in COMPONENTS and parts[1] == "name":
            old = data.get(parts[0]) or {}
            fields = COMPONENTS[parts[0]].get(value).model_fields if value in COMPONENTS[parts[0]] else {}
            data[parts[0]] = {**{k: v for k, v in old.items() if k in fields}, "name": value}
            continue
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"params.{key}: {part!r} is not a config section")
        node[parts[-1]] = value
    return data


def sample_points(space: SweepSpace) -> list[dict[str, Any]]:
    """One value set per param at each end of its range: checked against the config before any
    trial runs, so a misspelt key fails in a second, not after the first trial."""
    def end(p: Param, last: bool):
        if p.type == "categorical":
            return p.choices[-1 if last else 0]
        value = p.high if last else p.low
        return int(value) if p.type == "int" else value

    points = []
    for last in (False, True):
        point: dict[str, Any] = {}
        for key in space.ordered_keys():
            if _applies(key, point):
                point[key] = end(space.params[key], last)
        points.append(point)
    return points

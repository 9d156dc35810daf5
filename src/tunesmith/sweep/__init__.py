"""Hyperparameter sweeps: Optuna studies whose trials are tunesmith runs (docs/sweeps.md)."""

from tunesmith.sweep.report import write_report
from tunesmith.sweep.space import SweepSpace, load_space
from tunesmith.sweep.study import Sweep, open_sweep, run_sweep

__all__ = ["Sweep", "SweepSpace", "load_space", "open_sweep", "run_sweep", "write_report"]

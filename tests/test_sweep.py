"""Sweeps on a tiny llama: pruning, resume after Ctrl-C, and a planted best learning rate.

The planted objective: full fine-tuning with plain SGD, no gradient clipping and a constant
rate. Then the learning rate alone decides the outcome, in three known regimes measured on
this model and data: 1e-4 barely moves the loss (5.97 -> 5.97), 0.2 lowers it most
(-> 4.1), and 3.0 or 30 diverge (> 1e4 or NaN). The sweep must find 0.2.
"""

import json
import math
import os
import signal

import pytest
import yaml

from tunesmith.errors import ConfigError

PLANTED = 0.2


def _base(tmp_path, tiny_model_dir, chat_file):
    config = {
        "model": {"name_or_path": str(tiny_model_dir)},
        "data": {"train": [str(chat_file)], "eval_ratio": 0.25, "template": "chatml"},
        "method": {"name": "full"},
        "train": {"max_steps": 6, "batch_size": 4, "optimizer": "sgd", "max_grad_norm": 0,
                  "scheduler": "constant", "logging_steps": 1, "save_steps": 100,
                  "precision": "fp32", "threads": 1},
        "eval": {"steps": 2, "before_training": False},
    }
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _space(tmp_path, **extra):
    space = {
        "objective": "eval_loss", "sampler": "grid", "pruner": {"name": "median", "startup_trials": 1},
        "params": {"train.learning_rate": {"type": "float", "low": 1e-4, "high": 30, "log": True,
                                           "grid": [1e-4, PLANTED, 3.0, 30.0]}},
        **extra,
    }
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def test_sweep_prunes_resumes_and_finds_planted_learning_rate(tmp_path, tiny_model_dir, chat_file,
                                                               monkeypatch, capsys):
    import optuna

    from tunesmith.config import load_config
    from tunesmith.sweep import open_sweep, run_sweep
    from tunesmith.sweep import study as study_module

    base, space = _base(tmp_path, tiny_model_dir, chat_file), _space(tmp_path)
    out = tmp_path / "sweep"

    class CtrlCInPlantedTrial(study_module.PruningCallback):
        """Press Ctrl-C (a real SIGINT) during step 3 of the trial with the planted rate."""

        def on_step_end(self, args, state, control, **kw):
            if args.learning_rate == PLANTED and state.global_step == 3:
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(study_module, "PruningCallback", CtrlCInPlantedTrial)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(open_sweep(base, space, trials=4, out=out))
    monkeypatch.undo()

    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out / 'study.db'}")
    cut = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(cut) == 1 and cut[0].user_attrs["interrupted"] and cut[0].params["train.learning_rate"] == PLANTED
    cut_dir = out / f"trial-{cut[0].number:04d}"
    assert (cut_dir / "STATUS").read_text().startswith("cancelled")
    assert (cut_dir / "checkpoints" / "checkpoint-4").is_dir()

    # run the same command again: the interrupted trial resumes from its checkpoint, the rest run
    from tunesmith.cli.main import run
    from tunesmith.utils.progress import console

    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setenv("COLUMNS", "200")  # the stdout console (tables) reads it at print time
    capsys.readouterr()
    run(["sweep", str(base), "--space", str(space), "--trials", "4", "--out", str(out)])
    printed = "".join(capsys.readouterr())  # the trial table on stdout, the best trial on stderr
    assert "best: trial" in printed and "'train.learning_rate': 0.2}" in printed
    assert "resumed trial-" in printed  # the trial table notes the resumed trial
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out / 'study.db'}")
    summary = json.loads((out / "summary.json").read_text())

    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 4 and states.count("FAIL") == 1
    assert states.count("PRUNED") >= 1  # diverging rates are cut at their first evaluation
    retry = next(t for t in study.trials if t.user_attrs.get("retry_of") == cut[0].number)
    assert retry.user_attrs["run_dir"] == str(cut_dir)
    assert (cut_dir / "STATUS").read_text().startswith("succeeded")
    assert '"resume"' in (cut_dir / "events.jsonl").read_text()

    assert study.best_params == {"train.learning_rate": PLANTED}
    assert summary["best"]["value"] < 4.5  # the uninterrupted run reaches 4.12
    others = [t.value for t in study.trials if t.state.name == "COMPLETE" and t.number != study.best_trial.number]
    assert all(v > summary["best"]["value"] + 1 for v in others if not math.isnan(v))
    best = load_config(out / "best.yaml")
    assert best.train.learning_rate == PLANTED and best.output.dir == str(out / "best")
    for name in ("history.png", "intermediate.png", "importance.png"):
        assert (out / "plots" / name).stat().st_size > 5000, name
    assert len((out / "trials.csv").read_text().splitlines()) == 1 + len(study.trials)

    # the trials are ordinary runs: list and compare them
    run(["runs", "list", str(out)])
    listed = capsys.readouterr().out
    assert listed.count("trial-") == 4 and "pruned" in listed
    run(["runs", "compare", str(out), "--output", str(tmp_path / "compare.png")])
    compared = capsys.readouterr().out
    assert "train.learning_rate" in compared and "★" in compared
    assert (tmp_path / "compare.png").stat().st_size > 5000


def test_space_file_errors_name_the_key_and_line(tmp_path, tiny_model_dir, chat_file):
    from tunesmith.sweep import load_space, open_sweep

    base = _base(tmp_path, tiny_model_dir, chat_file)
    space = tmp_path / "bad.yaml"
    space.write_text("objective: eval_loss\nparams:\n  train.learning_rate: {type: float, low: 1, high: 0.1}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml line 3: params.train.learning_rate.*low <= high"):
        load_space(space)
    space.write_text("objective: eval_accuracy\nparams:\n  train.learning_rate: [0.1, 0.2]\n")
    with pytest.raises(ConfigError, match="set direction"):
        load_space(space)
    space.write_text("params:\n  train.learning_rat: [0.1, 0.2]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml line 2: unknown key 'train.learning_rat'. Did you mean 'learning_rate'"):
        open_sweep(base, space, trials=2, out=tmp_path / "s")
    space.write_text("sampler: grid\nparams:\n  train.learning_rate: {type: float, low: 0.1, high: 1}\n")
    with pytest.raises(ConfigError, match="grid sampler needs grid"):
        from tunesmith.sweep.study import make_sampler

        make_sampler(load_space(space))


def test_method_choice_drops_options_the_new_method_lacks():
    from tunesmith.sweep.space import SweepSpace, apply_params, sample_points

    space = SweepSpace.model_validate({"params": {"method.r": [4, 8], "method.name": ["full", "lora"]}})
    first, last = sample_points(space)
    assert first == {"method.name": "full"}  # r does not apply to full fine-tuning
    assert last == {"method.name": "lora", "method.r": 8}
    base = {"method": {"name": "lora", "r": 16, "alpha": 32}}
    assert apply_params(base, first)["method"] == {"name": "full"}
    assert apply_params(base, last)["method"] == {"name": "lora", "r": 8, "alpha": 32}
    assert base["method"]["r"] == 16  # the base is not modified


def test_trial_of_a_dead_process_is_failed_and_queued_again(tmp_path):
    import optuna

    from tunesmith.sweep.study import WORKER, counted_trials, recover_interrupted

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    rates = []
    for pid in (2**22 + 7, os.getpid()):  # a dead worker on this machine, and a live one (us)
        trial = study.ask()
        rates.append(trial.suggest_float("train.learning_rate", 1e-3, 1.0, log=True))
        trial.set_user_attr("worker", f"{WORKER.rsplit(':', 1)[0]}:{pid}")
        trial.set_user_attr("run_dir", str(tmp_path / f"trial-{trial.number:04d}"))
    recover_interrupted(study)
    recover_interrupted(study)  # a second look queues nothing more
    assert [t.state.name for t in study.trials] == ["FAIL", "RUNNING", "WAITING"]
    retry = study.trials[2]
    assert retry.user_attrs == {"retry_of": 0, "run_dir": str(tmp_path / "trial-0000")}
    assert retry.system_attrs["fixed_params"] == {"train.learning_rate": rates[0]}
    assert counted_trials(study) == 1  # the running one; the dead one counts through its retry

"""Two real finished runs (the code's own train() on the tiny llama), made once per test session."""

from __future__ import annotations

import json
import shutil

import pytest


@pytest.fixture(scope="session")
def finished_runs(tiny_model_dir, tmp_path_factory):
    """[run_a, run_b]: a succeeded LoRA run of the tiny llama and a copy of it in another folder
    (as a retrained version would be; training once keeps the tests fast on a shared machine)."""
    import torch

    from tunesmith.config import validate_config
    from tunesmith.training.runner import train

    root = tmp_path_factory.mktemp("finished-runs")
    data = root / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                                                     {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]})
                            + "\n" for i in range(8)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNESMITH_HOME", str(root / "home"))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        config = validate_config({
            "model": {"name_or_path": str(tiny_model_dir)},
            "data": {"train": [str(data)], "eval_ratio": 0.25, "template": "chatml"},
            "method": {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
            "train": {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1,
                      "precision": "fp32"},
            "eval": {"before_training": False},
            "output": {"dir": str(root / "run-a")},
        })
        result = train(config)
        torch.set_num_threads(threads)
    assert result.status == "succeeded"
    runs = [result.run_dir, shutil.copytree(result.run_dir, root / "run-b")]
    return runs

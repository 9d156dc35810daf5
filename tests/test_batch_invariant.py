"""Batch size x gradient accumulation is an invariant: 8 x 1, 4 x 2 and 2 x 4 rows per optimizer
step give the same loss curve and the same final weights (fp32, 1e-5), packed and padded. The
loss of an accumulated step is the mean over all its labelled tokens, not a mean of micro-batch
means; each step sees the same rows whatever the split."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import TrainerCallback

from tunesmith.config import validate_config
from tunesmith.training.runner import train

SPLITS = [(8, 1), (4, 2), (2, 4)]
ATOL = 1e-5


class FinalWeights(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.weights = {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory):
    """16 rows of different lengths, so padding and packing both have work to do."""
    path = tmp_path_factory.mktemp("data") / "chat.jsonl"
    rows = [{"messages": [{"role": "user", "content": "what is " + " plus ".join([str(i)] * (1 + i % 5)) + "?"},
                          {"role": "assistant", "content": f"it is {i * (1 + i % 5)}." + " yes" * (i % 3)}]}
            for i in range(16)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _train(model_dir, data, out, batch: int, accum: int, packing: bool):
    config = validate_config({
        "model": {"name_or_path": str(model_dir)},
        "data": {"train": [str(data)], "template": "chatml", "cutoff_len": 64},
        "method": {"name": "full"},
        "train": {"max_steps": 2, "batch_size": batch, "grad_accum": accum, "learning_rate": 1e-2,
                  "logging_steps": 1, "save_steps": 100, "precision": "fp32", "scheduler": "constant",
                  "packing": packing, "threads": 1, "seed": 7},
        "eval": {"before_training": False},
        "output": {"dir": str(out)},
    })
    weights = FinalWeights()
    result = train(config, callbacks=(weights,))
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r], weights.weights


@pytest.mark.parametrize("packing", [True, False], ids=["packed", "padded"])
def test_batch_times_accumulation_gives_the_same_training(packing, tiny_model_dir, rows_file, tmp_path, monkeypatch):
    from tunesmith.training import runner

    for plot in ("plot_loss", "plot_metrics"):  # tested elsewhere; a quarter of a tiny run's time
        monkeypatch.setattr(runner, plot, lambda *args: None)
    (losses, weights), *others = [_train(tiny_model_dir, rows_file, tmp_path / f"{b}x{a}", b, a, packing)
                                  for b, a in SPLITS]
    assert len(losses) == 2
    for (batch, accum), (other_losses, other_weights) in zip(SPLITS[1:], others):
        assert other_losses == pytest.approx(losses, abs=ATOL), f"{batch}x{accum} loss curve"
        split = f"{batch}x{accum}"
        for name, tensor in weights.items():
            torch.testing.assert_close(other_weights[name], tensor, atol=ATOL, rtol=0,
                                       msg=lambda m, n=name, s=split: f"{s} {n}: {m}")

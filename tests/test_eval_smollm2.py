"""Real weights: base smollm2 against a briefly tuned identity run, through `tunesmith compare`."""

import json

import pytest

from tunesmith.cli.main import run as cli


@pytest.mark.slow
def test_compare_base_smollm2_with_identity_run(tmp_path):
    import torch

    from tunesmith.config import validate_config
    from tunesmith.quickstart import identity_rows
    from tunesmith.training.runner import train

    torch.set_num_threads(1)  # steady speed on a shared CPU
    train_file, eval_file = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    rows = identity_rows(["Who are you?", "What is your name?", "Who made you?", "Introduce yourself."] * 2)
    train_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    eval_file.write_text("".join(json.dumps(r) + "\n" for r in identity_rows(["Whose assistant are you?",
                                                                              "Which team made you?"])))
    config = validate_config({
        "model": {"name_or_path": "smollm2-135m-instruct"},
        "data": {"train": [str(train_file)], "eval": [str(eval_file)], "template": "chatml", "cutoff_len": 96},
        "method": {"name": "lora", "r": 8, "alpha": 16, "target_modules": "all-linear"},
        "train": {"max_steps": 6, "batch_size": 8, "learning_rate": 2e-3, "precision": "fp32", "save_steps": 50},
        "eval": {"before_training": False},
        "output": {"dir": str(tmp_path / "run")},
    })
    run_dir = train(config).run_dir
    out = tmp_path / "cmp"
    cli(["compare", "smollm2-135m-instruct", str(run_dir), "--data", str(eval_file), "--labels", "base,tuned",
         "--metrics", "perplexity,rouge", "--max-new-tokens", "24", "--template", "chatml", "--output", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert report["scores"]["tuned"]["perplexity"] < report["scores"]["base"]["perplexity"] / 2
    assert report["scores"]["tuned"]["rouge1"] > report["scores"]["base"]["rouge1"]
    html = (out / "report.html").read_text()
    assert "Per-example differences" in html and "charts/scores.png" in html

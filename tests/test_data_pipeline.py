"""`data.pipeline` in a run: steps applied before training, counts in data_report.json."""

import json
import random

from tunesmith.data.prepare import prepare_data


def _chat(i, text):
    return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": f"answer {i}"}],
            "topic": f"t{i % 4}"}


def _planted(tmp_path):
    """14 rows: row 13 repeats row 1 exactly, row 14 is row 2 with one word added."""
    vocab = ["alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "paper", "orange", "violet", "market", "garden", "engine"]
    texts = [" ".join(random.Random(i).choices(vocab, k=30)) for i in range(12)]
    rows = [_chat(i, t) for i, t in enumerate(texts)] + [_chat(0, texts[0]), _chat(1, texts[1] + " please")]
    path = tmp_path / "planted.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


PIPELINE = [{"step": "clean"}, {"step": "dedup", "threshold": 0.8},
            {"step": "split", "ratios": "8:2", "group": "topic"}]


def test_tiny_run_writes_rows_in_and_out_per_step(tiny_config, tmp_path):
    from tunesmith.training.runner import train

    config = tiny_config(data={"train": [str(_planted(tmp_path))], "pipeline": PIPELINE},
                         train={"max_steps": 2})
    result = train(config)
    report = json.loads((result.run_dir / "data_report.json").read_text())
    steps = [(s["step"], s["rows_in"], s["rows_out"]) for s in report["pipeline"]]
    assert steps == [("clean", 14, 14), ("dedup", 14, 12), ("split", 12, 12)]
    removed = {r["origin"].rsplit(":", 1)[1] for c in report["pipeline"][1]["details"]["cluster_list"]
               for r in c["removed"]}
    assert removed == {"13", "14"}
    split = report["split"]
    assert split["train"] + split["eval"] == 12 and split["eval"] > 0
    assert report["train"]["records"] == split["train"]


def test_same_pipeline_gives_the_same_data_hash(tiny_config, tmp_path):
    from tunesmith.models import load_tokenizer
    from tunesmith.tasks import TASKS

    pipeline = PIPELINE[:2] + [{"step": "split", "ratios": "8:2"}]
    config = tiny_config(data={"train": [str(_planted(tmp_path))], "pipeline": pipeline})
    tokenizer = load_tokenizer(config.model.name_or_path)
    first = prepare_data(config, tokenizer, TASKS.get("sft"))
    second = prepare_data(config, tokenizer, TASKS.get("sft"))
    assert first.report["data_hash"] == second.report["data_hash"]
    reseeded = tiny_config(data={"train": [str(_planted(tmp_path))], "pipeline": pipeline}, train={"seed": 7})
    assert prepare_data(reseeded, tokenizer, TASKS.get("sft")).report["data_hash"] != first.report["data_hash"]


def test_augmented_variants_stay_with_their_source_in_eval_ratio_split(tiny_config):
    from tunesmith.data.load import LoadReport
    from tunesmith.data.prepare import pipeline_records

    pipeline = [{"step": "augment", "ops": ["swap"], "alpha": 0.3, "fields": []}]
    config = tiny_config(data={"pipeline": pipeline, "eval_ratio": 0.25})
    train, evals, report = pipeline_records(config, LoadReport())
    added = report["pipeline"][0]["details"]["added"]
    assert added > 6 and len(train) + len(evals) == 12 + added
    source = lambda records: {r["_origin"].split("#")[0] for r in records}
    assert evals and not source(train) & source(evals)


def test_mix_step_in_a_run_samples_files_by_weight(tiny_config, tmp_path):
    from tunesmith.data.load import LoadReport
    from tunesmith.data.prepare import pipeline_records

    extra = tmp_path / "extra.jsonl"
    extra.write_text("".join(json.dumps(_chat(i, f"extra question {i}")) + "\n" for i in range(30)))
    config = tiny_config()
    config = tiny_config(data={"train": [config.data.train[0], str(extra)], "eval_ratio": 0.0,
                               "pipeline": [{"step": "mix", "weights": {"chat.jsonl": 1, "extra.jsonl": 2}}]})
    train, _, report = pipeline_records(config, LoadReport())
    sources = report["pipeline"][0]["details"]["sources"]
    assert {k: v["taken"] for k, v in sources.items()} == {"chat.jsonl": 12, "extra.jsonl": 24}
    assert len(train) == 36

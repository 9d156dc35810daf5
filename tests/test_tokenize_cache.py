"""The tokenized-data cache: a second run skips tokenization; any key change tokenizes again."""

import dataclasses
import json

from tunesmith.data.prepare import prepare_data
from tunesmith.tasks import TASKS


def _counting_task(calls: list):
    task = TASKS.get("sft")

    def build(records, tokenizer, config):
        calls.append(len(records))
        return task.build_features(records, tokenizer, config)

    return dataclasses.replace(task, build_features=build)


def test_second_prepare_reuses_the_tokenized_features(tiny_config, tiny_model_dir):
    from tunesmith.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    calls: list = []
    task = _counting_task(calls)
    first = prepare_data(tiny_config(), tokenizer, task)
    assert calls == [9, 3]  # train and eval were tokenized
    assert first.report["tokenize_cache"] == {"train": "miss", "eval": "miss"}

    second = prepare_data(tiny_config(), tokenizer, task)
    assert calls == [9, 3]  # nothing tokenized again
    assert second.report["tokenize_cache"] == {"train": "hit", "eval": "hit"}
    assert second.train == first.train and second.eval == first.eval
    assert second.report["train"] == first.report["train"]

    prepare_data(tiny_config(data={"cutoff_len": 100}), tokenizer, task)  # the cutoff is in the key
    assert calls == [9, 3, 9, 3]
    prepare_data(tiny_config(data={"cache": False}), tokenizer, task)
    assert calls == [9, 3, 9, 3, 9, 3]


def test_changed_data_is_tokenized_again(tiny_config, tiny_model_dir, chat_file):
    from tunesmith.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    calls: list = []
    task = _counting_task(calls)
    prepare_data(tiny_config(), tokenizer, task)
    rows = chat_file.read_text().splitlines()
    row = json.loads(rows[0])
    row["messages"][1]["content"] = "a different answer"
    chat_file.write_text("\n".join([json.dumps(row)] + rows[1:]) + "\n")
    report = prepare_data(tiny_config(), tokenizer, task).report
    assert report["tokenize_cache"]["train"] == "miss" or report["tokenize_cache"]["eval"] == "miss"
    assert len(calls) >= 3


def test_cache_keeps_a_task_report_subclass(tmp_path, monkeypatch):
    from tunesmith.data import cache
    from tunesmith.tasks.rows import RowsReport

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    report = RowsReport(rows=1, tokens=3, skipped=["a.tsv:2: no label"])
    assert cache.save("k", [{"input_ids": [1, 2, 3], "labels": 1}], report, {})
    features, loaded, _ = cache.load("k")
    assert features == [{"input_ids": [1, 2, 3], "labels": 1}]
    assert isinstance(loaded, RowsReport) and loaded.skipped == ["a.tsv:2: no label"]


def test_a_cache_hit_restores_the_label_map_learned_from_the_rows(tiny_config, tmp_path):
    """Classification learns task.labels while tokenizing; a second run served from the cache must
    get the same label map (it sizes the model head), not None."""
    from tiny_tasks import save_tiny_bert, sentiment_rows, write_tsv
    from tunesmith.models import load_tokenizer

    model = save_tiny_bert(tmp_path / "bert")
    data = write_tsv(tmp_path / "s.tsv", ["sentence", "label"], sentiment_rows(6))
    tokenizer = load_tokenizer(model)
    reports = []
    for _ in range(2):
        config = tiny_config(model={"name_or_path": str(model)}, data={"train": [str(data)], "eval": []},
                             task={"name": "classification", "text_column": "sentence"})
        assert config.task.labels is None
        reports.append(prepare_data(config, tokenizer, TASKS.get("classification")).report["tokenize_cache"])
        assert config.task.labels == ["negative", "positive"]
    assert [r["train"] for r in reports] == ["miss", "hit"]

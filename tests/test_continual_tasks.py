"""Multi-task runs of the classification and label-words tasks (one shared label set, each task's
eval figures in the loop), and model.from_run across methods: a full-weights run continued by
another, a full-weights run under a new adapter, an adapter run continued by full fine-tuning
(docs/continual.md). Tiny models built in code."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from sklearn.metrics import f1_score

from inproc import fails_in_one_line
from tiny import tiny_tokenizer
from tiny_tasks import save_tiny_bert, sentiment_rows, write_tsv
from tunesmith.cli.main import run as cli
from tunesmith.data.multitask import mix_tasks, task_shares
from tunesmith.data.prepare import prepare_data, split_records
from tunesmith.tasks import TASKS
from tunesmith.training.runner import train

HEADER = ["sentence", "label"]


def _topic_rows(n: int, start: int = 0) -> list[tuple[str, str]]:
    """A second task with labels of its own (animal / greeting), as separable as the sentiment rows."""
    words = ["fox", "hello", "dog", "world"]
    return [(f"{words[i % 4]} {words[i % 4]} {words[(i + 2) % 4]}", "animal" if i % 2 == 0 else "greeting")
            for i in range(start, start + n)]


@pytest.fixture
def two_tasks(tmp_path):
    """sentiment (positive/negative, 24 training rows) and topic (animal/greeting, 8), each with eval rows."""
    files = {"sentiment": (sentiment_rows(24), sentiment_rows(6, start=100)),
             "topic": (_topic_rows(8), _topic_rows(6, start=100))}
    return [{"name": name, "train": str(write_tsv(tmp_path / f"{name}.tsv", HEADER, train)),
             "eval": str(write_tsv(tmp_path / f"{name}-eval.tsv", HEADER, evals))}
            for name, (train, evals) in files.items()]


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def _classifier(tiny_config, model_dir, tasks, task_name="classification", method=None, **data):
    return tiny_config(model={"name_or_path": str(model_dir)},
                       data={"train": [], "tasks": tasks, "cutoff_len": 32, **data},
                       method=method or {"name": "full"},
                       task={"name": task_name, "text_column": "sentence"},
                       train={"max_steps": 12, "batch_size": 8, "learning_rate": 5e-3, "save_steps": 100},
                       eval={"steps": 6})


def test_two_classification_tasks_share_one_head_and_report_each_task(tiny_config, tiny_bert_dir, two_tasks):
    from tunesmith.inference.predict import predict_file

    config = _classifier(tiny_config, tiny_bert_dir, two_tasks, sampling="temperature", temperature=2.0)
    result = train(config)
    run = result.run_dir
    # one head over the union of the tasks' labels
    assert yaml.safe_load((run / "config.yaml").read_text())["task"]["labels"] == \
        ["animal", "greeting", "negative", "positive"]
    for name in ("sentiment", "topic"):
        for figure in ("loss", "accuracy", "macro_f1"):
            assert f"eval_{name}_{figure}" in result.eval_before and f"eval_{name}_{figure}" in result.eval_after
    assert result.eval_after["eval_topic_loss"] < result.eval_before["eval_topic_loss"]
    # measured in the loop (eval.steps 6 of 12), not only before and after
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(row.get("step") == 6 and "eval_topic_accuracy" in row for row in logged)
    # each task's figures are those of its own eval rows, as predict finds them on the saved model;
    # its macro F1 averages over its own classes (not the other task's, which its rows never have)
    for task in two_tasks:
        out = run.parent / f"{task['name']}-pred.jsonl"
        scored = predict_file(str(run), task["eval"], str(out))
        assert result.eval_after[f"eval_{task['name']}_accuracy"] == pytest.approx(scored.metrics["accuracy"])
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        refs, preds = [r["reference"] for r in rows], [r["label"] for r in rows]
        own = f1_score(refs, preds, labels=sorted(set(refs)), average="macro", zero_division=0)
        assert result.eval_after[f"eval_{task['name']}_macro_f1"] == pytest.approx(own)
    # the report (and the run's confusion matrix) is the whole eval set's: 12 rows, not one task's 6
    report = json.loads((run / "classification_report.json").read_text())
    assert sum(c["support"] for c in report["per_class"].values()) == 12


def test_sampling_shares_hold_in_the_training_rows(tiny_config, tiny_bert_dir, two_tasks):
    config = _classifier(tiny_config, tiny_bert_dir, two_tasks, sampling="temperature", temperature=2.0)
    task = TASKS.get("classification")
    prepared = prepare_data(config, tiny_tokenizer(), task)
    counted = {t["name"]: 0 for t in two_tasks}
    mixed, _ = mix_tasks(split_records(config, task).by_task, "temperature", 2.0, config.train.seed)
    for row in mixed:  # each training row names the file it came from
        counted["topic" if "topic.tsv" in row["_origin"] else "sentiment"] += 1
    shares = task_shares({"sentiment": 24, "topic": 8}, "temperature", 2.0)  # 24^0.5 : 8^0.5 = 0.634 : 0.366
    assert counted == {"sentiment": round(32 * shares["sentiment"]), "topic": round(32 * shares["topic"])}
    assert len(prepared.train) == 32
    per_task = prepared.report["tasks"]["per_task"]
    assert {name: per_task[name]["drawn"] for name in counted} == counted


def test_a_task_drawn_little_still_brings_its_labels(tiny_config, tiny_bert_dir, two_tasks):
    """The label set is learned on every task's rows before the mix: a task whose weight draws no
    row at all still has its labels, and its eval rows are measured (they were refused before)."""
    two_tasks[1]["weight"] = 0.01
    config = _classifier(tiny_config, tiny_bert_dir, two_tasks)
    prepared = prepare_data(config, tiny_tokenizer(), TASKS.get("classification"))
    assert prepared.report["tasks"]["per_task"]["topic"]["drawn"] == 0
    assert config.task.labels == ["animal", "greeting", "negative", "positive"]
    assert [f["labels"] for f in prepared.eval_by_task["topic"]] == [0, 1] * 3


def test_label_words_tasks_report_each_task_accuracy(tiny_config, tiny_model_dir, two_tasks):
    """Also LoRA+ (a method with its own optimizer) under label words' trainer, which subclasses the
    run's trainer class: that was a TypeError while the class was a functools.partial."""
    from tunesmith.inference.predict import predict_file

    config = _classifier(tiny_config, tiny_model_dir, two_tasks, task_name="label_words",
                         method={"name": "loraplus", "r": 4, "alpha": 8}, template="chatml", cutoff_len=96)
    config.train.max_steps, config.task.prompt = 4, "{text}"
    result = train(config)
    assert result.eval_after["eval_sentiment_loss"] < result.eval_before["eval_sentiment_loss"]
    for task in two_tasks:
        name = task["name"]
        assert {f"eval_{name}_accuracy", f"eval_{name}_macro_f1"} <= set(result.eval_after)
        scored = predict_file(str(result.run_dir), task["eval"], str(result.run_dir.parent / f"{name}.jsonl"))
        assert result.eval_after[f"eval_{name}_accuracy"] == pytest.approx(scored.metrics["accuracy"])


def test_qa_tasks_score_each_task_on_its_own_windows(tiny_config, tiny_bert_dir, tmp_path):
    """QA's scores decode the windows of the set measured: each task's its own (they were bound to the
    run's whole eval set, whose windows another set's logits do not match)."""
    from tunesmith.inference.predict import predict_file

    def squad(path, names, n):  # contexts of the answer word only: any span predicted scores some F1
        rows = []
        for i in range(n):
            name = names[i % len(names)]
            context = f"{name} {name} {name} {name}"
            rows.append({"id": str(i), "question": "who jumps?", "context": context,
                         "answers": {"text": [name], "answer_start": [context.index(name)]}})
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)

    tasks = [{"name": "animals", "train": squad(tmp_path / "a.jsonl", ["fox", "dog"], 12),
              "eval": squad(tmp_path / "a-eval.jsonl", ["fox", "dog"], 4)},
             {"name": "birds", "train": squad(tmp_path / "b.jsonl", ["owl", "hen"], 12),
              "eval": squad(tmp_path / "b-eval.jsonl", ["owl"], 2)}]
    config = tiny_config(model={"name_or_path": str(tiny_bert_dir)}, method={"name": "full"}, task={"name": "qa"},
                         data={"train": [], "tasks": tasks, "cutoff_len": 48},
                         train={"max_steps": 2, "batch_size": 8, "save_steps": 100})
    result = train(config)
    for task in tasks:
        name = task["name"]
        assert {f"eval_{name}_exact_match", f"eval_{name}_loss"} <= set(result.eval_after)
        scored = predict_file(str(result.run_dir), task["eval"], str(tmp_path / f"{name}-pred.jsonl"))
        assert scored.metrics["f1"] > 0
        assert result.eval_after[f"eval_{name}_f1"] == pytest.approx(scored.metrics["f1"])
    predictions = json.loads((result.run_dir / "qa_eval_predictions.json").read_text())
    assert len(predictions) == 6  # the run's whole eval set, not the last task's


def test_a_method_optimizer_keeps_a_partial_trainer_and_can_be_subclassed():
    """LoRA+'s optimizer on the run's trainer class: a subclass (a task's trainer subclasses it again),
    and a partial (distillation's, with its teacher) keeps its arguments."""
    from functools import partial

    from tunesmith.training.trainer import TunesmithTrainer, with_optimizer

    def make(*args, **kwargs):
        return None

    plain = with_optimizer(TunesmithTrainer, make)
    assert issubclass(plain, TunesmithTrainer) and type("TaskTrainer", (plain,), {})
    wrapped = with_optimizer(partial(TunesmithTrainer, teacher="t"), make)
    assert wrapped.keywords == {"teacher": "t"} and issubclass(wrapped.func, TunesmithTrainer)


# --- one-line errors ------------------------------------------------------------------------------

def _yaml(tmp_path, body):
    path = tmp_path / "run.yaml"
    path.write_text(body)
    return path


@pytest.mark.parametrize("tasks, fragments", [
    ("[{name: a, train: F}, {name: a, train: F}]", ("data.tasks", "task name a is given twice")),
    ("[{name: 'my task', train: F}]", ("data.tasks.0.name", "my task")),
])
def test_bad_task_names_are_one_line_errors(tasks, fragments, tmp_path, chat_file, tiny_model_dir, capsys):
    config = _yaml(tmp_path, f"model: {{name_or_path: {tiny_model_dir}}}\n"
                             f"data: {{train: [], tasks: {tasks.replace('F', str(chat_file))}}}\n"
                             f"output: {{dir: {tmp_path / 'out'}}}\n")
    fails_in_one_line(capsys, "train", config, fragments=fragments)


def test_tasks_of_a_trl_trainer_are_a_one_line_error(tmp_path, tiny_model_dir, capsys):
    """DPO trains with TRL's trainer, which cannot measure each task's eval set: said, not skipped."""
    rows = [{"prompt": f"{i} + {i}?", "chosen": f"{2 * i}", "rejected": "no idea"} for i in range(8)]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = _yaml(tmp_path, f"model: {{name_or_path: {tiny_model_dir}}}\ntask: {{name: dpo}}\n"
                             f"method: {{name: lora, r: 4}}\ntrain: {{max_steps: 1, precision: fp32}}\n"
                             f"data: {{train: [], eval_ratio: 0.25, tasks: [{{name: a, train: {pairs}}}, "
                             f"{{name: b, train: {pairs}}}]}}\noutput: {{dir: {tmp_path / 'out'}}}\n")
    fails_in_one_line(capsys, "train", config, fragments=("data.tasks", "DPOTrainer", "each task's eval loss"))


# --- model.from_run across methods ------------------------------------------------------------------

def _chat_rows(path, n, word):
    rows = [{"messages": [{"role": "user", "content": f"{word} {i}?"},
                          {"role": "assistant", "content": f"{word} {i} is {i * 3}."}]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _continue(tiny_config, tmp_path, first, name, method):
    second_file = _chat_rows(tmp_path / f"{name}.jsonl", 12, "hello world")
    return train(tiny_config(model={"from_run": str(first)}, data={"train": [str(second_file)]}, method=method,
                             output={"dir": str(tmp_path / name)}))


def _weights(folder) -> dict:
    from safetensors.torch import load_file

    return {k: v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(str(f)).items()}


def test_full_run_continued_by_full_and_by_lora(tiny_config, tmp_path, capsys):
    full = {"name": "full"}
    first = train(tiny_config(method=full, output={"dir": str(tmp_path / "first")}))
    second = _continue(tiny_config, tmp_path, first.run_dir, "second", full)
    # it starts from the first run's weights: its first eval of the first task is the first run's last one
    assert second.eval_before["eval_old_first_loss"] == pytest.approx(first.eval_after["eval_loss"], rel=1e-5)
    assert second.eval_before["eval_old_first_loss"] != pytest.approx(first.eval_before["eval_loss"], rel=1e-3)
    assert (second.run_dir / "model").is_dir()

    cli(["runs", "lineage", str(second.run_dir), "--json"])
    steps = json.loads(capsys.readouterr().out)
    assert [(s["run"], s["method"]) for s in steps] == [(str(first.run_dir.resolve()), "full"),
                                                        (str(second.run_dir.resolve()), "full")]
    assert steps[0]["eval_loss_after"] == first.eval_after["eval_loss"]
    cli(["runs", "lineage", str(second.run_dir)])
    table = capsys.readouterr().out
    assert "first" in table and "second" in table

    # a LoRA run on the full run's weights: its base is that run's model/, where its adapter loads
    third = _continue(tiny_config, tmp_path, first.run_dir, "third", {"name": "lora", "r": 4, "alpha": 8})
    assert third.eval_before["eval_old_first_loss"] == pytest.approx(first.eval_after["eval_loss"], rel=1e-5)
    saved = yaml.safe_load((third.run_dir / "config.yaml").read_text())
    assert saved["model"]["name_or_path"] == str((first.run_dir / "model").resolve())
    from tunesmith.inference.load import load_for_inference

    base = load_for_inference(str(third.run_dir)).model.get_base_model()
    trained = _weights(first.run_dir / "model")
    assert torch.equal(base.model.embed_tokens.weight, trained["model.embed_tokens.weight"])


def test_lora_run_continued_by_full_fine_tuning(tiny_config, tmp_path):
    first = train(tiny_config(output={"dir": str(tmp_path / "first")}))
    second = _continue(tiny_config, tmp_path, first.run_dir, "second", {"name": "full"})
    # the first run's adapter merged in is the start
    assert second.eval_before["eval_old_first_loss"] == pytest.approx(first.eval_after["eval_loss"], rel=1e-5)
    assert (second.run_dir / "model").is_dir() and not (second.run_dir / "adapter").exists()
    lineage = json.loads((second.run_dir / "lineage.json").read_text())
    assert [a["method"] for a in lineage["ancestors"]] == ["lora"]

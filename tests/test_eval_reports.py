"""`tunesmith eval` / `compare` on tiny llamas: files, numbers that agree with the loss path,
per-example differences, robustness, forgetting and clear errors."""

import json

import pytest

from tunesmith.cli.main import run as cli


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest on one thread, and far faster than many on a shared, loaded CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



def _report(folder):
    return json.loads((folder / "report.json").read_text())


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_without_metrics_keeps_loss_and_perplexity(tiny_model_dir, chat_file, tmp_path):
    from tunesmith.evaluation.loss import evaluate_loss

    cli(["eval", str(tiny_model_dir), "--data", str(chat_file), "--output", str(tmp_path / "new")])
    legacy = evaluate_loss(str(tiny_model_dir), str(chat_file), str(tmp_path / "old"))
    report = _report(tmp_path / "new")
    assert report["eval_loss"] == pytest.approx(legacy["eval_loss"], rel=1e-5)
    assert report["eval_perplexity"] == pytest.approx(legacy["eval_perplexity"], rel=1e-5)
    assert report["tokens"] == legacy["tokens"] and report["rows"] == 12


def test_eval_with_metrics_writes_predictions_report_and_charts(tiny_model_dir, chat_file, tmp_path):
    out = tmp_path / "eval"
    cli(["eval", str(tiny_model_dir), "--data", str(chat_file), "--metrics", "rouge,bleu,regex,perplexity",
         "--metric-option", r"regex.pattern=.*\d.*", "--max-new-tokens", "6", "--batch-size", "5",
         "--output", str(out)])
    rows = [json.loads(l) for l in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and rows[3]["origin"].endswith(":4") and rows[3]["reference"] == "3 plus 3 is 6."
    assert all({"rouge1", "bleu", "regex_match", "perplexity"} <= set(r["scores"]) for r in rows)
    report = _report(out)
    scores = report["scores"][report["models"][0]]
    assert scores["rouge1"] == pytest.approx(sum(r["scores"]["rouge1"] for r in rows) / 12)
    assert report["directions"]["perplexity"] == "lower" and report["directions"]["bleu"] == "higher"
    assert _is_png(out / "charts" / "scores.png") and _is_png(out / "charts" / "per_row.png")
    html = (out / "report.html").read_text()
    assert 'src="charts/scores.png"' in html and "rougeL" in html and "3 plus 3 is 6." in html


def test_batched_left_padded_generation_equals_one_by_one(tiny_model_dir):
    from tunesmith.inference.generate import generate_replies
    from tunesmith.inference.load import load_for_inference

    loaded = load_for_inference(str(tiny_model_dir), template="chatml")
    chats = [[{"role": "user", "content": q}] for q in ("hi", "what is your name, dear assistant?", "0 + 1")]
    assert generate_replies(loaded, chats, 8, batch_size=3) == generate_replies(loaded, chats, 8, batch_size=1)


def test_compare_lists_scores_side_by_side_and_rows_that_differ(tiny_model_dir, chat_file, tmp_path):
    from tiny import save_tiny_llama

    other = save_tiny_llama(tmp_path / "other", seed=1)
    out = tmp_path / "cmp"
    cli(["compare", str(tiny_model_dir), str(other), "--data", str(chat_file), "--labels", "base,tuned",
         "--metrics", "rouge,perplexity", "--max-new-tokens", "6", "--output", str(out)])
    report = _report(out)
    assert report["models"] == ["base", "tuned"]
    assert report["scores"]["base"]["perplexity"] != report["scores"]["tuned"]["perplexity"]
    assert report["examples_title"] == "Per-example differences" and report["examples"]
    assert "Rows won on rouge1: base " in report["examples_note"]
    first = report["examples"][0]
    assert first["predictions"]["base"] != first["predictions"]["tuned"]
    assert (out / "predictions" / "base.jsonl").is_file() and (out / "predictions" / "tuned.jsonl").is_file()
    html = (out / "report.html").read_text()
    assert "<th>base</th><th>tuned</th>" in html and "Per-example differences" in html


def test_robustness_and_forgetting_sections(tiny_config, chat_file, tmp_path):
    from tunesmith.training.runner import train

    run_dir = train(tiny_config(train={"max_steps": 4})).run_dir
    general = tmp_path / "general.jsonl"
    general.write_text("".join(chat_file.read_text().splitlines(keepends=True)[:4]))
    out = tmp_path / "robust"
    cli(["eval", str(run_dir), "--data", str(chat_file), "--metrics", "rouge", "--limit", "3",
         "--max-new-tokens", "4", "--robustness", "--forgetting", str(general), "--output", str(out)])
    report = _report(out)
    robust = next(s for s in report["sections"] if s["id"].startswith("robustness"))["data"]
    assert set(robust) == {"typos", "casing", "punctuation", "whitespace", "synonyms"}
    assert "?" not in robust["punctuation"]["sample"]
    assert len(robust["typos"]["rows"]) == 3 and "prediction" in robust["typos"]["rows"][0]
    clean = report["scores"][report["models"][0]]["rouge1"]
    for kind in robust.values():
        assert kind["drop"]["rouge1"] == pytest.approx(clean - kind["scores"]["rouge1"])
    forgetting = next(s for s in report["sections"] if s["id"].startswith("forgetting"))["data"]
    # the general set here is the training data, so tuning lowered its perplexity
    assert forgetting["after"]["perplexity"] < forgetting["before"]["perplexity"]
    assert forgetting["change"]["perplexity"] < 0 and "perplexity" not in forgetting["worse"]
    assert _is_png(out / "charts" / "forgetting.png")
    html = (out / "report.html").read_text()
    assert "<tr><td>perplexity</td><td>lower</td>" in html  # the section's own directions


def test_perturbations_are_deterministic_and_do_what_they_say():
    import random

    from tunesmith.evaluation.perturb import perturb_messages, punctuation, synonyms, whitespace

    msgs = [{"role": "user", "content": "Who made you, assistant? Tell me."}]
    assert perturb_messages(msgs, "typos", 3) == perturb_messages(msgs, "typos", 3)
    assert punctuation("你好，世界! Who?", random.Random(0)) == "你好世界 Who"
    assert synonyms("Who made you? 你的名字", random.Random(0)) in (
        "Which person built you? 您的姓名", "Which person created you? 您的姓名")
    assert whitespace("a b", random.Random(0)).split() == ["a", "b"]


def test_bad_eval_input_is_a_clear_error(tiny_model_dir, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    no_refs = tmp_path / "plain.jsonl"
    no_refs.write_text('{"text": "just some text"}\n')
    for args, message in [
        (["--data", str(empty)], "the eval set is empty"),
        (["--data", str(no_refs), "--metrics", "rouge"], "need a reference reply per row"),
        (["--data", str(no_refs), "--metrics", "rogue"], "Did you mean 'rouge'"),
        (["--data", str(no_refs), "--metrics", "regex", "--metric-option", "regex"], "NAME.KEY=VALUE"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            cli(["eval", str(tiny_model_dir), *args, "--output", str(tmp_path / "x")])
        assert exit_info.value.code == 2
        assert message in " ".join(capsys.readouterr().err.split())

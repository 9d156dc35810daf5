"""Data steps on small hand-made inputs: the exact rows removed, kept, tagged or changed."""

import json

import pytest

from tunesmith.data.steps import build_step, run_step
from tunesmith.errors import DataError


def rows_of(texts, key="instruction", **extra):
    return [{key: t, "output": "ok", "_origin": f"f.jsonl:{i + 1}", **{k: v[i] for k, v in extra.items()}}
            for i, t in enumerate(texts)]


def kept_lines(rows):
    return [int(r["_origin"].split(":")[1]) for r in rows]


EN = [
    "The quick brown fox jumps over the lazy dog near the river bank every single morning before sunrise",
    "Explain how photosynthesis converts sunlight water and carbon dioxide into glucose and oxygen in plants",
    "The quick brown fox jumps over the lazy dog near the river bank every single morning before sunrise today",
    "Write a short poem about the ocean at night with stars reflecting on calm dark water",
    "THE QUICK BROWN FOX jumps over the lazy dog, near the river bank every single morning before sunrise!",
]
ZH = [
    "请用简单的语言解释一下什么是机器学习以及它在日常生活中的应用例子",
    "今天的天气非常好，我们一起去公园散步吧，顺便买点水果回来",
    "请用简单的语言解释一下什么是机器学习以及它在日常生活中的应用实例",
    "皇上万福金安，臣妾今日特来给皇上请安，愿皇上龙体康健",
]


@pytest.mark.parametrize("texts, kept", [(EN, [1, 2, 4]), (ZH, [1, 2, 4])])
def test_planted_near_duplicates_found_at_08_and_distinct_rows_kept(texts, kept):
    out, report = run_step(build_step({"step": "dedup", "threshold": 0.8, "fields": ["instruction"]}), rows_of(texts))
    assert kept_lines(out) == kept
    clusters = report.details["cluster_list"]
    assert len(clusters) == 1 and clusters[0]["kept"] == "f.jsonl:1"
    removed = {r["origin"]: r for r in clusters[0]["removed"]}
    assert "f.jsonl:3" in removed and removed["f.jsonl:3"]["kind"] == "near"
    assert removed["f.jsonl:3"]["similarity"] >= 0.8


def test_exact_dedup_normalises_case_and_punctuation():
    out, report = run_step(build_step({"step": "dedup", "method": "exact", "fields": ["instruction"]}), rows_of(EN))
    assert kept_lines(out) == [1, 2, 3, 4]  # row 5 = row 1 up to case/punctuation; row 3 differs
    assert report.details["exact_duplicates"] == 1


def test_decontaminate_removes_planted_overlap(tmp_path):
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(json.dumps({"question": "What is the capital city of France and when was the Eiffel "
                                     "Tower built for the world fair", "answer": "Paris"}) + "\n"
                         + json.dumps({"question": "天空为什么是蓝色的呢请详细解释瑞利散射的原理", "answer": "x"}) + "\n")
    train = rows_of([
        "Question: what is the capital city of France and when was the Eiffel Tower built? Answer briefly.",
        "What is the capital of Germany?",
        "请回答：天空为什么是蓝色的呢请详细解释瑞利散射的原理，谢谢",
        "天空是蓝色的",
    ])
    out, report = run_step(build_step({"step": "decontaminate", "against": [str(eval_file)], "n": 8}), train)
    assert kept_lines(out) == [2, 4]
    assert [r["origin"] for r in report.details["removed"]] == ["f.jsonl:1", "f.jsonl:3"]
    assert report.details["removed"][1]["eval_origin"].endswith("eval.jsonl:2")


def _split(rows, **options):
    out, report = run_step(build_step({"step": "split", "seed": 3, **options}), rows)
    return out, report.details


def test_grouped_split_never_straddles_a_group():
    rows = rows_of([f"q{i}" for i in range(60)], patient=[f"P{i % 13:02d}" for i in range(60)])
    out, counts = _split(rows, group="patient")
    where = {}
    for r in out:
        where.setdefault(r["patient"], set()).add(r["_split"])
    assert all(len(s) == 1 for s in where.values())
    assert sum(counts.values()) == 60 and counts["train"] > counts["test"] > 0 and counts["eval"] > 0


def test_stratified_split_keeps_label_mix_and_is_reproducible():
    labels = ["pos"] * 70 + ["neg"] * 30
    rows = rows_of([f"q{i}" for i in range(100)], label=labels)
    out, counts = _split(rows, stratify="label")
    assert counts == {"train": 70, "eval": 10, "test": 20}
    test_labels = [r["label"] for r in out if r["_split"] == "test"]
    assert test_labels.count("pos") == 14 and test_labels.count("neg") == 6
    again, _ = _split(rows, stratify="label")
    assert [r["_split"] for r in again] == [r["_split"] for r in out]


def test_time_split_orders_train_eval_test():
    dates = [f"2024-{m:02d}-01" for m in (5, 1, 9, 3, 12, 7, 2, 11, 4, 10)]
    out, _ = _split(rows_of([f"q{i}" for i in range(10)], date=dates), time="date", ratios="6:2:2")
    latest = {s: max(r["date"] for r in out if r["_split"] == s) for s in ("train", "eval")}
    earliest = {s: min(r["date"] for r in out if r["_split"] == s) for s in ("eval", "test")}
    assert latest["train"] < earliest["eval"] and latest["eval"] < earliest["test"]


def test_split_ratios_must_sum_to_one():
    from tunesmith.config import validate_config
    from tunesmith.errors import ConfigError

    with pytest.raises(Exception, match="sum to 0.9, not 1"):
        build_step({"step": "split", "ratios": [0.7, 0.1, 0.1]})
    with pytest.raises(ConfigError, match=r"data.pipeline.0.ratios"):
        validate_config({"data": {"pipeline": [{"step": "split", "ratios": [0.5, 0.6]}]}})


def test_balance_undersamples_to_uniform_and_oversamples_to_target():
    rows = rows_of([f"q{i}" for i in range(40)], label=["a"] * 30 + ["b"] * 10)
    out, report = run_step(build_step({"step": "balance", "label": "label"}), rows)
    assert report.details["after"] == {"a": 10, "b": 10} and len(out) == 20
    out, report = run_step(build_step({"step": "balance", "label": "label", "mode": "over",
                                       "target": {"a": 0.5, "b": 0.5}}), rows)
    assert report.details["after"] == {"a": 30, "b": 30}


def test_clean_masks_chinese_pii_applies_glossary_and_filters(tmp_path):
    glossary = tmp_path / "g.yaml"
    glossary.write_text("二型糖尿病: T2DM\ntype 2 diabetes: T2DM\n", encoding="utf-8")
    rows = rows_of([
        "患者张三，手机 13812345678，身份证 11010519491231002X，邮箱 zs@example.com，诊断：二型糖尿病",
        "<p>Patient has <b>Type 2 Diabetes</b>&nbsp;since 2019</p>",
        "Eat a banana! " * 50,
        "１２３ ＡＢＣ\u200b  spaced\t\tout",
    ])
    out, report = run_step(build_step({"step": "clean", "pii": ["email", "cn_id", "cn_mobile"],
                                       "glossary": str(glossary), "strip_html": True,
                                       "max_repeat_ratio": 0.5, "collapse_spaces": True,
                                       "fields": ["instruction"]}), rows)
    texts = [r["instruction"] for r in out]
    assert texts[0] == "患者张三，手机 [PHONE]，身份证 [ID]，邮箱 [EMAIL]，诊断：T2DM"
    assert texts[1] == "Patient has T2DM since 2019"
    assert texts[2] == "123 ABC spaced out"
    assert report.details["pii_masked"] == {"email": 1, "cn_id": 1, "cn_mobile": 1}
    assert report.details["dropped"]["repeated 3-gram ratio above 0.5"]["origins"] == ["f.jsonl:3"]


def test_id_number_with_a_wrong_check_digit_is_not_masked():
    from tunesmith.data.pii import mask_pii

    assert mask_pii("号码 110105194912310021", ["cn_id"], {}) == "号码 110105194912310021"


def test_template_renders_structured_rows_and_names_missing_columns():
    rows = [{"patient_id": "P001", "diagnosis": "T2DM", "_origin": "p.csv:2"}]
    options = {"step": "template", "instruction": "Summarise patient {{ patient_id }}.",
               "output": "Patient {{ patient_id }} is diagnosed with {{ diagnosis }}."}
    out, _ = run_step(build_step(options), rows)
    assert out[0]["instruction"] == "Summarise patient P001." and out[0]["output"].endswith("with T2DM.")
    with pytest.raises(DataError, match=r"p.csv:2: template output: 'age' is undefined"):
        run_step(build_step({**options, "output": "{{ age }}"}), rows)


def test_augment_marks_provenance_and_uses_the_synonym_dictionary():
    rows = rows_of(["please write a happy poem", "请写一首快乐的诗"])
    out, report = run_step(build_step({"step": "augment", "ops": ["synonym"], "alpha": 0.5,
                                       "synonyms": {"happy": ["joyful"], "快乐": ["愉快"]}}), rows)
    assert [r["instruction"] for r in out] == ["please write a happy poem", "please write a joyful poem",
                                                "请写一首快乐的诗", "请写一首愉快的诗"]
    assert out[1]["_augmented_from"] == "f.jsonl:1" and out[3]["_origin"] == "f.jsonl:2#aug1"
    assert report.details["by_op"] == {"synonym": 2}
    assert all(r["output"] == "ok" for r in out)


def test_augment_model_ops_need_a_local_model():
    with pytest.raises(DataError, match="mask_fill needs a local model directory"):
        run_step(build_step({"step": "augment", "ops": ["mask_fill"]}), rows_of(["x y z"]))
    with pytest.raises(DataError, match="back_translate needs translate_models"):
        run_step(build_step({"step": "augment", "ops": ["back_translate"]}), rows_of(["x y z"]))


def test_pipeline_options_get_did_you_mean_errors():
    from tunesmith.config import validate_config
    from tunesmith.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data.pipeline.0.step: unknown data step 'dedupe'. Did you mean 'dedup'"):
        validate_config({"data": {"pipeline": [{"step": "dedupe"}]}})
    with pytest.raises(ConfigError, match=r"data.pipeline.1.treshold: unknown option .*did you mean 'threshold'"):
        validate_config({"data": {"pipeline": [{"step": "clean"}, {"step": "dedup", "treshold": 0.9}]}})


def test_split_keeps_augmented_variants_with_their_source():
    rows = rows_of([f"write about topic {i} in detail please" for i in range(20)])
    augmented, _ = run_step(build_step({"step": "augment", "ops": ["swap"], "alpha": 0.3, "copies": 2}), rows)
    out, _ = _split(augmented, ratios="6:2:2")
    split_of = {}
    for r in out:
        split_of.setdefault(r.get("_augmented_from", r["_origin"]), set()).add(r["_split"])
    assert len(split_of) == 20 and all(len(s) == 1 for s in split_of.values())


def test_clean_keeps_code_indentation():
    code = "def f(x):\n    if x:   \n        return 1\n\n\n\n    return  0\t\n"
    out, _ = run_step(build_step({"step": "clean", "fields": ["instruction"]}), rows_of([code]))
    assert out[0]["instruction"] == "def f(x):\n    if x:\n        return 1\n\n    return  0"


def test_mask_fill_with_a_local_masked_language_model(tmp_path):
    """A tiny random BERT saved to disk stands in for any local masked LM (nothing downloads)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    words = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log", "quickly", "slowly"]
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    model = BertForMaskedLM(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=32))
    model.save_pretrained(tmp_path / "mlm")
    tokenizer.save_pretrained(tmp_path / "mlm")
    rows = rows_of(["the cat sat on a mat quickly"])
    out, report = run_step(build_step({"step": "augment", "ops": ["mask_fill"], "alpha": 0.3,
                                       "mask_model": str(tmp_path / "mlm")}), rows)
    assert report.details["by_op"] == {"mask_fill": 1}
    before, after = rows[0]["instruction"].split(), out[1]["instruction"].split()
    changed = [b != a for b, a in zip(before, after)]
    assert len(after) == len(before) and sum(changed) == 2  # round(0.3 * 7) words replaced
    assert all(w in vocab for w in after) and out[1]["_augmented_from"] == "f.jsonl:1"


def test_pipeline_errors_point_at_the_yaml_line(tmp_path):
    from tunesmith.config import load_config
    from tunesmith.errors import ConfigError

    path = tmp_path / "run.yaml"
    path.write_text("data:\n  train: x.jsonl\n  pipeline:\n    - step: clean\n    - step: dedup\n      treshold: 0.9\n")
    with pytest.raises(ConfigError, match=r"run.yaml line 6: data.pipeline.1.treshold"):
        load_config(path)


def test_back_translation_through_an_openai_compatible_endpoint():
    """A local fake endpoint: the variant is what came back from the round trip."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    prompts = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][0]["content"]
            prompts.append((self.path, body["model"], prompt))
            reply = "Bonjour le monde" if "French" in prompt else "Hello there, world"
            data = json.dumps({"choices": [{"message": {"content": reply}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out, report = run_step(build_step({"step": "augment", "ops": ["back_translate"], "endpoint_model": "m",
                                           "endpoint": f"http://127.0.0.1:{server.server_port}/v1"}),
                               rows_of(["Hello world"]))
    finally:
        server.shutdown()
    assert [r["instruction"] for r in out] == ["Hello world", "Hello there, world"]
    assert [p[0] for p in prompts] == ["/v1/chat/completions"] * 2 and prompts[0][1] == "m"
    assert "Hello world" in prompts[0][2] and "Bonjour le monde" in prompts[1][2]

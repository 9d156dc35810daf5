"""`tunesmith data` commands end to end on small files: outputs, reports, user errors."""

import json
import sqlite3

import pytest

from tunesmith.cli.main import run
from tunesmith.utils.io import read_jsonl


def _run(*args):
    with pytest.raises(SystemExit) as exit_info:
        run(list(args))
        raise SystemExit(0)
    return exit_info.value.code


def test_convert_sqlite_query_through_templates(tmp_path):
    db = tmp_path / "clinic.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table visits (patient_id text, diagnosis text, age int)")
        conn.executemany("insert into visits values (?, ?, ?)", [("P001", "T2DM", 54), ("P002", "HTN", 61)])
    out = tmp_path / "sft.jsonl"
    code = _run("data", "convert", f"{db}::SELECT * FROM visits WHERE age > 55", "--to", "openai", "-o", str(out),
                "--instruction", "What is the diagnosis of patient {{ patient_id }} (age {{ age }})?",
                "--answer", "Patient {{ patient_id }} has {{ diagnosis }}.")
    assert code == 0
    assert read_jsonl(out) == [{"messages": [
        {"role": "user", "content": "What is the diagnosis of patient P002 (age 61)?"},
        {"role": "assistant", "content": "Patient P002 has HTN."}]}]
    bad = _run("data", "convert", f"{db}::visits", "--to", "alpaca", "-o", str(out), "--instruction", "{{ name }}",
               "--answer", "x")
    assert bad == 2


def test_convert_between_formats_keeps_content(tmp_path):
    src = tmp_path / "a.json"
    src.write_text(json.dumps([{"instruction": "Say hi", "input": "", "output": "hi", "system": "be brief"}]))
    for target in ("sharegpt", "openai", "alpaca"):
        out = tmp_path / f"{target}.jsonl"
        assert _run("data", "convert", str(src), "--to", target, "-o", str(out)) == 0
        src = out
    assert read_jsonl(src) == [{"instruction": "Say hi", "input": "", "output": "hi", "system": "be brief"}]


def test_convert_preference_layouts(tmp_path):
    src = tmp_path / "dpo.jsonl"
    src.write_text(json.dumps({"conversations": [{"from": "human", "value": "2+2?"}],
                               "chosen": {"from": "gpt", "value": "4"}, "rejected": {"from": "gpt", "value": "5"}}) + "\n")
    out = tmp_path / "trl.jsonl"
    assert _run("data", "convert", str(src), "--to", "preference", "-o", str(out)) == 0
    assert read_jsonl(out) == [{"prompt": [{"role": "user", "content": "2+2?"}],
                                "chosen": [{"role": "assistant", "content": "4"}],
                                "rejected": [{"role": "assistant", "content": "5"}]}]


def test_split_cli_writes_files_and_input_is_untouched(tmp_path):
    src = tmp_path / "rows.csv"
    src.write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(20)))
    before = src.read_bytes()
    assert _run("data", "split", str(src), "-o", str(tmp_path / "out"), "--stratify", "label", "--ratios", "6:2:2") == 0
    counts = {n: len(read_jsonl(tmp_path / "out" / f"{n}.jsonl")) for n in ("train", "eval", "test")}
    assert counts == {"train": 12, "eval": 4, "test": 4} and src.read_bytes() == before
    assert _run("data", "split", str(src), "-o", str(tmp_path / "o2"), "--ratios", "0.5,0.4") == 2
    assert _run("data", "dedup", str(src), "-o", str(src)) == 2  # never rewrites an input


def test_mix_by_weight(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps({"text": f"a{i}"}) + "\n" for i in range(30)))
    b.write_text("".join(json.dumps({"text": f"b{i}"}) + "\n" for i in range(10)))
    out = tmp_path / "mix.jsonl"
    assert _run("data", "mix", f"{a}:0.75", f"{b}:0.25", "-o", str(out)) == 0
    texts = [r["text"] for r in read_jsonl(out)]
    assert len(texts) == 40 and sum(t.startswith("b") for t in texts) == 10


def test_dedup_streams_jsonl_and_writes_report(tmp_path):
    src = tmp_path / "d.jsonl"
    rows = [{"text": "同一句话重复出现了两次而已"}, {"text": "完全不同的另一句话"}, {"text": "同一句话重复出现了两次而已！"}]
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    out, report = tmp_path / "o.jsonl", tmp_path / "r.json"
    assert _run("data", "dedup", str(src), "-o", str(out), "--report", str(report)) == 0
    assert [r["text"] for r in read_jsonl(out)] == [rows[0]["text"], rows[1]["text"]]
    clusters = json.loads(report.read_text())["details"]["cluster_list"]
    assert clusters == [{"kept": f"{src}:1", "removed": [{"origin": f"{src}:3", "similarity": 1.0, "kind": "exact"}]}]


def test_dedup_and_decontaminate_on_shared_datasets(tmp_path):
    from conftest import shared

    en = shared("llamafactory_alpaca_demo", "alpaca_en_demo.json")
    huanhuan = shared("huanhuan", "huanhuan.json")
    for path, removed in ((en, 14), (huanhuan, 113)):
        report = tmp_path / f"{path.stem}.json"
        assert _run("data", "dedup", str(path), "-o", str(tmp_path / f"{path.stem}.jsonl"), "--report", str(report)) == 0
        details = json.loads(report.read_text())
        assert details["rows_in"] - details["rows_out"] == removed
    report = tmp_path / "dc.json"
    against = shared("alpaca_1k_bloom_lora", "alpaca_data_1k.json")
    assert _run("data", "decontaminate", str(en), "--against", str(against), "-o", str(tmp_path / "dc.jsonl"),
                "--report", str(report)) == 0
    removed = json.loads(report.read_text())["details"]["removed"]
    assert len(removed) == 18 and all(r["eval_origin"].startswith(str(against)) for r in removed)

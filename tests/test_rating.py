"""Human rating kit: blind shuffled export, aggregation with hand-checked agreement, bad sheets."""

import csv
import json

import pytest

from tunesmith.cli.main import run as cli
from tunesmith.errors import DataError
from tunesmith.evaluation.rating_import import (
    import_rating,
    krippendorff_alpha_interval,
    pairwise_kappa,
)


@pytest.fixture
def kit(tmp_path):
    for system, word in (("basemodel", "meh"), ("tunedmodel", "great")):
        rows = [{"origin": f"e.jsonl:{i + 1}", "prompt": f"question {i}", "reference": f"answer {i}",
                 "prediction": f"{word} answer {i}"} for i in range(4)]
        folder = tmp_path / system
        folder.mkdir()
        (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli(["eval", "export-rating", str(tmp_path / "basemodel"), str(tmp_path / "tunedmodel"),
         "--output", str(tmp_path / "kit"), "--seed", "3"])
    return tmp_path / "kit"


def _items(kit):
    with open(kit / "rating_form.csv", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def _fill(path, items, key, scores_by_system, rater):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item", "relevance", "fluency", "domain_correctness", "comment", "rater"])
        for item in items:
            s = scores_by_system[key[item["item"]]["system"]]
            writer.writerow([item["item"], s, s, "", "", rater])
    return path


def test_export_is_blind_and_shuffled(kit):
    items = _items(kit)
    assert len(items) == 8 and len({i["item"] for i in items}) == 8
    text = (kit / "rating_form.csv").read_text() + (kit / "rating_form.html").read_text()
    assert "basemodel" not in text and "tunedmodel" not in text
    systems = [json.loads((kit / "rating_key.json").read_text())["items"][i["item"]]["system"] for i in items]
    assert systems != sorted(systems)  # interleaved, not grouped by model
    assert {"relevance", "fluency", "domain_correctness"} <= set(items[0])


def test_import_gives_means_and_agreement(kit, tmp_path):
    key = json.loads((kit / "rating_key.json").read_text())["items"]
    items = _items(kit)
    a = _fill(tmp_path / "a.csv", items, key, {"basemodel": 2, "tunedmodel": 5}, "ann")
    b = _fill(tmp_path / "b.csv", items, key, {"basemodel": 2, "tunedmodel": 4}, "bo")
    result = import_rating(kit, [a, b])
    assert result["raters"] == ["ann", "bo"]
    assert result["means"]["basemodel"]["relevance"] == 2.0
    assert result["means"]["tunedmodel"]["relevance"] == 4.5
    assert "domain_correctness" not in result["means"]["tunedmodel"]  # left empty by both
    assert 0.5 < result["agreement"]["relevance"]["krippendorff_alpha"] < 1
    assert (kit / "rating_report.json").is_file()


def test_import_adds_a_section_to_an_eval_report(kit, tmp_path):
    from tunesmith.evaluation.report_html import write_report

    report_dir = tmp_path / "report"
    write_report({"title": "t", "models": ["x"], "scores": {"x": {"rouge1": 0.5}}, "directions": {}}, report_dir)
    key = json.loads((kit / "rating_key.json").read_text())["items"]
    sheet = _fill(tmp_path / "a.csv", _items(kit), key, {"basemodel": 1, "tunedmodel": 3}, "ann")
    import_rating(kit, [sheet], report_dir)
    import_rating(kit, [sheet], report_dir)  # a second import replaces the section
    report = json.loads((report_dir / "report.json").read_text())
    assert [s["id"] for s in report["sections"]] == ["human_rating"]
    assert "Human rating" in (report_dir / "report.html").read_text()


def test_agreement_by_hand():
    # Units (1,2) and (3,3): Do = 2/4 = 0.5; pooled [1,2,3,3]: De = 22/12; alpha = 1 - 0.5/(22/12).
    assert krippendorff_alpha_interval([[1, 2], [3, 3]]) == pytest.approx(1 - 0.5 / (22 / 12))
    assert krippendorff_alpha_interval([[1, 1], [4, 4], [2, 2]]) == 1.0
    assert krippendorff_alpha_interval([[5]]) is None
    from sklearn.metrics import cohen_kappa_score

    a, b = {"i1": 1, "i2": 3, "i3": 5}, {"i1": 2, "i2": 3, "i3": 4}
    expected = cohen_kappa_score([1, 3, 5], [2, 3, 4], weights="quadratic", labels=[1, 2, 3, 4, 5])
    assert pairwise_kappa({"a": a, "b": b}) == pytest.approx(expected)


def test_bad_sheet_names_file_line_and_column(kit, tmp_path):
    item = _items(kit)[1]["item"]
    bad = tmp_path / "bad.csv"
    bad.write_text("item,relevance,fluency,domain_correctness\nR0,1,1,1\n")
    with pytest.raises(DataError, match="bad.csv:2: item 'R0' is not in"):
        import_rating(kit, [bad])
    bad.write_text(f"item,relevance,fluency,domain_correctness\n{_items(kit)[0]['item']},1,1,1\n{item},7,1,1\n")
    with pytest.raises(DataError, match="bad.csv:3: column relevance is '7'"):
        import_rating(kit, [bad])

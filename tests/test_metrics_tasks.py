"""Classification and SQuAD metrics against values worked out by hand."""

import pytest

from tunesmith.metrics import METRICS
from tunesmith.metrics.classification import confusion_counts, per_class_report, plot_confusion_matrix
from tunesmith.metrics.squad import answer_tokens, normalize_answer

PREDS = [0, 1, 1, 2, 2, 2]
REFS = [0, 1, 2, 2, 2, 0]
NAMES = ["a", "b", "c"]


def test_classification_scores_by_hand():
    # per class (TP, FP, FN): a (1,0,1) b (1,1,0) c (2,1,1); 4 of 6 right
    scores = METRICS.get("classification").compute(PREDS, REFS, labels=NAMES)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["macro_precision"] == pytest.approx((1 + 0.5 + 2 / 3) / 3)
    assert scores["macro_recall"] == pytest.approx((0.5 + 1 + 2 / 3) / 3)
    assert scores["macro_f1"] == pytest.approx(2 / 3)
    for key in ("micro_precision", "micro_recall", "micro_f1"):
        assert scores[key] == pytest.approx(4 / 6)


def test_class_never_predicted_or_seen_still_counts_in_macro():
    scores = METRICS.get("classification").compute([0, 0], [0, 0], labels=["x", "y"])
    assert scores["accuracy"] == 1.0
    assert scores["macro_f1"] == pytest.approx(0.5)  # y has no support: F1 0, no warning


def test_per_class_report_and_confusion_matrix(tmp_path):
    report = per_class_report(PREDS, REFS, NAMES)
    assert report["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert report["b"]["precision"] == 0.5 and report["b"]["recall"] == 1.0
    assert confusion_counts(PREDS, REFS, NAMES) == [[1, 0, 1], [0, 1, 0], [0, 1, 2]]
    png = plot_confusion_matrix(PREDS, REFS, NAMES, tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_squad_normalisation_matches_official_rules():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert answer_tokens("北京大学，2008年") == ["北", "京", "大", "学", "2008", "年"]


def test_squad_exact_match_and_f1_by_hand():
    squad = METRICS.get("squad").compute
    # EM: 1 (normalised equal) ; F1 'denver broncos' vs 'broncos': P=1/2 R=1 -> 2/3
    assert squad(["the Denver Broncos"], [["Denver Broncos", "Broncos"]]) == {"exact_match": 100.0, "f1": 100.0}
    assert squad(["Denver Broncos"], [["Broncos"]])["f1"] == pytest.approx(100 * 2 / 3)
    assert squad(["Denver Broncos"], [["Broncos"]])["exact_match"] == 0.0
    # Chinese by character: 北京大学 vs 北京的大学: 4 common, P=1 R=4/5 -> F1 8/9
    zh = squad(["北京大学"], [["北京的大学"]])
    assert zh["f1"] == pytest.approx(100 * 8 / 9) and zh["exact_match"] == 0.0
    assert squad(["北 京"], [["北京。"]])["exact_match"] == 100.0


def test_squad_unanswerable_wants_empty_prediction():
    squad = METRICS.get("squad").compute
    assert squad(["", "something"], [[], []]) == {"exact_match": 50.0, "f1": 50.0}

"""Metrics against hand-checked values and against sacrebleu / rouge-score reference outputs."""

import math

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from tunesmith.metrics import METRICS
from tunesmith.metrics.text_utils import MetricInputError

EN_PREDS = ["the cat sat on the mat", "a quick brown fox jumped over dogs", "nothing in common here"]
EN_REFS = ["the cat is on the mat", "the quick brown fox jumps over the lazy dog", "completely different words"]


def compute(name, preds, refs, **options):
    return METRICS.get(name).compute(preds, refs, **options)


def test_rouge_matches_rouge_score_on_english():
    ours = compute("rouge", EN_PREDS, EN_REFS)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    for key in ("rouge1", "rouge2", "rougeL"):
        expected = [scorer.score(r, p)[key].fmeasure for p, r in zip(EN_PREDS, EN_REFS)]
        assert ours[key] == pytest.approx(sum(expected) / len(expected))
        assert [row[key] for row in ours["rows"]] == pytest.approx(expected)


def test_rouge_with_stemmer_matches_rouge_score():
    ours = compute("rouge", EN_PREDS, EN_REFS, use_stemmer=True)
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    expected = [scorer.score(r, p)["rouge1"].fmeasure for p, r in zip(EN_PREDS, EN_REFS)]
    assert ours["rouge1"] == pytest.approx(sum(expected) / len(expected))


def test_rouge_scores_chinese_per_character_where_rouge_score_gives_zero():
    # 今天天气很好 vs 今天天气不错: 4 of 6 characters shared; bigrams 今天 天天 天气 shared of 5.
    ours = compute("rouge", ["今天天气很好"], ["今天天气不错"])
    assert ours["rouge1"] == pytest.approx(4 / 6)
    assert ours["rouge2"] == pytest.approx(3 / 5)
    assert ours["rougeL"] == pytest.approx(4 / 6)
    plain = rouge_scorer.RougeScorer(["rouge1"]).score("今天天气不错", "今天天气很好")["rouge1"].fmeasure
    assert plain == 0.0  # why the CJK-aware tokenizer exists


def test_rouge_hand_checked_english():
    # "the cat sat" vs "the cat sat on the mat": P = 3/3, R = 3/6, F = 2/3.
    assert compute("rouge", ["the cat sat"], ["the cat sat on the mat"])["rouge1"] == pytest.approx(2 / 3)


def test_bleu_hand_checked_and_equal_to_sacrebleu():
    # p1..p4 = 5/6, 4/5, 3/4, 2/3 and no brevity penalty: BLEU = (1/3) ** (1/4).
    result = compute("bleu", ["a b c d e f"], ["a b c d e g"])
    assert result["bleu"] == pytest.approx(100 * (1 / 3) ** 0.25, abs=1e-6)
    assert result["bleu_brevity_penalty"] == 1.0
    reference = sacrebleu.corpus_bleu(EN_PREDS, [EN_REFS]).score
    assert compute("bleu", EN_PREDS, EN_REFS)["bleu"] == pytest.approx(reference)


def test_bleu_uses_zh_tokenizer_for_chinese():
    # Per character: p1..p4 = 4/6, 3/5, 2/4, 1/3.
    result = compute("bleu", ["今天天气很好"], ["今天天气不错"])
    assert result["bleu"] == pytest.approx(100 * (4 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=1e-6)
    assert result["bleu"] == pytest.approx(sacrebleu.corpus_bleu(["今天天气很好"], [["今天天气不错"]], tokenize="zh").score)
    assert compute("bleu", ["今天天气很好"], ["今天天气不错"], tokenize="13a")["bleu"] < 1


def test_bleu_rows_are_sacrebleu_sentence_bleu():
    rows = compute("bleu", EN_PREDS, EN_REFS)["rows"]
    assert [r["bleu"] for r in rows] == pytest.approx([sacrebleu.sentence_bleu(p, [r]).score for p, r in zip(EN_PREDS, EN_REFS)])


def test_perplexity_is_token_weighted():
    # 5 tokens at ln 2 nats each in total -> perplexity 2; a row with no tokens is skipped.
    rows = [{"nll": 2 * math.log(2), "tokens": 2}, {"nll": 3 * math.log(2), "tokens": 3}, {"nll": 0.0, "tokens": 0}]
    result = compute("perplexity", rows, None)
    assert result["perplexity"] == pytest.approx(2.0)
    assert result["loss"] == pytest.approx(math.log(2))
    assert result["rows"][2] == {}


def test_regex_and_json_hand_checked(tmp_path):
    assert compute("regex", ["42", "x42", " 7 "], None, pattern=r"\d+")["regex_match"] == pytest.approx(2 / 3)
    assert compute("regex", ["x42"], None, pattern=r"\d+", mode="search")["regex_match"] == 1.0
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "object", "required": ["name"], "properties": {"age": {"type": "integer"}}}')
    outputs = ['{"name": "a", "age": 3}', '```json\n{"name": "b"}\n```', '{"age": "x"}', "not json"]
    result = compute("json", outputs, None, schema=str(schema))
    assert result["json_valid"] == pytest.approx(3 / 4)
    assert result["json_schema_valid"] == pytest.approx(2 / 4)
    assert "name" in result["rows"][2]["note"] and "not JSON" in result["rows"][3]["note"]


@pytest.mark.parametrize("call, message", [
    (lambda: compute("rouge", ["a", "b"], ["a"]), "2 predictions but 1 references"),
    (lambda: compute("bleu", [], []), "eval set is empty"),
    (lambda: compute("rouge", ["a"], None), "needs references"),
    (lambda: compute("rouge", ["a", "b"], ["a", None]), "rows 2 have no reference"),
    (lambda: compute("regex", ["a"], None), "needs a pattern"),
    (lambda: compute("regex", ["a"], None, pattern="("), "not a valid regular expression"),
    (lambda: compute("json", ["{}"], None, schema="/nope/schema.json"), "does not exist"),
    (lambda: compute("perplexity", [], None), "eval set is empty"),
])
def test_bad_input_gives_clear_errors(call, message):
    with pytest.raises(MetricInputError, match=message):
        call()

"""A/B reports from recorded traffic and feedback, checked against scipy on the same numbers."""

import json

import numpy as np
import pytest
from scipy import stats

from finished_runs import finished_runs  # noqa: F401  (fixture)
from tunesmith.serving.ab import ab_report
from tunesmith.serving.registry import ModelRegistry, RegistryError


@pytest.fixture
def registry(tmp_path, finished_runs):  # noqa: F811
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'registry.db'}")
    registry.add("chat", finished_runs[0])
    registry.add("chat", finished_runs[1])
    registry.split("chat", {1: 50, 2: 50})
    return registry


def _feedback(registry, version: int, scores) -> None:
    for i, score in enumerate(scores):
        completion = f"cmpl-v{version}-{i}"
        registry.record_completion(completion, "chat", version, subject=f"user-{i}")
        registry.record_feedback(completion, score)


def test_scores_get_welch_test_intervals_latency_and_a_plot(registry, tmp_path):
    rng = np.random.default_rng(0)
    latencies = {1: rng.uniform(20, 80, 40), 2: rng.uniform(30, 120, 40)}
    statuses = {1: [500, 500] + [200] * 38, 2: [429] + [200] * 39}
    for version in (1, 2):
        for status, latency in zip(statuses[version], latencies[version]):
            registry.record_request("chat", version, status, latency, "someone")
    scores = {1: rng.normal(0.5, 0.15, 30), 2: rng.normal(0.8, 0.15, 30)}
    for version in (1, 2):
        _feedback(registry, version, scores[version])
    report = ab_report(registry, "chat", tmp_path / "ab")
    assert report["feedback"] == "score"
    for row, version in zip(report["versions"], (1, 2)):
        assert row["requests"] == 40 and row["errors"] == {1: 2, 2: 1}[version]
        assert row["latency_p50_ms"] == pytest.approx(np.percentile(latencies[version], 50))
        assert row["latency_p95_ms"] == pytest.approx(np.percentile(latencies[version], 95))
        assert row["mean_feedback"] == pytest.approx(scores[version].mean())
        low, high = stats.t.interval(0.95, 29, loc=scores[version].mean(), scale=stats.sem(scores[version]))
        assert row["ci95"] == pytest.approx([low, high])
    (test,) = report["tests"]
    assert test["method"] == "Welch's t-test"
    assert test["p_value"] == pytest.approx(stats.ttest_ind(scores[2], scores[1], equal_var=False).pvalue)
    assert test["significant"] and "v2 is better" in report["verdict"] and "not yet" not in report["verdict"]
    assert (tmp_path / "ab" / "ab_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "ab" / "ab_report.json").read_text())["tests"] == report["tests"]


def test_few_thumbs_are_not_yet_significant(registry, tmp_path):
    _feedback(registry, 1, [1, 0, 1])
    _feedback(registry, 2, [1, 1, 1, 1])
    report = ab_report(registry, "chat", tmp_path)
    assert report["feedback"] == "thumbs"
    (test,) = report["tests"]
    assert test["method"] == "Fisher's exact test"
    assert test["p_value"] == pytest.approx(stats.fisher_exact([[2, 1], [4, 0]]).pvalue)
    assert not test["significant"]
    assert "not yet significant" in report["verdict"]
    ci = stats.binomtest(2, 3).proportion_ci(0.95, method="wilson")
    assert report["versions"][0]["ci95"] == pytest.approx([ci.low, ci.high])


def test_many_thumbs_get_the_two_proportion_test(registry, tmp_path):
    _feedback(registry, 1, [1] * 30 + [0] * 30)
    _feedback(registry, 2, [1] * 45 + [0] * 15)
    (test,) = ab_report(registry, "chat", tmp_path)["tests"]
    assert test["method"] == "two-proportion z-test"
    pooled = 75 / 120
    z = (45 / 60 - 30 / 60) / np.sqrt(pooled * (1 - pooled) * (2 / 60))
    assert test["p_value"] == pytest.approx(2 * stats.norm.sf(z))
    assert test["p_value"] == pytest.approx(stats.chi2_contingency([[30, 30], [45, 15]], correction=False).pvalue)
    assert test["significant"]


def test_one_version_or_one_score_each_is_not_a_test(registry, tmp_path):
    registry.record_request("chat", 1, 200, 10.0)
    assert "an A/B test needs two" in ab_report(registry, "chat", tmp_path)["verdict"]
    _feedback(registry, 1, [0.2])
    _feedback(registry, 2, [0.9])
    report = ab_report(registry, "chat", tmp_path)
    assert report["tests"][0]["p_value"] is None
    assert "not yet significant: too little feedback" in report["verdict"]
    with pytest.raises(RegistryError, match="no model named 'other'"):
        ab_report(registry, "other", tmp_path)


def test_ab_report_cli_prints_json(registry, tmp_path, capsys):
    from tunesmith.cli.main import run

    _feedback(registry, 1, [0.1, 0.3, 0.2])
    _feedback(registry, 2, [0.4, 0.5, 0.7])
    run(["ab", "report", "chat", "--out", str(tmp_path / "out"), "--json", "--db", str(registry.engine.url)])
    printed = json.loads(capsys.readouterr().out)
    assert printed["tests"][0]["p_value"] == pytest.approx(
        stats.ttest_ind([0.4, 0.5, 0.7], [0.1, 0.3, 0.2], equal_var=False).pvalue)
    assert (tmp_path / "out" / "ab_report.png").is_file()

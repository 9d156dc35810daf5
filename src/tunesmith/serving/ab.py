"""A/B reports from recorded traffic and feedback: per version requests, errors, latency, mean
feedback with a 95% interval, a significance test against the baseline version, a PNG and a verdict
in plain words that says when a difference is not yet significant."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import stats

from tunesmith.utils.io import save_png, write_json

ALPHA = 0.05  # family-wise: split over the comparisons (Bonferroni) when there are several


def ab_report(registry, name: str, out_dir: str | Path | None) -> dict:
    """The A/B report of NAME (also written to OUT_DIR/ab_report.json and OUT_DIR/ab_report.png;
    with OUT_DIR None, only returned: `plot` is then None)."""
    registry.show(name)  # an unknown name is an error, not an empty report
    requests, feedback = registry.requests_of(name), registry.feedback_of(name)
    versions = sorted({r[0] for r in requests} | {f[0] for f in feedback})
    scores = {v: [s for version, s in feedback if version == v] for v in versions}
    thumbs = bool(feedback) and all(s in (0.0, 1.0) for _, s in feedback)
    rows = [_version_row(v, [r for r in requests if r[0] == v], scores[v], thumbs) for v in versions]
    tested = [v for v in versions if scores[v]]
    baseline = tested[0] if tested else None
    tests = [_test(baseline, v, scores[baseline], scores[v], thumbs) for v in tested[1:]]
    alpha = ALPHA / max(len(tests), 1)
    for test in tests:
        test["significant"] = test["p_value"] is not None and test["p_value"] < alpha
    kind = ("thumbs" if thumbs else "score") if feedback else "none"
    report = {"name": name, "feedback": kind, "alpha": alpha, "baseline": baseline,
              "versions": rows, "tests": tests, "verdict": _verdict(name, versions, rows, tests, alpha),
              "plot": None if out_dir is None else str(Path(out_dir) / "ab_report.png")}
    if out_dir is not None:
        _plot(name, rows, Path(out_dir) / "ab_report.png")
        write_json(Path(out_dir) / "ab_report.json", report)
    return report


def _version_row(version: int, requests: list[tuple], scores: list[float], thumbs: bool) -> dict:
    latencies = np.array([r[2] for r in requests], dtype=float)
    errors = sum(1 for r in requests if r[1] >= 400)
    mean = float(np.mean(scores)) if scores else None
    return {
        "version": version, "requests": len(requests), "errors": errors,
        "error_rate": errors / len(requests) if requests else None,
        "latency_p50_ms": float(np.percentile(latencies, 50)) if requests else None,
        "latency_p95_ms": float(np.percentile(latencies, 95)) if requests else None,
        "feedback": len(scores), "mean_feedback": mean, "ci95": _interval(scores, thumbs),
    }


def _interval(scores: list[float], thumbs: bool) -> list[float] | None:
    """95% interval of the mean: Wilson's for a share of thumbs up, Student's t for scores."""
    if thumbs and scores:
        ci = stats.binomtest(int(sum(scores)), len(scores)).proportion_ci(0.95, method="wilson")
        return [float(ci.low), float(ci.high)]
    if len(scores) < 2:
        return None
    mean, sem = float(np.mean(scores)), float(stats.sem(scores))
    if sem == 0:
        return [mean, mean]
    low, high = stats.t.interval(0.95, len(scores) - 1, loc=mean, scale=sem)
    return [float(low), float(high)]


def _test(baseline: int, version: int, a: list[float], b: list[float], thumbs: bool) -> dict:
    """Version against baseline: a two-proportion test for thumbs, Welch's t-test for scores."""
    result = {"baseline": baseline, "version": version, "n": [len(a), len(b)],
              "means": [float(np.mean(a)), float(np.mean(b))], "p_value": None}
    if len(a) < 2 or len(b) < 2:
        return {**result, "method": None, "reason": "too little feedback (a test needs 2 or more per version)"}
    if thumbs:
        table = np.array([[sum(a), len(a) - sum(a)], [sum(b), len(b) - sum(b)]])
        expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
        if expected.min() < 5:  # the chi-square approximation is poor on small counts
            method, p = "Fisher's exact test", stats.fisher_exact(table).pvalue
        else:  # the 2x2 chi-square without continuity correction is the pooled two-proportion z-test
            method, p = "two-proportion z-test", stats.chi2_contingency(table, correction=False).pvalue
    else:
        method, p = "Welch's t-test", stats.ttest_ind(b, a, equal_var=False).pvalue
    if p is None or math.isnan(p):
        return {**result, "method": method, "reason": "no variation in the scores to test"}
    return {**result, "method": method, "p_value": float(p)}


def _verdict(name: str, versions: list[int], rows: list[dict], tests: list[dict], alpha: float) -> str:
    if len(versions) < 2:
        seen = f"only v{versions[0]} has" if versions else "no version has"
        return (f"{name}: {seen} traffic so far; an A/B test needs two "
                f"(e.g. tunesmith registry split {name} v1=50 v2=50).")
    if not tests:
        return f"{name}: not yet significant: no two versions have feedback yet; collect feedback to compare them."
    lines = []
    for test in tests:
        a, b = test["means"]
        pair = f"v{test['version']} vs v{test['baseline']}"
        if test["p_value"] is None:
            lines.append(f"{pair}: not yet significant: {test['reason']} (n={test['n'][1]} vs {test['n'][0]}).")
        elif test["significant"]:
            better = "better" if b > a else "worse"
            lines.append(f"{pair}: v{test['version']} is {better} (mean feedback {b:.3g} vs {a:.3g}, "
                         f"{test['method']} p={test['p_value']:.3g} < {alpha:.3g}): the difference is significant.")
        else:
            lines.append(f"{pair}: mean feedback {b:.3g} vs {a:.3g}; the difference is not yet significant "
                         f"({test['method']} p={test['p_value']:.3g}, n={test['n'][1]} vs {test['n'][0]}); "
                         "keep collecting feedback.")
    return " ".join(lines)


def _plot(name: str, rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"v{r['version']}" for r in rows]
    x = np.arange(len(rows))
    fig, (traffic, latency, feedback) = plt.subplots(1, 3, figsize=(13, 3.8))
    traffic.bar(x, [r["requests"] for r in rows], label="requests")
    traffic.bar(x, [r["errors"] for r in rows], label="errors", color="tab:red")
    latency.bar(x - 0.2, [r["latency_p50_ms"] or 0 for r in rows], 0.4, label="p50")
    latency.bar(x + 0.2, [r["latency_p95_ms"] or 0 for r in rows], 0.4, label="p95")
    means = [r["mean_feedback"] if r["mean_feedback"] is not None else np.nan for r in rows]
    spans = np.array([[m - r["ci95"][0], r["ci95"][1] - m] if r["ci95"] else [0, 0] for m, r in zip(means, rows)])
    feedback.errorbar(x, means, yerr=spans.T if len(rows) else None, fmt="o", capsize=6)
    for axis, title in ((traffic, "requests and errors"), (latency, "latency (ms)"),
                        (feedback, "mean feedback, 95% interval")):
        axis.set_xticks(x, labels)
        axis.set_xlim(-0.6, len(rows) - 0.4)
        axis.set_title(title)
    traffic.legend()
    latency.legend()
    fig.suptitle(f"A/B report: {name}")
    fig.tight_layout()
    return save_png(fig, path)

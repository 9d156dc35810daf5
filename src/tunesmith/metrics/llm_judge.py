"""LLM-as-judge: any OpenAI-compatible chat endpoint grades each output 1-5 against a rubric.

Plain urllib rather than the openai SDK: the protocol is one POST per row, and the SDK would
be a dependency for that alone. A row whose request or answer fails is recorded with the
reason and left out of the mean; only an endpoint that fails on every row stops the report.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tunesmith.metrics import register_metric
from tunesmith.metrics.text_utils import MetricInputError, check_pairs, mean

DEFAULT_RUBRIC = (
    "Score the assistant's answer from 1 (useless) to 5 (excellent). Consider: does it answer "
    "the question (relevance), is it correct and consistent with the reference answer when one "
    "is given (correctness), and is it clear, fluent language (fluency)."
)
_INSTRUCTIONS = (
    'Reply with JSON only: {"score": <integer 1-5>, "reason": "<one sentence>"}.'
)


def _rubric_text(rubric: str | None) -> str:
    if not rubric:
        return DEFAULT_RUBRIC
    path = Path(rubric)
    return path.read_text(encoding="utf-8") if len(rubric) < 300 and path.is_file() else rubric


def _judge_messages(rubric: str, prompt: str | None, prediction: str, reference: str | None) -> list[dict]:
    parts = [f"Question:\n{prompt}" if prompt else None, f"Answer to grade:\n{prediction}",
             f"Reference answer:\n{reference}" if reference else None]
    return [{"role": "system", "content": f"You are a strict grader. {rubric}\n{_INSTRUCTIONS}"},
            {"role": "user", "content": "\n\n".join(p for p in parts if p)}]


def parse_score(text: str) -> tuple[float, str]:
    """(score, reason) from the judge's reply: JSON first, else the first number 1-5."""
    try:
        data = json.loads(text.strip().strip("`").removeprefix("json"))
        score = float(data["score"])
        reason = str(data.get("reason", ""))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        found = re.search(r"\b([1-5])(?:\.\d+)?\b", text)
        if not found:
            raise ValueError(f"no score in the judge's reply: {text[:80]!r}") from None
        score, reason = float(found.group(1)), text.strip()[:200]
    if not 1 <= score <= 5:
        raise ValueError(f"score {score} is outside 1-5")
    return score, reason


def ask_judge(endpoint: str, model: str, messages: list[dict], api_key: str | None, timeout: float) -> str:
    url = endpoint.rstrip("/") + "/chat/completions"
    body = json.dumps({"model": model, "messages": messages, "temperature": 0}).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.loads(response.read().decode("utf-8"))
    return reply["choices"][0]["message"]["content"]


def _grade(args) -> dict:
    endpoint, model, messages, api_key, timeout = args
    try:
        score, reason = parse_score(ask_judge(endpoint, model, messages, api_key, timeout))
    except urllib.error.HTTPError as err:
        return {"note": f"judge failed: HTTP {err.code} {err.reason}"}
    except (urllib.error.URLError, OSError, KeyError, IndexError, TypeError, ValueError) as err:
        return {"note": f"judge failed: {type(err).__name__}: {err}"}
    return {"judge_score": score, "note": reason}


@register_metric("judge", "LLM-as-judge 1-5 via an OpenAI-compatible endpoint (options: endpoint, model, rubric)",
                 needs_references=False)
def judge(predictions: list[str], references: list[str] | None = None, prompts: list[str] | None = None,
          endpoint: str | None = None, model: str = "judge", rubric: str | None = None,
          api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0, workers: int = 4) -> dict:
    check_pairs("judge", predictions, references, needs_references=False)
    endpoint = endpoint or os.environ.get("TUNESMITH_JUDGE_ENDPOINT")
    if not endpoint:
        raise MetricInputError(
            "metric judge needs an endpoint: --metric-option judge.endpoint=http://host:port/v1 "
            "(or set TUNESMITH_JUDGE_ENDPOINT)"
        )
    text = _rubric_text(rubric)
    refs = references or [None] * len(predictions)
    asks = prompts or [None] * len(predictions)
    jobs = [(endpoint, model, _judge_messages(text, q, p, r), os.environ.get(api_key_env), timeout)
            for q, p, r in zip(asks, predictions, refs)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        rows = list(pool.map(_grade, jobs))
    scored = [r["judge_score"] for r in rows if "judge_score" in r]
    if not scored:
        raise MetricInputError(f"metric judge: the endpoint {endpoint} failed on every row; first: {rows[0]['note']}")
    return {"judge_score": mean(scored), "judge_failed_rows": float(len(rows) - len(scored)), "rows": rows}

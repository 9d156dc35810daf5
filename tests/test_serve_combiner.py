"""Concurrent /v1/predict calls on one model are combined into one batch (serving.engine.Combiner):
each caller gets its own rows back, and a bad request fails only itself."""

from __future__ import annotations

import threading

import pytest

from tunesmith.serving.engine import Combiner


class Sentiment:
    """A predict function with the tasks' contract: one output row per good input row, carrying
    the row's `_origin` as `origin`; a row without text fails the whole call."""

    def __init__(self):
        self.batches: list[int] = []

    def __call__(self, records: list[dict]) -> list[dict]:
        self.batches.append(len(records))
        for r in records:
            if not r.get("text"):
                raise ValueError(f"{r['_origin']}: no text")
        return [{"origin": r["_origin"], "label": "positive" if "good" in r["text"] else "negative"} for r in records]


def _concurrently(combiner: Combiner, lock: threading.Lock, requests: list[list[dict]]):
    """Every request starts while the model is busy, so they all wait together."""
    results, errors, threads = [None] * len(requests), [None] * len(requests), []

    def call(i: int) -> None:
        try:
            results[i] = combiner.run(requests[i])
        except ValueError as err:
            errors[i] = str(err)

    with lock:
        for i in range(len(requests)):
            threads.append(threading.Thread(target=call, args=(i,)))
            threads[-1].start()
        while len(combiner.pending) < len(requests):
            threading.Event().wait(0.001)
    for t in threads:
        t.join(10)
    return results, errors


def test_waiting_calls_run_as_one_batch_and_each_gets_its_rows():
    predict, lock = Sentiment(), threading.Lock()
    combiner = Combiner(predict, lock)
    requests = [[{"text": f"good {i}"}, {"text": f"bad {i}"}] if i % 2 else [{"text": f"bad {i}"}] for i in range(8)]
    results, errors = _concurrently(combiner, lock, requests)
    assert errors == [None] * 8
    assert predict.batches == [12]  # all 8 calls (12 rows) in one forward
    for i, rows in enumerate(results):
        expected = ["positive", "negative"] if i % 2 else ["negative"]
        assert [r["label"] for r in rows] == expected
        assert [r["origin"] for r in rows] == [f"request row {k}" for k in range(len(expected))]
        assert all(type(r["origin"]) is str for r in rows)


def test_a_bad_request_fails_only_itself():
    predict, lock = Sentiment(), threading.Lock()
    combiner = Combiner(predict, lock)
    requests = [[{"text": "good"}], [{"text": "fine"}, {"text": ""}], [{"text": "bad"}]]
    results, errors = _concurrently(combiner, lock, requests)
    assert errors[1] == "request row 1: no text"
    assert [r["label"] for r in results[0]] == ["positive"]
    assert [r["label"] for r in results[2]] == ["negative"]


def test_a_lone_call_runs_at_once():
    predict = Sentiment()
    assert Combiner(predict, threading.Lock()).run([{"text": "good"}])[0]["label"] == "positive"
    assert predict.batches == [1]
    with pytest.raises(ValueError, match="request row 0"):
        Combiner(predict, threading.Lock()).run([{"text": ""}])

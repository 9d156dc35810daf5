"""Prometheus metrics per model and version (prometheus-client). Labels carry only names the
server knows (served, registered or runs under the root); anything else counts as `unknown`,
so a client sending random model names cannot grow the label set."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
UNKNOWN = "unknown"


class ServerMetrics:
    def __init__(self, engine=None):
        self.registry = CollectorRegistry()
        r, mv = self.registry, ["model", "version"]
        self.requests = Counter("tunesmith_requests", "Requests by endpoint and HTTP status",
                                [*mv, "endpoint", "status"], registry=r)
        self.ttft = Histogram("tunesmith_time_to_first_token_seconds", "Time from request to first token",
                              mv, buckets=LATENCY, registry=r)
        self.itl = Histogram("tunesmith_inter_token_latency_seconds", "Time between generated tokens",
                             mv, buckets=LATENCY, registry=r)
        self.latency = Histogram("tunesmith_request_latency_seconds", "End-to-end request latency",
                                 [*mv, "endpoint"], buckets=LATENCY, registry=r)
        self.prompt_tokens = Counter("tunesmith_prompt_tokens", "Prompt tokens processed", mv, registry=r)
        self.completion_tokens = Counter("tunesmith_completion_tokens", "Tokens generated", mv, registry=r)
        queue = Gauge("tunesmith_queue_depth", "Generation requests waiting for a batch", registry=r)
        resident = Gauge("tunesmith_resident_adapters", "LoRA adapters in memory", registry=r)
        if engine is not None:
            queue.set_function(engine.queue_depth)
            resident.set_function(lambda: sum(len(v) for v in engine.resident().values()))
            r.register(_ResidentAdapters(engine))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def labels(target=None, known: bool = True) -> dict:
    """{model, version} of a resolved target; `unknown` for names that did not resolve."""
    if target is None or not known:
        return {"model": UNKNOWN, "version": ""}
    return {"model": target.name, "version": target.version or ""}


class _ResidentAdapters:
    """One series per adapter in memory now, read at scrape time: evicted adapters disappear
    instead of lingering as zeros, so the series stay bounded by --max-adapters per base."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        family = GaugeMetricFamily("tunesmith_adapter_resident", "1 for each LoRA adapter in memory",
                                   labels=["model", "base"])
        for base, names in self.engine.resident().items():
            for name in names:
                family.add_metric([name, base], 1)
        yield family

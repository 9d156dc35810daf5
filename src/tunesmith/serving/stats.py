"""Per-version traffic of a registered name from the requests the registry recorded: counts,
errors, latency percentiles and requests over time in fixed buckets (for charts)."""

from __future__ import annotations

from datetime import timezone

import numpy as np

from tunesmith.serving.registry import RegistryError


def version_stats(registry, name: str, bucket_seconds: int = 60) -> dict:
    """{name, bucket_seconds, versions: [{version, requests, errors, error_rate, latency_p50_ms,
    latency_p95_ms, timeline: [[bucket start (unix s), requests, errors], ...]}]}. Buckets run from
    the first recorded request to the last, empty ones included, so charts share one time axis."""
    if not 1 <= bucket_seconds <= 86400:
        raise RegistryError(f"bucket of {bucket_seconds} seconds: give 1 to 86400")
    shown = registry.show(name)  # an unknown name is an error, not empty statistics
    log = [(version, status, latency, _unix(at)) for version, status, latency, at in registry.request_log(name)]
    first = min((at for *_, at in log), default=0) // bucket_seconds * bucket_seconds
    last = max((at for *_, at in log), default=0)
    starts = list(range(first, last + 1, bucket_seconds)) if log else []
    rows = []
    for version in sorted({v["version"] for v in shown["versions"]} | {r[0] for r in log}):
        mine = [r for r in log if r[0] == version]
        latencies = np.array([r[2] for r in mine], dtype=float)
        errors = sum(1 for r in mine if r[1] >= 400)
        counts = {start: [0, 0] for start in starts}
        for _, status, _, at in mine:
            cell = counts[first + (at - first) // bucket_seconds * bucket_seconds]
            cell[0] += 1
            cell[1] += status >= 400
        rows.append({"version": version, "requests": len(mine), "errors": errors,
                     "error_rate": errors / len(mine) if mine else None,
                     "latency_p50_ms": float(np.percentile(latencies, 50)) if mine else None,
                     "latency_p95_ms": float(np.percentile(latencies, 95)) if mine else None,
                     "timeline": [[start, *counts[start]] for start in starts]})
    return {"object": "registry.stats", "name": name, "bucket_seconds": bucket_seconds, "versions": rows}


def _unix(moment) -> int:
    """SQLite hands back naive datetimes of what was stored in UTC."""
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())

"""Several tasks in one run: how many rows of each go into the training mix (data.sampling).

size: each task in proportion to its rows (the tasks simply pooled); equal: the same share each;
temperature: p_i ~ n_i^(1/T) (T = 1 is size, T -> infinity is equal), the usual cure for a large
task drowning a small one. A task's `weight` multiplies its share: over the mix its expected share
of the gradient, i.e. a loss weight that needs no change to the loss. The mix keeps the pooled
size (sum of n_i); a task drawn more than it has rows is repeated, less is subsampled, seeded.
"""

from __future__ import annotations

import random


def task_shares(sizes: dict[str, int], sampling: str, temperature: float = 1.0,
                weights: dict[str, float] | None = None) -> dict[str, float]:
    """The share of the training mix each task gets (summing to 1)."""
    exponent = {"size": 1.0, "equal": 0.0, "temperature": 1.0 / temperature}[sampling]
    raw = {name: n ** exponent * (weights or {}).get(name, 1.0) for name, n in sizes.items() if n > 0}
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()}


def mix_tasks(by_task: dict[str, tuple[list[dict], list[dict]]], sampling: str, temperature: float, seed: int,
              weights: dict[str, float] | None = None) -> tuple[list[dict], dict]:
    """The training rows of every task drawn by their shares, shuffled; and the report for data_report.json."""
    sizes = {name: len(train) for name, (train, _) in by_task.items()}
    shares = task_shares(sizes, sampling, temperature, weights)
    total, rng = sum(sizes.values()), random.Random(seed)
    mixed, report = [], {}
    for name, share in shares.items():
        rows = by_task[name][0]
        count = round(share * total)
        drawn = [rows[i] for i in _draw(len(rows), count, rng)]
        mixed += drawn
        report[name] = {"rows": sizes[name], "drawn": len(drawn), "share": round(share, 4),
                        "eval_rows": len(by_task[name][1])}
    rng.shuffle(mixed)
    return mixed, {"sampling": sampling, **({"temperature": temperature} if sampling == "temperature" else {}),
                   "per_task": report}


def _draw(n: int, count: int, rng: random.Random) -> list[int]:
    """`count` indices of n rows: every row once per full pass, the remainder without repeats."""
    whole, rest = divmod(count, n)
    return list(range(n)) * whole + rng.sample(range(n), rest)

"""Nested config dicts as flat dotted keys, for trackers and run comparisons."""

from __future__ import annotations

import json


def flatten(data: dict, prefix: str = "") -> dict[str, str]:
    """{"train": {"learning_rate": 1e-4}} -> {"train.learning_rate": "0.0001"}."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value)
    return flat

"""`train.epochs/batch_size/learning_rate: auto`, resolved from the data like the OpenAI service.

The rules (documented in docs/sweeps.md) are deliberately simple so a user can predict them:

- batch_size: about 0.2% of the training rows per optimizer step, split over grad_accum,
  between 1 and 16 rows per device (a larger batch needs grad_accum, not more memory).
- learning_rate: the method's base rate (`Method.base_learning_rate`: adapters learn with
  larger rates than full weights), scaled by sqrt(effective batch / 8) within 0.5x..2x (the
  square-root rule for Adam-type optimizers).
- epochs: 3, raised for small data sets so the model sees at least 1,000 rows in total (at
  most 10 epochs) and lowered for large ones so it sees at most 30,000 (at least 1 epoch).
"""

from __future__ import annotations

import math

BATCH_SHARE = 0.002
MAX_DEVICE_BATCH = 16
MIN_SEEN, MAX_SEEN, DEFAULT_EPOCHS, MAX_EPOCHS = 1_000, 30_000, 3, 10


def auto_batch_size(rows: int, grad_accum: int) -> int:
    return min(MAX_DEVICE_BATCH, max(1, math.ceil(BATCH_SHARE * rows / grad_accum)))


def auto_learning_rate(method, effective_batch: int) -> float:
    """The method's base rate (`Method.base_learning_rate`) scaled by the square-root rule."""
    base = method.base_learning_rate
    scale = min(2.0, max(0.5, math.sqrt(effective_batch / 8)))
    return float(f"{base * scale:.3g}")


def auto_epochs(rows: int) -> int:
    if rows * DEFAULT_EPOCHS < MIN_SEEN:
        return min(MAX_EPOCHS, math.ceil(MIN_SEEN / rows))
    if rows * DEFAULT_EPOCHS > MAX_SEEN:
        return max(1, MAX_SEEN // rows)
    return DEFAULT_EPOCHS


def resolve_auto(train, rows: int, method) -> dict[str, str]:
    """Replace every `auto` in the train section in place; returns {field: how it was chosen}."""
    notes: dict[str, str] = {}
    if train.batch_size == "auto":
        train.batch_size = auto_batch_size(rows, train.grad_accum)
        notes["batch_size"] = (f"{train.batch_size} (0.2% of {rows:,} rows / grad_accum "
                               f"{train.grad_accum}, between 1 and {MAX_DEVICE_BATCH})")
    if train.learning_rate == "auto":
        effective = train.batch_size * train.grad_accum
        train.learning_rate = auto_learning_rate(method, effective)
        notes["learning_rate"] = f"{train.learning_rate:g} ({method.name}, effective batch {effective})"
    if train.epochs == "auto":
        train.epochs = float(auto_epochs(rows))
        notes["epochs"] = f"{train.epochs:g} ({rows:,} rows; aim for {MIN_SEEN:,}-{MAX_SEEN:,} rows seen)"
    return notes

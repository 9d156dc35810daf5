"""Sampled request/response logging: live chat traffic as OpenAI chat rows in JSONL, with
personal data masked by the data pipeline's masker, ready for `tunesmith eval` and the
human-rating kit."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from tunesmith.data.pii import PII_KINDS, mask_pii
from tunesmith.utils.io import append_jsonl


class TrafficLog:
    def __init__(self, path: str | Path, sample: float = 1.0, kinds: tuple[str, ...] = PII_KINDS,
                 seed: int | None = None):
        self.path, self.sample, self.kinds = Path(path), sample, list(kinds)
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.masked: dict[str, int] = {}

    def chat(self, model: str, completion_id: str, messages: list[dict], replies: list[str]) -> bool:
        """Log one exchange per reply when sampled; True when it was written."""
        with self.lock:
            if self.random.random() >= self.sample:
                return False
            for reply in replies:
                turns = [*messages, {"role": "assistant", "content": reply}]
                row = {"messages": [{"role": m["role"], "content": self._mask(m["content"])} for m in turns],
                       "model": model, "completion_id": completion_id,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
                append_jsonl(self.path, row)
            return True

    def _mask(self, text: str) -> str:
        return mask_pii(text, self.kinds, self.masked)

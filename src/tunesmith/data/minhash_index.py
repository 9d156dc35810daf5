"""A compact LSH index over MinHash signatures, for near-duplicate search over millions of rows.

datasketch computes the signatures and chooses the banding (b bands of r values); the index
itself is written here because datasketch's in-memory MinHashLSH keeps a Python set per bucket
and a key list per row (~7 KB per row measured at 100k rows), which does not fit a million
rows. Here each band is a few sorted numpy runs of 8-byte keys and 4-byte slots (merged like
an LSM tree), and signatures are kept as 16-bit values for verification: ~250 bytes per row.
Truncating to 16 bits can only make two different values look equal (p = 1/65536 each),
which overestimates a similarity by ~0.00002 — far below any useful threshold step.
"""

from __future__ import annotations

import numpy as np

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


class BandIndex:
    def __init__(self, threshold: float, num_perm: int, recall_weight: float = 0.95):
        from datasketch import MinHashLSH

        # datasketch's default weights balance misses and false hits, which finds only ~40% of
        # pairs at exactly the threshold; candidates are verified, so false hits cost only a
        # comparison while a miss leaves a duplicate: weigh misses 19x (~95% found at 0.8).
        probe = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(1 - recall_weight, recall_weight))
        self.b, self.r, self.threshold = probe.b, probe.r, threshold
        self.signatures = np.zeros((1024, num_perm), dtype=np.uint16)
        self.size = 0
        self.runs: list[list[tuple[np.ndarray, np.ndarray]]] = []  # run -> band -> (sorted keys, slots)

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """(n, b) 64-bit FNV-1a hashes of each band's r values."""
        values = signatures.astype(np.uint64)
        keys = np.empty((len(values), self.b), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for band in range(self.b):
                h = np.full(len(values), _FNV_OFFSET, dtype=np.uint64)
                for col in range(band * self.r, (band + 1) * self.r):
                    h = (h ^ values[:, col]) * _FNV_PRIME
                keys[:, band] = h
        return keys

    def add_chunk(self, signatures: np.ndarray) -> list[tuple[int, float] | None]:
        """For each signature in order: (slot, similarity) of the most similar earlier kept row
        at or above the threshold, or None — then it is kept (given the next slot)."""
        keys = self.band_keys(signatures)
        earlier = self._candidates(keys)
        local: list[dict[int, list[int]]] = [{} for _ in range(self.b)]
        short = signatures.astype(np.uint16)
        results, kept = [], []
        for i in range(len(signatures)):
            candidates = set(earlier.get(i, ()))
            for band in range(self.b):
                candidates.update(local[band].get(int(keys[i, band]), ()))
            match = self._verify(short[i], candidates)
            results.append(match)
            if match is None:
                slot = self._store(short[i])
                kept.append((i, slot))
                for band in range(self.b):
                    local[band].setdefault(int(keys[i, band]), []).append(slot)
        if kept:
            rows, slots = zip(*kept)
            self._add_run(keys[list(rows)], np.asarray(slots, dtype=np.uint32))
        return results

    def _candidates(self, keys: np.ndarray) -> dict[int, set[int]]:
        found: dict[int, set[int]] = {}
        for run in self.runs:
            for band, (run_keys, run_slots) in enumerate(run):
                lo = np.searchsorted(run_keys, keys[:, band], side="left")
                hi = np.searchsorted(run_keys, keys[:, band], side="right")
                for i in np.nonzero(hi > lo)[0]:
                    found.setdefault(int(i), set()).update(run_slots[lo[i]:hi[i]].tolist())
        return found

    def _verify(self, signature: np.ndarray, candidates: set[int]) -> tuple[int, float] | None:
        if not candidates:
            return None
        slots = np.fromiter(candidates, dtype=np.int64)
        similarity = (self.signatures[slots] == signature).mean(axis=1)
        best = int(np.argmax(similarity))
        return (int(slots[best]), float(similarity[best])) if similarity[best] >= self.threshold else None

    def _store(self, signature: np.ndarray) -> int:
        if self.size == len(self.signatures):
            self.signatures = np.concatenate([self.signatures, np.zeros_like(self.signatures)])
        self.signatures[self.size] = signature
        self.size += 1
        return self.size - 1

    def _add_run(self, keys: np.ndarray, slots: np.ndarray) -> None:
        self.runs.append([_sorted(keys[:, band], slots) for band in range(self.b)])
        while len(self.runs) > 1 and len(self.runs[-1][0][0]) * 2 >= len(self.runs[-2][0][0]):
            newer, older = self.runs.pop(), self.runs.pop()
            self.runs.append([_sorted(np.concatenate([o[0], n[0]]), np.concatenate([o[1], n[1]]))
                              for o, n in zip(older, newer)])


def _sorted(keys: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    return keys[order], slots[order]

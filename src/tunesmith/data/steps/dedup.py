"""dedup: exact duplicates (hash of the normalised text) and near-duplicates (MinHash LSH).

Shingles are token n-grams where a token is a word in space-separated scripts and a single
character in Chinese/Japanese/Korean, so near-duplicate Chinese rows are found as well as
English ones. The first row of each cluster is kept; the report lists every cluster.
"""

from __future__ import annotations

import zlib
from typing import Iterable, Iterator, Literal

import numpy as np
from pydantic import Field

from tunesmith.config.pipeline import StepOptions
from tunesmith.data.minhash_index import BandIndex
from tunesmith.data.records import ORIGIN
from tunesmith.data.steps import Step, register_step
from tunesmith.data.text import FieldsSeen, ngrams, row_text, text_hash, tokens
from tunesmith.utils.progress import progress

CHUNK = 2000  # rows hashed together by MinHash.bulk (shares the permutations)
# Shingles are hashed with CRC32 (C speed, deterministic across runs) instead of datasketch's
# default SHA-1, which is ~3x slower here; MinHash mixes weak hashes before permuting.


class DedupOptions(StepOptions):
    step: Literal["dedup"] = "dedup"
    method: Literal["exact", "minhash"] = Field(
        "minhash", description="exact: identical after normalisation; minhash: also near-duplicates.")
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard similarity of shingle sets above "
                             "which two rows are near-duplicates.")
    shingle_size: int = Field(3, gt=0, description="Tokens per shingle (words; characters for CJK).")
    num_perm: int = Field(128, ge=16, le=4096, description="MinHash permutations (more: more exact, slower).")
    fields: list[str] | None = Field(None, description="Compare only these top-level fields "
                                     "(e.g. [instruction, input]); default: all text of the row.")
    max_clusters_reported: int = Field(200, ge=0, description="Clusters listed in the report.")


@register_step
class Dedup(Step):
    Options = DedupOptions
    summary = "remove exact and near-duplicate rows (MinHash LSH, CJK-aware); report clusters"
    example = {"method": "minhash", "threshold": 0.8}

    streams = True

    def __call__(self, rows: list[dict]) -> list[dict]:
        finder = DuplicateFinder(self.options)
        out = list(finder.filter(rows, len(rows)))
        self.details = finder.report()
        return out

    def stream(self, rows: Iterable[dict]) -> Iterator[dict]:
        """Memory holds hashes, not rows."""
        finder = DuplicateFinder(self.options)
        yield from finder.filter(rows)
        self.details = finder.report()


class DuplicateFinder:
    """Streams texts once; remembers only hashes and LSH buckets of the rows it keeps."""

    def __init__(self, options: DedupOptions):
        self.o = options
        self.origins: list[str] = []
        self.seen: dict[bytes, int] = {}
        self.clusters: dict[int, list[tuple[int, float, str]]] = {}  # kept -> [(dup, sim, kind)]
        self.index: BandIndex | None = None
        self.kept_at: list[int] = []  # index slot -> row index

    def filter(self, rows: Iterable[dict], total: int | None = None) -> Iterator[dict]:
        """The rows that are not duplicates of an earlier row, streamed in order."""
        fields = FieldsSeen("dedup", self.o.fields)
        with progress("dedup", total) as advance:
            for chunk in _chunks(rows, CHUNK):
                for row in chunk:
                    fields.see(row)
                start = len(self.origins)
                self.origins += [r.get(ORIGIN, f"row {start + i + 1}") for i, r in enumerate(chunk)]
                texts = [row_text(r, self.o.fields) for r in chunk]
                for i in self._chunk(start, texts):
                    yield chunk[i - start]
                advance(len(chunk), info=f"{self.removed()} duplicates")
        fields.check()  # at the end: a streamed file is read once

    def _chunk(self, start: int, texts: list[str]) -> Iterator[int]:
        fresh: list[tuple[int, str]] = []
        for i, text in enumerate(texts, start):
            digest = text_hash(text)
            if digest in self.seen:
                self.clusters.setdefault(self.seen[digest], []).append((i, 1.0, "exact"))
                continue
            self.seen[digest] = i
            fresh.append((i, text))
        if self.o.method == "exact":
            yield from (i for i, _ in fresh)
            return
        yield from self._near(fresh)

    def _near(self, fresh: list[tuple[int, str]]) -> Iterator[int]:
        from datasketch import MinHash

        if self.index is None:
            self.index = BandIndex(self.o.threshold, self.o.num_perm)
        if not fresh:
            return
        shingles = [[s.encode("utf-8") for s in ngrams(tokens(t), self.o.shingle_size)] for _, t in fresh]
        signatures = np.stack([m.hashvalues for m in
                               MinHash.bulk(shingles, num_perm=self.o.num_perm, seed=1, hashfunc=zlib.crc32)])
        for (i, _), match in zip(fresh, self.index.add_chunk(signatures)):
            if match is None:
                self.kept_at.append(i)
                yield i
            else:
                slot, similarity = match
                self.clusters.setdefault(self.kept_at[slot], []).append((i, similarity, "near"))

    def removed(self) -> int:
        return sum(len(v) for v in self.clusters.values())

    def report(self) -> dict:
        origins = self.origins
        exact = sum(1 for v in self.clusters.values() for _, _, k in v if k == "exact")
        clusters = sorted(self.clusters.items(), key=lambda kv: -len(kv[1]))
        return {
            "method": self.o.method, "threshold": self.o.threshold, "shingle_size": self.o.shingle_size,
            "exact_duplicates": exact, "near_duplicates": self.removed() - exact,
            "clusters": len(clusters),
            "cluster_list": [
                {"kept": origins[k], "removed": [{"origin": origins[i], "similarity": round(s, 3), "kind": kind}
                                                 for i, s, kind in dups]}
                for k, dups in clusters[: self.o.max_clusters_reported]
            ],
        }


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

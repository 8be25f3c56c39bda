"""Decontamination: no benchmark question may share a long word n-gram, or be a near
duplicate of, any training record or patch example.

The benchmark side is small (test chains only), so we index its n-grams and stream the
training side past that index: memory stays proportional to the benchmark.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+")
SHINGLE = 5  # word shingle size for near-duplicate detection


@dataclass(frozen=True)
class Leak:
    bench_id: str
    bench_source: str
    train_id: str
    train_source: str
    reason: str

    def render(self) -> str:
        return (f"benchmark item {self.bench_id} ({self.bench_source}) {self.reason} training record "
                f"{self.train_id} ({self.train_source})")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _grams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return set(zip(*[tokens[i:] for i in range(n)], strict=False)) if len(tokens) >= n else set()


def find_leaks(bench: list[dict], train: list[dict], *, ngram: int = 8, near_duplicate: float = 0.8,
               limit: int = 20) -> list[Leak]:
    """Leaks between benchmark questions and training texts (each message checked separately)."""
    long_index: dict[tuple, list[int]] = defaultdict(list)
    shingle_index: dict[tuple, list[int]] = defaultdict(list)
    shingle_counts, exact = [], {}
    for i, item in enumerate(bench):
        tokens = words(item["question"])
        for g in _grams(tokens, ngram):
            long_index[g].append(i)
        shingles = _grams(tokens, SHINGLE)
        shingle_counts.append(len(shingles))
        for g in shingles:
            shingle_index[g].append(i)
        exact.setdefault(" ".join(tokens), i)
    # A shared n-gram (n >= SHINGLE) contains shared shingles, so a message without any shingle
    # in the index can only leak as an exact duplicate: most training text stops at that test.
    gated = ngram >= SHINGLE
    shingle_keys = shingle_index.keys()
    leaks: dict[tuple[int, str], Leak] = {}
    for rec in train:
        for message in rec["messages"]:
            tokens = words(message["content"])
            shingles = _grams(tokens, SHINGLE)
            if gated and shingle_keys.isdisjoint(shingles):
                same = exact.get(" ".join(tokens)) if len(tokens) < SHINGLE else None
                if same is not None:
                    leaks.setdefault((same, rec["id"]), _leak(bench[same], rec, "is a near-duplicate of"))
                continue
            hits: set[int] = set()
            for g in _grams(tokens, ngram):
                hits.update(long_index.get(g, ()))
            for i in hits:
                leaks.setdefault((i, rec["id"]), _leak(bench[i], rec, f"shares a {ngram}-word sequence with"))
            same = exact.get(" ".join(tokens))
            if same is not None:
                leaks.setdefault((same, rec["id"]), _leak(bench[same], rec, "is a near-duplicate of"))
            overlap: dict[int, int] = defaultdict(int)
            for g in shingles:
                for i in shingle_index.get(g, ()):
                    overlap[i] += 1
            for i, count in overlap.items():
                if shingle_counts[i] and count / shingle_counts[i] >= near_duplicate:
                    leaks.setdefault((i, rec["id"]), _leak(bench[i], rec, "is a near-duplicate of"))
        if len(leaks) >= limit:
            break
    return list(leaks.values())[:limit]


def _leak(item: dict, rec: dict, reason: str) -> Leak:
    return Leak(item["id"], item["source"], rec["id"], rec["source"], reason)

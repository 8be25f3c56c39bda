"""Decontamination: no benchmark question may share a long word n-gram, or be a near
duplicate of, any training record or patch example.

The benchmark side is small (test chains only), so we index its n-grams and stream the
training side past that index: memory stays proportional to the benchmark. `BenchIndex`
answers for one text at a time (`hits`), so the training side can be split over processes
and the verdicts merged in record order (`merge`); `find_leaks` is both in one call.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

SHINGLE = 5  # word shingle size for near-duplicate detection
# Words are runs of [a-z0-9] in the lower-cased text. As bytes: every other byte (UTF-8 of
# anything else included) becomes a space, then split (about 3x faster than re.findall).
_KEEP = bytes(c if 48 <= c <= 57 or 97 <= c <= 122 else 32 for c in range(256))

SHARES, NEAR_DUPLICATE = 0, 1  # hit reasons


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


def words(text: str) -> list[bytes]:
    """The words of `text`: maximal runs of [a-z0-9] after lower-casing, as ASCII bytes."""
    return text.lower().encode("utf-8", "surrogatepass").translate(_KEEP).split()


def _grams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return set(zip(*[tokens[i:] for i in range(n)], strict=False)) if len(tokens) >= n else set()


class BenchIndex:
    """Word n-grams, shingles and normalised text of the benchmark questions."""

    def __init__(self, questions: list[str], *, ngram: int = 8, near_duplicate: float = 0.8):
        self.ngram, self.near_duplicate = ngram, near_duplicate
        self.long_index: dict[tuple, list[int]] = defaultdict(list)
        self.shingle_index: dict[tuple, list[int]] = defaultdict(list)
        self.shingle_counts: list[int] = []
        self.exact: dict[str, int] = {}
        for i, question in enumerate(questions):
            tokens = words(question)
            for g in _grams(tokens, ngram):
                self.long_index[g].append(i)
            shingles = _grams(tokens, SHINGLE)
            self.shingle_counts.append(len(shingles))
            for g in shingles:
                self.shingle_index[g].append(i)
            self.exact.setdefault(b" ".join(tokens), i)
        # Questions of fewer than SHINGLE words: texts can only leak into them as exact duplicates.
        self.short_questions = {text for text in self.exact if len(text.split()) < SHINGLE}
        self.fingerprint = hashlib.sha256(b"\n".join(
            [f"{ngram} {near_duplicate} {SHINGLE}".encode(), *sorted(self.exact)])).hexdigest()

    def hits(self, text: str) -> list[tuple[int, int]]:
        """(benchmark question index, reason) pairs that make `text` a leak, in reporting order."""
        tokens = words(text)
        # A shared n-gram (n >= SHINGLE) contains shared shingles, so a text without any shingle
        # in the index can only leak as an exact duplicate: most training text stops at that test.
        if self.ngram >= SHINGLE:
            if len(tokens) < SHINGLE:
                same = self.exact.get(b" ".join(tokens))
                return [] if same is None else [(same, NEAR_DUPLICATE)]
            shingles = zip(tokens, tokens[1:], tokens[2:], tokens[3:], tokens[4:], strict=False)
            if self.shingle_index.keys().isdisjoint(shingles):
                return []
        out: list[tuple[int, int]] = []
        found: set[int] = set()
        for g in _grams(tokens, self.ngram):
            found.update(self.long_index.get(g, ()))
        out.extend((i, SHARES) for i in sorted(found))  # sorted: set order follows str hashing
        same = self.exact.get(b" ".join(tokens))
        if same is not None:
            out.append((same, NEAR_DUPLICATE))
        overlap: dict[int, int] = defaultdict(int)
        for g in _grams(tokens, SHINGLE):
            for i in self.shingle_index.get(g, ()):
                overlap[i] += 1
        for i, count in sorted(overlap.items()):
            if self.shingle_counts[i] and count / self.shingle_counts[i] >= self.near_duplicate:
                out.append((i, NEAR_DUPLICATE))
        return out

    def record_hits(self, texts) -> list[tuple[int, int]]:
        """Hits of one record (its message texts in order), repeated texts checked once."""
        if len(texts) == 2 and texts[0] != texts[1]:
            return self.hits(texts[0]) + self.hits(texts[1])
        seen: dict[str, list] = {}
        out = []
        for text in texts:
            if text not in seen:
                seen[text] = self.hits(text)
            out += seen[text]
        return out

    def unit_hits(self, records: list[tuple[str, ...]]) -> list[tuple[int, list]]:
        """(record number, hits) of the records (message texts each) that leak, in order: the
        same answers as `record_hits` per record, with the common case (no shingle of the text
        in the index) inlined, since every training text goes through here."""
        if self.ngram < SHINGLE:
            return [(n, hits) for n, record in enumerate(records) if (hits := self.record_hits(record))]
        keys, short, keep = self.shingle_index.keys(), self.short_questions, _KEEP
        out = []
        for n, record in enumerate(records):
            hits = None
            for text in record:
                tokens = text.lower().encode("utf-8", "surrogatepass").translate(keep).split()  # = words(text)
                if len(tokens) < SHINGLE:
                    if short and (normal := b" ".join(tokens)) in short:
                        hits = (hits or []) + [(self.exact[normal], NEAR_DUPLICATE)]
                elif not keys.isdisjoint(zip(tokens, tokens[1:], tokens[2:], tokens[3:], tokens[4:], strict=False)):
                    hits = (hits or []) + self.hits(text)
            if hits:
                out.append((n, hits))
        return out

    def reason(self, code: int) -> str:
        return f"shares a {self.ngram}-word sequence with" if code == SHARES else "is a near-duplicate of"


def merge(index: BenchIndex, per_record, limit: int = 20) -> list[tuple[int, int, int]]:
    """The leaks to report from (record number, hits) pairs in record order: at most `limit`
    (bench index, record number, reason), one per pair, the first reason found; scanning stops
    after the record that reaches `limit`."""
    leaks: dict[tuple[int, int], int] = {}
    for rec, hits in per_record:
        for i, code in hits:
            leaks.setdefault((i, rec), code)
        if len(leaks) >= limit:
            break
    return [(i, rec, code) for (i, rec), code in list(leaks.items())[:limit]]


def find_leaks(bench: list[dict], train: list[dict], *, ngram: int = 8, near_duplicate: float = 0.8,
               limit: int = 20) -> list[Leak]:
    """Leaks between benchmark questions and training texts (each message checked separately)."""
    index = BenchIndex([item["question"] for item in bench], ngram=ngram, near_duplicate=near_duplicate)
    by_id: dict[str, int] = {}  # records with equal ids are one record to report
    per_record = []
    for n, rec in enumerate(train):
        hits = index.record_hits([m["content"] for m in rec["messages"]])
        if hits:
            per_record.append((by_id.setdefault(rec["id"], n), hits))
    return [Leak(bench[i]["id"], bench[i]["source"], train[rec]["id"], train[rec]["source"], index.reason(code))
            for i, rec, code in merge(index, per_record, limit)]

"""Decontamination: no benchmark question may be answerable by copying a training record or
patch example.

What counts as copying:

- A hand-written item is free text: it may share no long word n-gram with any training
  record, nor be a near duplicate of one (reword the item).
- A generated probe quotes the KB: "Quiz. Complete the statement: <subject> <predicate>"
  must share "<subject> <predicate>" with the training facts of that statement, that is
  the point of the probe. Its own wording ("Quiz. Complete the statement:") is not in any
  training template, so a record that shares an n-gram, or a near duplicate, touching that
  wording copies the benchmark (a patch example or a `text` holding the question). A record
  that shares only the quoted KB words leaks when it is not about the probed node (its
  concept; its statement or the statement's subject; its chain) and gives the answer away
  right after them: it holds "<subject> <predicate> <answer>" (or "<term> is defined as
  <answer>") verbatim. Sharing a long name or predicate alone reveals nothing.

The benchmark side is small (test chains only), so we index its n-grams and stream the
training side past that index: memory stays proportional to the benchmark. `BenchIndex`
answers for one text at a time (`hits`), `settle` decides the hits that only share quoted KB
words from the record's traces, so the training side can be split over processes and the
verdicts merged in record order (`merge`); `find_leaks` is all of it in one call.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

from pwd_git.build.templates import quoted_spans
from pwd_git.errors import quote

SHINGLE = 5  # word shingle size for near-duplicate detection
# Words are runs of [a-z0-9] in the lower-cased text. As bytes: every other byte (UTF-8 of
# anything else included) becomes a space, then split (about 3x faster than re.findall).
_KEEP = bytes(c if 48 <= c <= 57 or 97 <= c <= 122 else 32 for c in range(256))

# Hit reasons. QUOTED: only the KB words the question quotes are shared, which `settle`
# turns into REVEALS or drops.
SHARES, NEAR_DUPLICATE, REVEALS, QUOTED = 0, 1, 2, 3
_REASONS = {NEAR_DUPLICATE: "is a near-duplicate of", REVEALS: "is answered verbatim by"}


@dataclass(frozen=True)
class Probe:
    """What decontamination needs to know of a generated benchmark question."""

    node: str  # the probed node, for messages: "concept 'x'", "statement 'x.p-q.y'", "chain 'c'"
    quoted: tuple[tuple[int, int], ...]  # character spans of the question that quote the KB
    own: frozenset[str]  # node keys (`node_keys`) whose training text may share the quoted words
    answer: str


def node_keys(concepts=(), statements=(), chain: str | None = None) -> frozenset[str]:
    """The KB nodes a record traces, as one set of keys (ids of different kinds may be equal)."""
    return frozenset([*("c:" + c for c in concepts), *("s:" + s for s in statements),
                      *(("k:" + chain,) if chain else ())])


def probe(template: str, question: str, answer: str, traces: dict) -> Probe | None:
    """The Probe of a benchmark item (its template, question, answer text and traces); None
    for a hand-written item, which quotes nothing."""
    spans = tuple(quoted_spans(template, question))
    if not spans:
        return None
    concepts, statements, chain = traces.get("concepts") or [], traces.get("statements") or [], traces.get("chain")
    if template.startswith("probe.l1."):
        own, node = node_keys(concepts[:1]), f"concept {quote(concepts[0] if concepts else '')}"
    elif template.startswith("probe.l2."):
        own, node = node_keys(concepts[:1], statements[:1]), f"statement {quote(statements[0] if statements else '')}"
    else:
        own, node = node_keys(concepts[:1], statements, chain), f"chain {quote(chain or '')}"
    return Probe(node, spans, own, answer)


@dataclass(frozen=True)
class Leak:
    bench_id: str
    bench_source: str
    train_id: str
    train_source: str
    reason: str
    probe: str | None = None  # the probed node of a generated item; None: a hand-written item

    def render(self) -> str:
        what = f"probe of {self.probe}" if self.probe else "hand-written item"
        return (f"benchmark item {self.bench_id} ({self.bench_source}, {what}) {self.reason} training record "
                f"{self.train_id} ({self.train_source})")


def render_leaks(leaks: list[Leak]) -> list[str]:
    """One line per benchmark item (in order): its first leak, and how many other training
    records it shares the words with, with their sources (sibling concepts often write the
    same sentence, and eleven lines for one item would bury the others)."""
    by_item: dict[str, list[Leak]] = {}
    for leak in leaks:
        by_item.setdefault(leak.bench_id, []).append(leak)
    lines = []
    for group in by_item.values():
        line = group[0].render()
        if len(group) > 1:
            shown = ", ".join(leak.train_source for leak in group[1:4])
            line += f"; and {len(group) - 1} more training record(s) ({shown}{', ...' if len(group) > 4 else ''})"
        lines.append(line)
    return lines


def advice(leaks: list[Leak], ngram: int) -> str:
    """What to change, for the kinds of leak found."""
    out = []
    if any(leak.probe is None for leak in leaks):
        out.append("reword the hand-written item, or the training text that copies it")
    if any(leak.probe is not None for leak in leaks):
        out.append("reword the training text that copies the generated probe (the patch example, or the "
                   "statement's `text` or definition at the record's source)")
    return "; ".join(out) + f"; or raise build.ngram (now {ngram}) in pwd.yaml"


def words(text: str) -> list[bytes]:
    """The words of `text`: maximal runs of [a-z0-9] after lower-casing, as ASCII bytes."""
    return text.lower().encode("utf-8", "surrogatepass").translate(_KEEP).split()


def _grams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return set(zip(*[tokens[i:] for i in range(n)], strict=False)) if len(tokens) >= n else set()


class BenchIndex:
    """Word n-grams, shingles and normalised text of the benchmark questions, and which of
    their n-grams and shingles lie wholly inside the KB words a generated question quotes."""

    def __init__(self, questions: list[str], probes: list[Probe | None] | None = None, *, ngram: int = 8,
                 near_duplicate: float = 0.8):
        self.ngram, self.near_duplicate = ngram, near_duplicate
        self.probes = probes or [None] * len(questions)
        self.long_index: dict[tuple, list[int]] = defaultdict(list)
        self.shingle_index: dict[tuple, list[int]] = defaultdict(list)
        self.shingle_counts: list[int] = []
        self.exact: dict[str, int] = {}
        self.quoted: dict[int, set[tuple]] = {}  # question -> its n-grams and shingles that only quote the KB
        self.reveals: dict[int, bytes] = {}  # question -> " its last quoted words + answer " (`settle`)
        for i, question in enumerate(questions):
            tokens = words(question)
            for g in _grams(tokens, ngram):
                self.long_index[g].append(i)
            shingles = _grams(tokens, SHINGLE)
            self.shingle_counts.append(len(shingles))
            for g in shingles:
                self.shingle_index[g].append(i)
            self.exact.setdefault(b" ".join(tokens), i)
            p = self.probes[i]
            if p is not None:
                quoted = _quoted_grams(question, p.quoted, ngram)
                if quoted:
                    self.quoted[i] = quoted
                    start, end = max(p.quoted)
                    answer = words(p.answer)
                    if answer and not words(question[end:]):  # the answer follows the quoted words
                        self.reveals[i] = b" " + b" ".join(words(question[start:end]) + answer) + b" "
        # Questions of fewer than SHINGLE words: texts can only leak into them as exact duplicates.
        self.short_questions = {text for text in self.exact if len(text.split()) < SHINGLE}
        # What the verdicts depend on: the questions, and what `settle` reads of the few that quote long KB text.
        self.fingerprint = hashlib.sha256(b"\n".join(
            [f"{ngram} {near_duplicate} {SHINGLE}".encode(), *sorted(self.exact),
             *sorted(repr((questions[i], sorted(grams), self.reveals.get(i), sorted(self.probes[i].own))).encode()
                     for i, grams in self.quoted.items())])).hexdigest()

    def hits(self, text: str) -> list[tuple[int, int]]:
        """(benchmark question index, reason) pairs that make `text` a leak, in reporting order;
        QUOTED where the text shares only KB words the question quotes (see `settle`)."""
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
        quoted = self.quoted
        found: dict[int, bool] = {}  # question -> an n-gram outside its quoted KB words is shared
        for g in _grams(tokens, self.ngram):
            for i in self.long_index.get(g, ()):
                found[i] = found.get(i, False) or i not in quoted or g not in quoted[i]
        out.extend((i, SHARES if found[i] else QUOTED) for i in sorted(found))  # sorted: set order follows str hashing
        same = self.exact.get(b" ".join(tokens))
        if same is not None:
            out.append((same, NEAR_DUPLICATE))
        overlap: dict[int, int] = defaultdict(int)
        wording: set[int] = set()
        for g in _grams(tokens, SHINGLE):
            for i in self.shingle_index.get(g, ()):
                overlap[i] += 1
                if i not in quoted or g not in quoted[i]:
                    wording.add(i)
        for i, count in sorted(overlap.items()):
            if self.shingle_counts[i] and count / self.shingle_counts[i] >= self.near_duplicate:
                out.append((i, NEAR_DUPLICATE if i in wording else QUOTED))
        return out

    def settle(self, hits: list[tuple[int, int]], traces: frozenset[str], texts) -> list[tuple[int, int]]:
        """The hits of one record (its message `texts`, tracing the node keys `traces`) that are
        leaks: a QUOTED hit is one only when the record is not about the probed node and holds
        the KB words that end the question followed by its answer (REVEALS)."""
        out, joined = [], None
        for i, code in hits:
            if code == QUOTED:
                if self.probes[i].own & traces:
                    continue
                reveals = self.reveals.get(i)
                if reveals is None:
                    continue
                if joined is None:
                    joined = b" " + b" ".join(words(" ".join(texts))) + b" "
                if reveals not in joined:
                    continue
                code = REVEALS
            out.append((i, code))
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
        return f"shares a run of {self.ngram} words with" if code == SHARES else _REASONS[code]


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
    """Leaks between benchmark items (shard records) and training records (each message checked
    separately; a record without `traces` is about no node)."""
    probes = [probe(item.get("template", "hand"), item["question"], _answer_text(item), item.get("traces") or {})
              for item in bench]
    index = BenchIndex([item["question"] for item in bench], probes, ngram=ngram, near_duplicate=near_duplicate)
    by_id: dict[str, int] = {}  # records with equal ids are one record to report
    per_record = []
    for n, rec in enumerate(train):
        texts = [m["content"] for m in rec["messages"]]
        hits = index.record_hits(texts)
        if hits:
            traces = rec.get("traces") or {}
            hits = index.settle(hits, node_keys(traces.get("concepts") or (), traces.get("statements") or (),
                                                traces.get("chain")), texts)
        if hits:
            per_record.append((by_id.setdefault(rec["id"], n), hits))
    return [Leak(bench[i]["id"], bench[i]["source"], train[rec]["id"], train[rec]["source"], index.reason(code),
                 probes[i].node if probes[i] else None)
            for i, rec, code in merge(index, per_record, limit)]


def _answer_text(item: dict) -> str:
    choices, answer = item.get("choices") or [], item.get("answer")
    return choices[answer] if isinstance(answer, int) and 0 <= answer < len(choices) else ""


def _quoted_grams(question: str, spans, ngram: int) -> set[tuple]:
    """The word n-grams and shingles of `question` all of whose occurrences lie inside the
    character `spans`; none unless a span holds an n-gram: a question that quotes fewer words
    cannot share an n-gram with a record by quoting alone, and its near duplicates are judged
    as a hand-written item's (with the default n-gram length one holds 80% of its shingles
    only by copying some of its wording)."""
    if max(len(words(question[start:end])) for start, end in spans) < ngram:
        return set()  # the common case
    tokens, inside = [], []
    at = 0
    for start, end in sorted(spans):
        for part, quoted in ((question[at:start], False), (question[start:end], True)):
            part_tokens = words(part)
            tokens += part_tokens
            inside += [quoted] * len(part_tokens)
        at = end
    rest = words(question[at:])
    tokens += rest
    inside += [False] * len(rest)
    out: set[tuple] = set()
    for n in {ngram, SHINGLE}:
        outside = set()
        for p in range(len(tokens) - n + 1):
            g = tuple(tokens[p:p + n])
            (out if all(inside[p:p + n]) else outside).add(g)
        out -= outside
    return out

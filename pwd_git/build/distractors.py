"""The generator's distractors: which wrong choices a benchmark item offers, and which wrong
target a statement's l2.false claim names. Each pool (a type's concepts, one frequency band of
them, a predicate's values or objects) is a `draws.Ring` built once; an item draws from it with
its own key, so its choices depend only on the KB, the seed and the item, never on build order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

from pwd_git.build.draws import Ring, draws_for
from pwd_git.build.templates import MASK, clue, informative, stem, words_of
from pwd_git.kb.checks import reads_as
from pwd_git.kb.model import KB, Statement

N_CHOICES = 4  # an item's answer and N_CHOICES - 1 distractors


class Distractors:
    """A KB's distractor pools and the rules of drawing from them: never a true answer, and no
    choice that reads as the answer or as another choice."""

    def __init__(self, kb: KB, seed: int):
        self.kb, self.seed = kb, seed
        self.by_type: dict[str, list[str]] = defaultdict(list)
        for cid in sorted(kb.concepts):
            self.by_type[kb.concepts[cid].type].append(cid)
        self.values_by_predicate: dict[str, set[str]] = defaultdict(set)
        self.objects_by_predicate = {f"{p}\0{t}": objs for (p, t), objs in kb.objects_by_predicate().items()}
        degree: Counter = Counter()
        for st in kb.statements.values():
            degree.update([st.subject] + ([st.object] if st.object else []))
            if st.value is not None:
                self.values_by_predicate[st.predicate].add(st.value)
        # A concept's frequency band: floor(log2(statements naming it + 1)). A benchmark answer
        # gets distractors from its own band first, so a hub (named by many statements, so a
        # frequent word in the training text, the end of many chains) is offered among hubs and
        # no choice wins for being frequent (benchmarks/benchmark_bias.py): see `band_rings`.
        self.band = {cid: (degree[cid] + 1).bit_length() - 1 for cid in kb.concepts}
        self.by_band: dict[str, list[str]] = defaultdict(list)  # "type\0band" -> concepts
        self.top_band: dict[str, int] = {}
        for ctype, cids in self.by_type.items():
            for cid in cids:
                self.by_band[f"{ctype}\0{self.band[cid]}"].append(cid)
            self.top_band[ctype] = max(self.band[cid] for cid in cids)
        # Concepts that go by the same name ("orange" the fruit and the colour): each one's
        # definition and type also answer a question that names the other.
        by_name: dict[str, list[str]] = defaultdict(list)
        for cid in kb.concepts:
            for name in dict.fromkeys(reads_as(n) for n in self._names(cid)):
                by_name[name].append(cid)
        self.namesakes = {cid: {o for o in by_name[reads_as(c.term)] if o != cid} for cid, c in kb.concepts.items()}
        self._rings: dict[tuple[str, str], Ring] = {}
        self._words_by_type: dict[str, dict[str, list[str]]] = {}  # type -> word or stem -> concepts whose clue says it
        self._own_clues: dict[str, str] = {}  # concept -> its definition as a clue to itself
        self._names_by_type: dict[str, dict[str, list[str]]] = {}  # type -> stem -> concepts whose term begins with it
        self._true_reads: dict[tuple[str, str], frozenset[str]] = {}  # wrong_targets' memo, per (subject, predicate)
        self._spent: set[tuple[tuple[str, str], int]] = set()  # ((subject, predicate), id(ring)) that ring holds none

    def prepare(self) -> None:
        """Build the rings of every type, band and predicate up front (before forking workers that share them)."""
        for ctype in self.by_type:
            self._ring("type", ctype)
        for predicate in self.values_by_predicate:
            self._ring("values", predicate)
        for name in self.objects_by_predicate:
            self._ring("objects", name)
        for name in self.by_band:
            self._ring("band", name)
        for ctype in self.by_type:
            for masked in (0, 1):
                self._ring("masked", f"{ctype}\0{masked}")
        self._ring("types", "")

    def _ring(self, kind: str, name: str) -> Ring:
        ring = self._rings.get((kind, name))
        if ring is None:
            if kind == "type":
                pool = self.by_type.get(name, [])
            elif kind == "band":
                pool = self.by_band.get(name, [])
            elif kind == "word":  # "type\0word": the type's concepts whose own clue says the word
                ctype, word = name.split("\0")
                pool = self._words(ctype).get(word, [])
            elif kind == "name":  # "type\0stem": the type's concepts whose term begins a word with the stem
                ctype, key = name.split("\0")
                pool = self._names_by_type[ctype].get(key, [])
            elif kind == "masked":  # "type\0" + whether the concept's own clue masks its name
                ctype, masked = name.split("\0")
                pool = [cid for cid in self.by_type.get(ctype, []) if (MASK in self._own_clue(cid)) == (masked == "1")]
            elif kind == "values":
                pool = sorted(self.values_by_predicate.get(name, ()))
            elif kind == "objects":
                pool = sorted(self.objects_by_predicate.get(name, ()))
            elif kind == "all-values":
                pool = sorted({v for vs in self.values_by_predicate.values() for v in vs})
            elif kind == "all-concepts":
                pool = sorted(self.kb.concepts)
            else:  # "types"
                pool = sorted(self.by_type)
            ring = self._rings[(kind, name)] = Ring(self.seed, pool)
        return ring

    def _term(self, cid: str) -> str:
        return self.kb.concepts[cid].term

    def _words(self, ctype: str) -> dict[str, list[str]]:
        index = self._words_by_type.get(ctype)
        if index is None:
            index = self._words_by_type[ctype] = defaultdict(list)
            for cid in self.by_type.get(ctype, []):  # under each word, and the stems it begins with
                for key in sorted({k for word in words_of(self._own_clue(cid)) for k in (word, *_stems(word))}):
                    index[key].append(cid)
        return index

    def _own_clue(self, cid: str) -> str:
        text = self._own_clues.get(cid)
        if text is None:
            c = self.kb.concepts[cid]
            text = self._own_clues[cid] = clue(c.definition, (c.term, *c.aliases))
        return text

    def _names(self, cid: str) -> tuple[str, ...]:
        c = self.kb.concepts[cid]
        return (c.term, *c.aliases)

    def wrong_targets(self, key: str, subject: str, true_targets: set[str], answer_is_concept: bool, rings: list[Ring],
                      fallback: Ring | None = None, k: int = N_CHOICES - 1,
                      pair: tuple[str, str] | None = None) -> tuple[list[str], bool]:
        """Up to `k` distractor ids (or values) for the item `key`, from `rings` in order, then
        from `fallback` if they hold too few: never a true answer (nor the subject), and none that
        reads as a true answer or as another distractor ("Red" beside "red", a term that is an
        alias of the answer). Returns (ids, whether `fallback` was needed).

        `pair`: the (subject, predicate) whose targets `true_targets` are. What they read as, and
        which rings they leave nothing in, are then kept for the pair's other statements: a hub
        with thousands of objects would otherwise rebuild the one and walk the other's every
        point once per statement (quadratic)."""
        draws = draws_for(self.seed, key)
        shown = self._term if answer_is_concept else str
        read = self._true_reads.get(pair) if pair else None
        if read is None:
            read = frozenset(reads_as(name) for t in true_targets
                             for name in (self._names(t) if answer_is_concept else (t,)))
            if pair:
                self._true_reads[pair] = read
        picked: list[str] = []
        picked_reads: set[str] = set()

        def skip(c: str) -> bool:
            if c in true_targets or c in picked or (answer_is_concept and c == subject):
                return True
            r = reads_as(shown(c))
            return r in read or r in picked_reads

        def draw(ring: Ring) -> None:
            if pair and (pair, id(ring)) in self._spent:
                return
            if not _fill(ring, draws, k, skip, picked, picked_reads, shown) and pair and not picked:
                self._spent.add((pair, id(ring)))  # nothing taken at all: rejected for the pair's targets alone

        for ring in rings:
            if len(picked) < k:
                draw(ring)
        if len(picked) == k or fallback is None:
            return picked, False
        draw(fallback)
        return picked, True

    def wrong_definitions(self, cid: str, answer: str, text: Callable[[str], str],
                          words: tuple[str, ...] = ()) -> tuple[list[str], bool]:
        """Up to N_CHOICES - 1 other concepts whose definitions, as `text` shows them, are the
        wrong choices beside `answer` (`cid`'s): of its type, then (flagged) of any type. Never a
        namesake (its definition answers too), nor a definition that says nothing (not
        `informative`) or reads as another choice. Returns (ids, whether any type was needed).

        Of its type, first those whose clues say one of `words` (the words of `cid`'s term that
        `answer` says, by their stems: "DNA replication" is "the duplication of a DNA molecule",
        and a choice about DNA polymerase makes "DNA" point at no one choice; "libc6-dev" is
        "... Development Libraries", and another "development files" makes "dev" point at
        none), then those whose own clue
        shows MASK exactly when `answer` does: a definition that names its own term mid-text
        ("...; the stroma holds enzymes") is shown with a blank, and a blank in the answer alone
        points at it, as one in a distractor alone points away from it (the model never saw a
        blank in training)."""
        namesakes = self.namesakes[cid]
        draws = draws_for(self.seed, f"l1:{cid}")
        wrong: list[str] = []
        texts = {reads_as(answer)}

        def skip(o: str) -> bool:
            return (o == cid or o in namesakes or o in wrong or not informative(text(o))
                    or reads_as(text(o)) in texts)

        ctype = self.kb.concepts[cid].type
        if MASK in answer:  # one other blank first: a blank in the answer alone would say "this one"
            _fill(self._ring("masked", f"{ctype}\0{1}"), draws, 1, skip, wrong, texts, text)
        for word in words:
            _fill(self._ring("word", f"{ctype}\0{word}"), draws, N_CHOICES - 1, skip, wrong, texts, text)
        _fill(self._ring("masked", f"{ctype}\0{int(MASK in answer)}"), draws, N_CHOICES - 1, skip, wrong, texts, text)
        _fill(self._ring("type", ctype), draws, N_CHOICES - 1, skip, wrong, texts, text)
        fallback = len(wrong) < N_CHOICES - 1
        if fallback:
            _fill(self._ring("all-concepts", ""), draws, N_CHOICES - 1, skip, wrong, texts, text)
        return wrong, fallback

    def wrong_types(self, cid: str) -> list[str]:
        """Up to N_CHOICES - 1 types that are neither `cid`'s nor a namesake's (which answer too)."""
        true_types = {self.kb.concepts[cid].type, *(self.kb.concepts[o].type for o in self.namesakes[cid])}
        return self._ring("types", "").pick(draws_for(self.seed, f"kind:{cid}"), N_CHOICES - 1, true_types.__contains__)

    def answer_rings(self, st: Statement, strict: bool) -> tuple[list[Ring], Ring | None]:
        """Where a benchmark item whose answer is `st`'s target draws its distractors, and its
        fallback: a concept's type, from the answer's frequency band outwards (`band_rings`),
        then (unless `strict`, as L3 is) any concept, flagged; a value, the values of its
        predicate, then (unless `strict`) any value: values have no type to fall back from."""
        if st.object is None:
            return [self._ring("values", st.predicate)] + ([] if strict else [self._ring("all-values", "")]), None
        rings = self.band_rings(self.kb.concepts[st.object].type, self.band[st.object])
        return rings, None if strict else self._ring("all-concepts", "")

    def false_rings(self, st: Statement) -> list[Ring]:
        """Where `st`'s l2.false claim draws its target: the targets its own predicate has for
        other subjects (objects of the object's type), then other concepts of that type. Never
        another predicate's values or another type ("mRNA is transcribed by 2000 nt"): a claim
        that is false for a reason no one needs to learn teaches nothing, so none is written."""
        if st.object is None:
            return [self._ring("values", st.predicate)]
        ctype = self.kb.concepts[st.object].type
        return [self._ring("objects", f"{st.predicate}\0{ctype}"), self._ring("type", ctype)]

    def name_rings(self, ctype: str, stems: list[str]) -> list[Ring]:
        """A ring per stem (`templates.stem`) of `ctype`'s concepts whose term begins a word with
        it: drawn first for an item whose answer's name echoes the question's words by their
        first letters (real names share prefixes: libx11-dev depends on libx11-6), so those
        letters point at more than one choice."""
        if not stems:
            return []
        index = self._names_by_type.get(ctype)
        if index is None:
            index = self._names_by_type[ctype] = defaultdict(list)
            for cid in self.by_type.get(ctype, []):
                for key in sorted({k for word in words_of(self._term(cid)) for k in _stems(word)}):
                    index[key].append(cid)
        return [self._ring("name", f"{ctype}\0{s}") for s in dict.fromkeys(stems) if index.get(s)]

    def band_rings(self, ctype: str, band: int) -> list[Ring]:
        """The rings of `ctype`'s frequency bands, nearest to `band` first: the band itself, then
        one above and one below it, two above and two below, and so on. One ring per band keeps
        a draw O(log n)."""
        top = self.top_band.get(ctype, 0)
        order = dict.fromkeys(b for d in range(max(band, top - band) + 1) for b in (band + d, band - d) if 0 <= b <= top)
        return [self._ring("band", f"{ctype}\0{b}") for b in order]


def _stems(word: str) -> set[str]:
    """The keys `word` is indexed under for `templates.pointed_at`: its first three letters (what a
    three-letter term word matches) and its `stem`; none under three letters."""
    return {k for k in (word[:3], stem(word)) if len(k) >= 3}


def _fill(ring: Ring, draws: tuple[int, ...], k: int, skip: Callable[[str], bool], picked: list[str],
          reads: set[str], text: Callable[[str], str]) -> bool:
    """Draw from `ring` into `picked` until it holds `k`, a slot at a time (the draws of
    Ring.pick), adding what each pick reads as to `reads`, so that `skip` judges the next draw
    knowing it. False when a draw finds every candidate rejected: so would the next draw's."""
    for draw in draws[:k - len(picked)]:
        got = ring.pick((draw,), 1, skip)
        if not got:
            return False
        picked.append(got[0])
        reads.add(reads_as(text(got[0])))
    return True

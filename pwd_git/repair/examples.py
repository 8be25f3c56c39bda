"""Targeted training examples for diagnosed nodes, written from the KB alone.

Never from benchmark items or their answers, and never in the benchmark's wording: the
repaired model must still be tested on questions it has not seen (build's decontamination
check runs on the result). Concept gaps get more surface forms and contrastive examples
(siblings, negative constraints); chain breaks get step-by-step demonstrations over other
KB paths with the same predicate pattern that belong to no test chain. In a patch without
not-learned nodes, every other concept the examples name gets one anchor restating its type
(`anchors`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pwd_git.build.templates import article, clue, define, flat, informative, sentence
from pwd_git.kb.checks import reads_as
from pwd_git.kb.model import KB, Statement
from pwd_git.repair.diagnose import CHAIN_BREAK, Finding

CONCEPT_FORMS = [
    ("Explain {term} in one sentence.", "{defined}"),
    ("Describe {term}.", "{term}: {definition}"),
    ("Tell me what {term} is.", "{defined}"),
    ("Give a short definition of {term}.", "{definition}"),
    ("Which category does {term} belong to?", "{term} is {a_type}."),
]
ANCHOR_FORM = CONCEPT_FORMS[4]  # "Which category does {term} belong to?"
ALIAS_FORM = ("What else is {term} called?", "{term} is also called {alias}.")
SIBLING_FORM = ("How does {term} differ from {other}?", "{defined} By contrast, {other_defined}")
#: A negative constraint is a true sentence about what does not hold ("The nucleolus is not
#: enclosed by its own membrane"), so it answers a question about what is not the case, never
#: one asking for a misconception (a false belief).
NEGATIVE_FORM = ("What does not hold for {term}?", "{constraint}")
STATEMENT_FORMS = [
    ("Recall the fact about {subject} and '{predicate}'.", "{subject} {predicate} {object}."),
    ("State what {subject} {predicate}.", "{subject} {predicate} {object}."),
    ("Fact check about {subject}: {predicate} what?", "{subject} {predicate} {object}."),
    ("Remember this relation of {subject}.", "{subject} {predicate} {object}."),
    ("In one sentence, how are {subject} and {object} related?", "{subject} {predicate} {object}."),
    ("Name what {subject} {predicate}.", "{object}"),
]
TEXT_FORM = ("Say it in plain words: {subject} {predicate} {object}.", "{text}")
#: "Is it true that", not "Does": a predicate is a third-person verb phrase ("is part of", "produces").
CONTRAST_FORM = ("Is it true that {subject} {predicate} {other}?", "No. {subject} {predicate} {object}, not {other}.")
COMPOSE_FORMS = [
    ("Work it out step by step: start at {start}, apply {path}. Where do you end up?",
     "{steps} So the endpoint is {answer}."),
    ("Chain these relations, one hop at a time, beginning with {start}: {path}.", "{steps} Result: {answer}."),
]


@dataclass
class Skipped:
    finding: Finding
    reason: str


def _digest(seed: str, text: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{text}".encode()).digest()


def _pick(seed: str, candidates: list[str], k: int) -> list[str]:
    return sorted(candidates, key=lambda c: _digest(seed, c))[:k]


class ExampleWriter:
    def __init__(self, kb: KB):
        self.kb = kb
        self.test_statements = {s for ch in kb.chains.values() if ch.split == "test" for s in ch.steps}
        self.demonstrated: set[tuple[str, ...]] = set()  # predicate patterns with compositions written
        self.true_targets = kb.true_targets()
        self.objects_by_predicate = kb.objects_by_predicate()

    def term(self, cid: str | None) -> str:
        return self.kb.concepts[cid].term if cid else ""

    def target(self, st: Statement) -> str:
        return self.term(st.object) if st.object else str(st.value)

    @staticmethod
    def _example(kind: str, user: str, assistant: str, concepts: list[str], statements: list[str]) -> dict:
        """One example, its texts on one line as the build's generated records are (`flat`)."""
        return {"kind": kind, "traces": {"concepts": concepts, "statements": statements, "chain": None},
                "messages": [{"role": "user", "content": flat(user)}, {"role": "assistant", "content": flat(assistant)}]}

    def for_finding(self, finding: Finding) -> tuple[list[dict], str | None]:
        """(examples, reason when none can be written); ([], None): the finding is covered by
        examples written for an earlier one (a chain whose pattern is already demonstrated)."""
        if finding.evidence == "contradictory":
            return [], ("contradictory data: " + ", ".join(finding.conflicts)
                        + " also state a different object; resolve the conflict in the KB instead")
        if finding.kind == CHAIN_BREAK:
            taught = [ex for sid in finding.untaught for ex in self.statement_examples(sid)]
            compositions, reason = self.compositions(finding.node)
            return taught + compositions, None if taught else reason
        if finding.node_kind == "concept":
            return self.concept_examples(finding.node), None
        return self.statement_examples(finding.node), None

    def anchors(self, examples: list[dict]) -> list[dict]:
        """One example restating the type of every concept that `examples` name but do not
        teach (not the subject of a concept example), in the order they are first named.
        New sentences about an entity ("Daihaven is located in Morotrathonia") pull what the
        model says after its name; without the anchor, a fine-tune on a patch of statements and
        compositions broke 15-16 of a geography model's "<term> is" type probes per seed, with
        it 3-9 (docs/performance.md, repair efficiency). `write_patch` leaves them out of a
        patch that also covers not-learned nodes: its own concept examples already restate
        types and definitions, and anchors for every other named concept broke more there
        (geography: 11 and 22 items against 8 and 8)."""
        taught = {ex["traces"]["concepts"][0] for ex in examples if ex["kind"] == "concept"}
        named = dict.fromkeys(c for ex in examples for c in ex["traces"]["concepts"] if c not in taught)
        out = []
        for cid in named:
            c = self.kb.concepts[cid]
            fields = {"term": c.term, "a_type": f"{article(c.type)} {c.type}"}
            out.append(self._example("anchor", ANCHOR_FORM[0].format(**fields), ANCHOR_FORM[1].format(**fields),
                                     [cid], []))
        return out

    def says_something(self, cid: str) -> bool:
        """Whether the concept's definition says more than its name (validate's
        uninformative-definition rule): "java is defined as Java." teaches nothing."""
        c = self.kb.concepts[cid]
        return informative(clue(c.definition, (c.term, *c.aliases)))

    def concept_examples(self, cid: str) -> list[dict]:
        c = self.kb.concepts[cid]
        fields = {"term": c.term, "definition": c.definition, "a_type": f"{article(c.type)} {c.type}",
                  "defined": define(c.term, c.definition, (c.term, *c.aliases))}
        forms = CONCEPT_FORMS if self.says_something(cid) else [ANCHOR_FORM]
        out = [self._example("concept", u.format(**fields), a.format(**fields), [cid], []) for u, a in forms]
        for alias in c.aliases:
            out.append(self._example("concept", ALIAS_FORM[0].format(**fields),
                                     ALIAS_FORM[1].format(alias=alias, **fields), [cid], []))
        # a contrast of definitions needs two that say something
        siblings = [o for o in self.kb.concepts if o != cid and self.kb.concepts[o].type == c.type
                    and self.says_something(o)] if self.says_something(cid) else []
        for other in _pick(cid, siblings, 2):
            o = self.kb.concepts[other]
            out.append(self._example("contrast", SIBLING_FORM[0].format(other=o.term, **fields),
                                     SIBLING_FORM[1].format(other_defined=define(o.term, o.definition, (o.term, *o.aliases)),
                                                            **fields),
                                     [cid, other], []))
        names = [n.lower() for n in (c.term, *c.aliases)]
        constraints = dict.fromkeys(c for chain in self.kb.chains.values() for c in chain.negative_constraints)
        for constraint in constraints:  # chains through one concept often state the same one: taught once
            if any(n in constraint.lower() for n in names):
                out.append(self._example("negative", NEGATIVE_FORM[0].format(**fields),
                                         NEGATIVE_FORM[1].format(constraint=sentence(constraint), **fields), [cid], []))
        return out

    def statement_examples(self, sid: str) -> list[dict]:
        st = self.kb.statements[sid]
        concepts = [st.subject] + ([st.object] if st.object else [])
        fields = {"subject": self.term(st.subject), "predicate": st.predicate, "object": self.target(st),
                  "text": st.text or ""}
        forms = STATEMENT_FORMS + ([TEXT_FORM] if st.text else [])
        out = [self._example("statement", u.format(**fields), a.format(**fields), concepts, [sid]) for u, a in forms]
        if st.object:
            true = self.true_targets[(st.subject, st.predicate)]
            kind = self.kb.concepts[st.object].type
            used = self.objects_by_predicate.get((st.predicate, kind), set())
            # never a namesake of a true object ("red" beside "Red"), as the build's draws refuse
            read = {reads_as(n) for t in true for n in (self.kb.concepts[t].term, *self.kb.concepts[t].aliases)
                    if t in self.kb.concepts}
            others = [o for o in self.kb.concepts if self.kb.concepts[o].type == kind and o not in true
                      and o != st.subject and reads_as(self.kb.concepts[o].term) not in read]
            # the build's l2.false rule: another object of this predicate first, then any of the type
            picked = _pick(sid, [o for o in others if o in used], 2)
            for other in picked + _pick(sid, [o for o in others if o not in used], 2 - len(picked)):
                out.append(self._example("contrast", CONTRAST_FORM[0].format(other=self.term(other), **fields),
                                         CONTRAST_FORM[1].format(other=self.term(other), **fields),
                                         [*concepts, other], [sid]))
        return out

    def compositions(self, chain_id: str, max_paths: int = 6) -> tuple[list[dict], str | None]:
        """Step-by-step demonstrations of the chain's predicate pattern over other KB paths. A
        pattern is demonstrated once per writer (one patch): the other chains that break on it
        share those examples (([], None)), so a patch of thirty chain breaks over five patterns
        holds five patterns' worth of compositions, not thirty that tilt the model."""
        chain = self.kb.chains[chain_id]
        pattern = [self.kb.statements[s].predicate for s in chain.steps]
        if tuple(pattern) in self.demonstrated:
            return [], None
        asked = {self.kb.statements[ch.steps[0]].subject for ch in self.kb.chains.values() if ch.split == "test"
                 and [self.kb.statements[s].predicate for s in ch.steps if s in self.kb.statements] == pattern}
        paths = [p for p in self.paths_with_pattern(pattern, exclude=set(chain.steps) | self.test_statements)
                 if self.kb.statements[p[0]].subject not in asked]  # not a test question reworded
        if not paths:
            return [], (f"no KB path of the pattern {' -> '.join(pattern)} avoids every test chain's statements "
                        "and starts (a demonstration over those would teach the test's questions); add one "
                        "(e.g. a train chain) so composition can be demonstrated")
        out = []
        for path in self._spread(chain_id, paths, max_paths):
            steps = [self.kb.statements[s] for s in path]
            fields = {"start": self.term(steps[0].subject), "path": " then ".join(s.predicate for s in steps),
                      "steps": " ".join(f"{self.term(s.subject)} {s.predicate} {self.target(s)}." for s in steps),
                      "answer": self.target(steps[-1])}
            concepts = list(dict.fromkeys(c for s in steps for c in (s.subject, s.object) if c))
            for user, assistant in COMPOSE_FORMS:
                out.append(self._example(f"compose:{chain_id}", user.format(**fields), assistant.format(**fields),
                                         concepts, [s.id for s in steps]))
        self.demonstrated.add(tuple(pattern))
        return out, None

    def _spread(self, seed: str, paths: list[list[str]], k: int) -> list[list[str]]:
        """At most `k` of `paths`, one per endpoint in turn, no endpoint more than its even share
        of `k`, and each start at most once while others are left: real relations pile up on a
        few endpoints (most Debian packages end in the section `libs`), and demonstrations that
        keep ending there teach that answer as a prior (the blind-prior trap build warns
        about), not the composition. Fewer than `k` when the endpoints run out."""
        by_end: dict[str, list[list[str]]] = {}
        for path in paths:
            by_end.setdefault(self.target(self.kb.statements[path[-1]]), []).append(path)
        queues = [sorted(group, key=lambda p: _digest(seed, ",".join(p)))
                  for _end, group in sorted(by_end.items(), key=lambda kv: _digest(seed, kv[0]))]
        share = -(-k // max(1, len(queues)))
        picked: list[list[str]] = []
        starts: set[str] = set()
        for _round in range(share):
            for queue in queues:
                if not queue or len(picked) >= k:
                    continue
                fresh = next((p for p in queue if self.kb.statements[p[0]].subject not in starts), queue[0])
                queue.remove(fresh)
                picked.append(fresh)
                starts.add(self.kb.statements[fresh[0]].subject)
        return picked

    def paths_with_pattern(self, pattern: list[str], exclude: set[str], limit: int = 400,
                           per_start: int = 4) -> list[list[str]]:
        """Statement paths whose predicates are `pattern`, avoiding `exclude` (depth-first,
        bounded: at most `per_start` from one start, so the search reaches many starts)."""
        by_subject: dict[tuple[str, str], list[Statement]] = {}
        for st in self.kb.statements.values():
            if st.id not in exclude:
                by_subject.setdefault((st.subject, st.predicate), []).append(st)
        found: list[list[str]] = []
        per: dict[str, int] = {}

        def extend(path: list[Statement]) -> None:
            if len(found) >= limit or per.get(path[0].subject, 0) >= per_start:
                return
            if len(path) == len(pattern):
                found.append([s.id for s in path])
                per[path[0].subject] = per.get(path[0].subject, 0) + 1
                return
            last = path[-1]
            if last.object is None:
                return
            for nxt in by_subject.get((last.object, pattern[len(path)]), []):
                extend([*path, nxt])

        for st in sorted(self.kb.statements.values(), key=lambda s: s.id):
            if st.predicate == pattern[0] and st.id not in exclude:
                extend([st])
        return found

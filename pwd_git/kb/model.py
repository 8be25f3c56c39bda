"""The in-memory knowledge base: L1 concepts, L2 statements, L3 chains, config, patches.

Everything downstream (build, diagnose, patch, bisect) reads this model; each node keeps
the `path:line` it came from so that any failure can be reported like a compiler error.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: object) -> str:
    """Lower-case, runs of other characters collapsed to '-': the id form of a phrase."""
    return _SLUG.sub("-", str(text).lower()).strip("-") or "x"


def ascii_slug(text: str) -> str:
    """The slug of `text` spelled in ASCII where its letters decompose ("Córdoba": cordoba,
    "Großglockner": grossglockner); "" when nothing of it is left ("東京")."""
    spelled = unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode()
    return _SLUG.sub("-", spelled).strip("-")


def value_slug(value: object) -> str:
    """The id form of a statement's target. A text with letters or digits of other scripts gets
    its `ascii_slug` and a short hash of the text ("東京": x-130016b2), so that two values never
    share an id because the slug dropped them."""
    text = str(value)
    if not any(ch.isalnum() and not ch.isascii() for ch in text):
        return slug(text)
    digest = hashlib.sha256(unicodedata.normalize("NFC", text).encode()).hexdigest()[:8]
    return f"{ascii_slug(text) or 'x'}-{digest}"


def statement_id(subject: str, predicate: str, target: object) -> str:
    """Content-derived statement id: stable under reordering of relations."""
    return f"{subject}.{slug(predicate)}.{value_slug(target)}"


@dataclass(frozen=True)
class Loc:
    path: str  # relative to the KB root, '/'-separated
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Statement:
    id: str
    subject: str
    predicate: str
    object: str | None
    value: str | None
    text: str | None
    loc: Loc
    source: dict | None = None

    @property
    def target(self) -> str:
        """The object concept id, or the literal value."""
        return self.object if self.object is not None else str(self.value)


@dataclass
class Concept:
    id: str
    term: str
    type: str
    definition: str
    aliases: list[str]
    loc: Loc
    statements: list[str] = field(default_factory=list)  # ids of outgoing statements, file order
    source: dict | None = None


@dataclass
class HandItem:
    """A hand-written multiple-choice question on a chain: an independent unit test."""

    question: str
    choices: list[str]
    answer: int
    loc: Loc
    answer_loc: Loc  # where `answer:` and `choices:` are written: what their errors point at
    choices_loc: Loc


@dataclass
class Chain:
    id: str
    title: str
    split: str
    steps: list[str]
    step_locs: list[Loc]
    loc: Loc
    preconditions: list[str] = field(default_factory=list)
    negative_constraints: list[str] = field(default_factory=list)
    items: list[HandItem] = field(default_factory=list)


@dataclass
class PatchExample:
    concepts: list[str]
    statements: list[str]
    chain: str | None
    messages: list[dict]
    loc: Loc
    kind: str | None = None


@dataclass
class KB:
    """One revision (or the working tree) of a domain's knowledge base."""

    config: dict
    concepts: dict[str, Concept] = field(default_factory=dict)
    statements: dict[str, Statement] = field(default_factory=dict)
    chains: dict[str, Chain] = field(default_factory=dict)
    patches: list[PatchExample] = field(default_factory=list)
    patch_targets: set[str] = field(default_factory=set)  # benchmark item ids the patches were written to fix
    files: dict[str, str] = field(default_factory=dict)  # path -> blob OID

    def predicate_is_functional(self, predicate: str) -> bool:
        decl = (self.config.get("predicates") or {}).get(predicate) or {}
        return bool(decl.get("functional"))

    def true_targets(self) -> dict[tuple[str, str], set[str]]:
        """(subject, predicate) -> every target the KB makes true: its statements, and the
        converse of each statement whose predicate declares an `inverse` ("a borders b" with
        `borders: {inverse: borders}` also makes "b borders a" true), and for a predicate
        declared `transitive`, what its chains reach ("a is a subclass of b", "b is a subclass
        of c": a is a subclass of c). What no distractor and no "false" training claim may ever be."""
        declared = {p: d for p, d in (self.config.get("predicates") or {}).items() if isinstance(d, dict)}
        inverse = {p: d["inverse"] for p, d in declared.items() if d.get("inverse")}
        out: dict[tuple[str, str], set[str]] = {}
        for st in self.statements.values():
            out.setdefault((st.subject, st.predicate), set()).add(st.target)
            if st.object is not None and st.predicate in inverse:
                out.setdefault((st.object, inverse[st.predicate]), set()).add(st.subject)
        transitive = {p for p, d in declared.items() if d.get("transitive")}
        transitive |= {inverse[p] for p in transitive if p in inverse}
        if transitive:
            _close(out, transitive)
        return out

    def objects_by_predicate(self) -> dict[tuple[str, str], set[str]]:
        """(predicate, object type) -> the concepts of that type the predicate points at: where a
        false claim about a statement takes its wrong object first (the build's l2.false, a
        patch's contrast), so it is false for a reason worth learning, not for its type."""
        out: dict[tuple[str, str], set[str]] = {}
        for st in self.statements.values():
            if st.object is not None:
                out.setdefault((st.predicate, self.concepts[st.object].type), set()).add(st.object)
        return out

    def summary(self) -> dict[str, int]:
        return {
            "concepts": len(self.concepts),
            "statements": len(self.statements),
            "chains": len(self.chains),
            "test_chains": sum(c.split == "test" for c in self.chains.values()),
            "patch_examples": len(self.patches),
        }


def _close(targets: dict[tuple[str, str], set[str]], predicates: set[str]) -> None:
    """Extend `targets` in place with everything each (subject, predicate) of `predicates` reaches
    by following that predicate again (a walk per subject: a hierarchy is shallow; cycles end)."""
    for predicate in predicates:
        direct = {s: set(t) for (s, p), t in targets.items() if p == predicate}
        for subject, first in direct.items():
            reached, todo = set(first), list(first)
            while todo:
                for nxt in direct.get(todo.pop(), ()):
                    if nxt not in reached:
                        reached.add(nxt)
                        todo.append(nxt)
            targets[(subject, predicate)] = reached

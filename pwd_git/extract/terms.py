"""How an extracted phrase names concepts: terms merged by `norm_term` through aliases
(`Terms`), the key a phrase is looked up by (`phrase_key`), and a statement's subjects and
objects resolved from its phrases ("A, B and C", "such as ...", literal values). extract/merge.py
decides what to write from them; extract/patterns.py strips determiners the same way.
"""

from __future__ import annotations

import re

from pwd_git.kb.checks import norm_term

DETERMINER = re.compile(r"^(?:an?|the)\s+", re.I)  # a leading article: "the nucleus" names "nucleus"
_VALUE = re.compile(r"[-+]?\d[\d.,]*(?:\s*[A-Za-zµ°%/]+(?:\s*[A-Za-z0-9/^]+)?)?")
_LIST_SPLIT = re.compile(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+", re.I)


class Terms:
    """Union-find over normalised terms. An alias never joins two components that are each
    defined (by a person's concept or by a sentence): "KX" after two different terms is a
    clash to report, not a reason to make them one concept."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.anchor: dict[str, str] = {}  # root -> hand concept id
        self.defined: set[str] = set()  # roots with a definition (hand or extracted)

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def known(self, key: str) -> bool:
        return key in self.parent

    def union(self, a: str, b: str) -> bool:
        """False (and nothing joined) when both sides are defined."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if ra in self.defined and rb in self.defined:
            return False
        self.parent[rb] = ra
        if rb in self.anchor:
            self.anchor[ra] = self.anchor.pop(rb)
        if rb in self.defined:
            self.defined.add(ra)
        return True


def phrase_key(phrase: str) -> str:
    return norm_term(DETERMINER.sub("", " ".join(str(phrase).replace("*", "").replace("`", "").split())))


def subjects_of(s: dict, resolve) -> list[str] | None:
    if s.get("shape") == "such-as":
        return resolve_list(s["subject"], resolve, trim_last=True)
    one = resolve(s["subject"])
    return [one] if one else None


def objects_of(s: dict, resolve) -> tuple[list[str], str | None] | None:
    """(object ids, literal value) or None when the object names nothing known."""
    if "value" in s and s.get("object") is None:
        value = s["value"]
        return ([], str(value)) if isinstance(value, (str, int, float)) and str(value).strip() else None
    phrase = str(s.get("object") or "")
    if s.get("shape") == "such-as":
        words = phrase.split()
        for n in range(len(words)):
            found = resolve(" ".join(words[n:]))
            if found:
                return [found], None
        return None
    one = resolve(phrase)
    if one:
        return [one], None
    if s.get("shape") == "import" and phrase.strip():
        return [], phrase.strip()  # a table's object that names no concept is a literal
    if s.get("shape") == "list":
        many = resolve_list(phrase, resolve, trim_last=False)
        if many:
            return many, None
        if _VALUE.fullmatch(phrase.strip()):
            return [], phrase.strip()
    return None


def resolve_list(phrase: str, resolve, *, trim_last: bool) -> list[str] | None:
    """Each item of "A, B and C" as a concept id; with `trim_last`, the last item may be followed by
    more words ("... and chloroplasts have DNA"). None unless every item resolves."""
    parts = [p for p in _LIST_SPLIT.split(phrase.strip()) if p]
    if not parts:
        return None
    ids = []
    for i, part in enumerate(parts):
        found = resolve(part)
        if found is None and trim_last and i == len(parts) - 1:
            words = part.split()
            found = next((f for n in range(len(words) - 1, 0, -1) if (f := resolve(" ".join(words[:n])))), None)
        if found is None:
            return None
        ids.append(found)
    return ids

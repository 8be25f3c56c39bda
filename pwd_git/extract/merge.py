"""Every document's candidates -> the concept files extraction owns, plus what it refused.

Rules (docs/extract.md):
- Terms merge by `norm_term` (case, punctuation, spacing, NFKC, plural 's'), through aliases too;
  a component that holds a concept a person wrote is that concept.
- New concepts get the slug of their term as id (a short hash of the term only on a clash), and
  statements the content id `<subject>.<predicate-slug>.<object-or-value-slug>`: nothing is numbered.
- A file is extraction's when `extract.lock.json` (the manifest, `manifest.py`) records the blob
  it wrote and the file still has that blob. Only such files are rewritten or removed; for any other file (written or
  edited by a person) extraction proposes its additions in the report and writes nothing.
- A second object for a functional predicate is a contradiction: reported, not written.
- Whatever would break a reference from a person's file (a chain step, a relation's object) keeps
  the extracted file it points into as it was.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field

import yaml

from pwd_git.extract.manifest import manifest_bytes
from pwd_git.extract.terms import Terms, objects_of, phrase_key, subjects_of
from pwd_git.git import hash_blob
from pwd_git.kb.checks import norm_term
from pwd_git.kb.model import KB, ascii_slug, statement_id, value_slug

FOLDER = "concepts/extracted"
CHAIN_FOLDER = "chains/extracted"
_SAFE_PATH = re.compile(r"(?:concepts|chains)/extracted/[a-z0-9][a-z0-9-]*\.yaml")
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
_PREDICATE = re.compile(r"[a-z][a-z0-9 '-]*[a-z0-9]")
_TYPE = re.compile(r"[a-z0-9][a-z0-9 -]*")
HEADER = ("# yaml-language-server: $schema=https://pwd-git.dev/schemas/{kind}.schema.json\n"
          "# Written by `git pwd extract` (see extract.lock.json). Edit freely: once you change this file,\n"
          "# extraction never rewrites it again and only proposes its additions.\n")


@dataclass
class Drop:
    reason: str  # quote-not-found | schema | contradiction | unknown-subject | unknown-object | alias-conflict | ...
    doc: str
    detail: str
    quote: str = ""

    def as_dict(self) -> dict:
        return {"reason": self.reason, "doc": self.doc, "detail": self.detail, "quote": self.quote}


@dataclass
class Proposal:
    """An addition to a file a person owns: reported for them to make, never written."""

    path: str
    node: str
    change: str
    doc: str
    quote: str

    def as_dict(self) -> dict:
        return {"path": self.path, "node": self.node, "change": self.change, "doc": self.doc, "quote": self.quote}


@dataclass
class Plan:
    files: dict[str, bytes] = field(default_factory=dict)  # path -> new content (added or changed)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # owned files whose content stays
    modified: list[str] = field(default_factory=list)  # of `files`, those that exist at the base
    kept: dict[str, str] = field(default_factory=dict)  # owned file kept as it was -> why
    released: list[str] = field(default_factory=list)  # recorded as extraction's, since changed by a person
    owned_after: dict[str, str] = field(default_factory=dict)  # path -> blob: what the new manifest records
    manifest: bytes = b""
    concepts: list[dict] = field(default_factory=list)  # {id, path, doc}
    statements: list[dict] = field(default_factory=list)  # {id, path, doc}
    chains: list[dict] = field(default_factory=list)  # {id, path, split}
    dropped: list[Drop] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    known: int = 0  # candidates the KB already states


def plan(kb: KB, manifest: dict, results: list[dict], functional: frozenset[str], documents: dict[str, dict],
         chains: int = 0) -> Plan:
    """Merge the candidates of every document (in path order) into the files to write.
    `results`: one {"doc", "concepts", "aliases", "statements"} per document; `documents`: what
    the manifest records about each document."""
    out = Plan()
    owned = {p: b for p, b in manifest["files"].items() if kb.files.get(p) == b and _SAFE_PATH.fullmatch(p)}
    out.released = sorted(set(manifest["files"]) - set(owned))
    hand = {cid: c for cid, c in kb.concepts.items() if c.loc.path not in owned}
    terms = Terms()
    for cid in sorted(hand):
        c = hand[cid]
        keys = [norm_term(c.term), *(norm_term(a) for a in c.aliases)]
        if any(terms.known(k) and terms.anchor.get(terms.find(k)) not in (None, cid) for k in keys):
            keys = [k for k in keys if not terms.known(k)]  # a near-duplicate the KB already warns about
        if not keys:
            continue
        root = terms.find(keys[0])
        for k in keys[1:]:
            terms.union(root, k)
        terms.anchor[terms.find(root)] = cid
        terms.defined.add(terms.find(root))

    concepts = [(r["doc"], c) for r in results for c in r.get("concepts", [])]
    for doc, c in concepts:
        problem = _concept_problem(c)
        if problem:
            out.dropped.append(Drop("schema", doc, f"concept {c.get('term')!r}: {problem}", c.get("quote", "")))
            continue
        terms.defined.add(terms.find(norm_term(c["term"])))
    aliases = [(r["doc"], a) for r in results for a in r.get("aliases", [])]
    aliases += [(doc, {"term": c["term"], "alias": a, "quote": c["quote"]}) for doc, c in concepts
                if not _concept_problem(c) for a in c.get("aliases") or []]
    linked = []
    for doc, a in aliases:
        if not isinstance(a.get("alias"), str) or not 0 < len(a["alias"]) <= 200:
            out.dropped.append(Drop("schema", doc, f"alias {a.get('alias')!r} of {a.get('term')!r}", a.get("quote", "")))
        elif not terms.union(phrase_key(a["term"]), phrase_key(a["alias"])):
            out.dropped.append(Drop("alias-conflict", doc, f"{a['alias']!r} as another name of {a['term']!r}: both are "
                                    "defined as different concepts", a["quote"]))
        else:
            linked.append((doc, a))

    # Each component: a hand concept, or the first concept candidate that defines it.
    taken = set(kb.chains) | set(hand)
    defined: dict[str, dict] = {}  # root -> {"id", "term", "type", "definition", "source", "aliases": {norm: text}}
    for doc, c in concepts:
        if _concept_problem(c):
            continue
        root = terms.find(norm_term(c["term"]))
        if root in terms.anchor or root in defined:
            continue
        cid = _new_id(c["term"], taken)
        taken.add(cid)
        defined[root] = {"id": cid, "term": c["term"], "type": c["type"], "definition": c["definition"],
                         "source": {"doc": doc, "quote": c["quote"]}, "aliases": {}, "relations": {}}

    def resolve(phrase: str) -> str | None:
        key = phrase_key(phrase)
        if not key or not terms.known(key):
            return None
        root = terms.find(key)
        return terms.anchor.get(root) or (defined[root]["id"] if root in defined else None)

    for doc, a in linked:
        root = terms.find(phrase_key(a["term"]))
        key = phrase_key(a["alias"])
        if root in terms.anchor:
            c = hand[terms.anchor[root]]
            if key not in {norm_term(c.term), *(norm_term(x) for x in c.aliases)}:
                out.proposals.append(Proposal(c.loc.path, c.id, f"add alias {a['alias']!r}", doc, a["quote"]))
        elif root in defined:
            entry = defined[root]
            if key != norm_term(entry["term"]):
                entry["aliases"].setdefault(key, a["alias"])
        else:
            out.dropped.append(Drop("undefined-term", doc, f"{a['alias']!r} names {a['term']!r}, which no sentence "
                                    "defines and the KB does not hold", a["quote"]))

    by_id = {e["id"]: e for e in defined.values()}
    existing = {sid: st for sid, st in kb.statements.items() if st.loc.path not in owned}
    functional_objects: dict[tuple[str, str], tuple[str, str]] = {}
    for st in existing.values():
        if st.predicate in functional:
            functional_objects.setdefault((st.subject, st.predicate), (st.target, str(st.loc)))
    for r in results:
        for s in r.get("statements", []):
            _statement(s, r["doc"], resolve, by_id, hand, existing, functional, functional_objects, out)

    proposed = _chains(kb, owned, hand, defined, existing, chains)
    _write(kb, owned, defined, proposed, out)
    out.manifest = manifest_bytes(out.owned_after, documents)
    return out


def _concept_problem(c: dict) -> str | None:
    if not isinstance(c.get("term"), str) or not 0 < len(c["term"].strip()) <= 200:
        return "a term of 1 to 200 characters is needed"
    if not isinstance(c.get("type"), str) or not _TYPE.fullmatch(c["type"]) or len(c["type"]) > 100:
        return f"type {c.get('type')!r} is not lower-case letters, digits, spaces and '-'"
    if not isinstance(c.get("definition"), str) or not 0 < len(c["definition"]) <= 4000:
        return "a definition of 1 to 4000 characters is needed"
    if not isinstance(c.get("quote"), str) or not c["quote"]:
        return "no quote"
    if c.get("aliases") is not None and not isinstance(c["aliases"], list):
        return "aliases is not a list"
    return None


def _new_id(term: str, taken: set[str]) -> str:
    """The slug of the term spelled in ASCII where its letters decompose ("Rhône": rhone,
    "Großglockner": grossglockner; never a path: only [a-z0-9-]); a short hash of the term on
    a clash, or when no ASCII letter or digit is left ("東京")."""
    base = ascii_slug(term)[:100].strip("-") or "x"
    lost = base == "x" and any(ch.isalnum() for ch in term)  # letters of another script only
    if _ID.fullmatch(base) and base not in taken and not lost:
        return base
    return f"{base[:92]}-{hashlib.sha1(norm_term(term).encode()).hexdigest()[:6]}"


def _statement(s: dict, doc: str, resolve, by_id: dict, hand: dict, existing: dict, functional: frozenset[str],
               functional_objects: dict, out: Plan) -> None:
    quote = s.get("quote") or ""
    predicate = s.get("predicate")
    if not isinstance(predicate, str) or not _PREDICATE.fullmatch(predicate) or len(predicate) > 100:
        out.dropped.append(Drop("schema", doc, f"predicate {predicate!r} is not a lower-case verb phrase", quote))
        return
    subjects = subjects_of(s, resolve)
    if not subjects:
        out.dropped.append(Drop("unknown-subject", doc, f"{s.get('subject')!r} is not a concept: no sentence defines it "
                                "and the KB does not hold it", quote))
        return
    objects = objects_of(s, resolve)
    if objects is None:
        out.dropped.append(Drop("unknown-object", doc, f"{s.get('object', s.get('value'))!r} is not a concept: no "
                                "sentence defines it and the KB does not hold it", quote))
        return
    ids, value = objects
    targets = [(o, None) for o in ids] if ids else [(None, value)]
    single = len(subjects) * len(targets) == 1
    for subject in subjects:
        for obj, val in targets:
            if obj == subject:
                out.dropped.append(Drop("self-reference", doc, f"{subject} {predicate} itself", quote))
                continue
            target = obj if obj is not None else val
            sid = statement_id(subject, predicate, target)
            if sid in existing:
                out.known += 1
                continue
            if predicate in functional:
                held = functional_objects.get((subject, predicate))
                if held and value_slug(held[0]) != value_slug(target):  # the statement-id rule
                    out.dropped.append(Drop("contradiction", doc, f"{subject} {predicate} {target!r}, but {held[1]} "
                                            f"says {held[0]!r} ({predicate!r} is functional)", quote))
                    continue
                functional_objects[(subject, predicate)] = (target, f"{doc} ({quote[:60]})")
            if subject in hand:
                out.proposals.append(Proposal(hand[subject].loc.path, subject,
                                              f"add relation {predicate!r} -> {target!r}", doc, quote))
                continue
            relation: dict = {"predicate": predicate}
            relation["object" if obj is not None else "value"] = target
            if single and len(quote) <= 2000 and s.get("shape") != "import":  # a table row is no sentence
                relation["text"] = quote
            relation["source"] = {"doc": doc, "quote": quote}
            by_id[subject]["relations"].setdefault(sid, relation)


def _chains(kb: KB, owned: dict, hand: dict, defined: dict, existing: dict, limit: int) -> list[dict]:
    """Chains over the extracted statements (chains.py), ids clear of every id the KB keeps."""
    from pwd_git.extract.chains import propose

    steps = {sid: (e["id"], r["predicate"], r["object"]) for e in defined.values()
             for sid, r in e["relations"].items() if "object" in r}
    targets: dict[tuple[str, str], set[str]] = defaultdict(set)
    for st in existing.values():
        targets[(st.subject, st.predicate)].add(st.target)
    for subject, predicate, obj in steps.values():
        targets[(subject, predicate)].add(obj)
    types = {cid: c.type for cid, c in hand.items()} | {e["id"]: e["type"] for e in defined.values()}
    terms = {cid: c.term for cid, c in hand.items()} | {e["id"]: e["term"] for e in defined.values()}
    taken = {cid for cid, ch in kb.chains.items() if ch.loc.path not in owned} | set(types)
    return propose(steps, targets, types, terms, taken, limit)


def _needed(kb: KB, owned: dict) -> dict[str, set[str]]:
    """{owned path: node ids in it that a file a person owns depends on} (relation objects, chain steps)."""
    where = {cid: c.loc.path for cid, c in kb.concepts.items() if c.loc.path in owned}
    needed: dict[str, set[str]] = defaultdict(set)
    for st in kb.statements.values():
        if st.loc.path not in owned and st.object in where:
            needed[where[st.object]].add(st.object)
    for chain in kb.chains.values():
        if chain.loc.path in owned:
            continue  # extraction's own chains are proposed afresh
        for step in chain.steps:
            st = kb.statements.get(step)
            if st is not None and st.loc.path in owned:
                needed[st.loc.path].add(step)
    return needed


def _write(kb: KB, owned: dict, defined: dict, chains: list[dict], out: Plan) -> None:
    rendered: dict[str, tuple[bytes, set[str], dict | None]] = {}
    for entry in sorted(defined.values(), key=lambda e: e["id"]):
        path = f"{FOLDER}/{entry['id']}.yaml"
        assert _SAFE_PATH.fullmatch(path), path  # ids are slugs: never '/', '.' or '..'
        if path in kb.files and path not in owned:
            continue  # a person's file at that path (its own id won the clash above)
        ids = {entry["id"], *entry["relations"]}
        rendered[path] = (render_concept(entry).encode(), ids, entry)
    for chain in chains:
        path = f"{CHAIN_FOLDER}/{chain['id']}.yaml"
        assert _SAFE_PATH.fullmatch(path), path
        if path not in kb.files or path in owned:
            rendered[path] = (render_chain(chain).encode(), {chain["id"]}, None)
            out.chains.append({"id": chain["id"], "path": path, "split": chain["split"]})
    needed = _needed(kb, owned)
    for path in sorted(owned):
        new = rendered.get(path)
        missing = needed.get(path, set()) - (new[1] if new else set())
        if missing:
            rendered.pop(path, None)
            out.kept[path] = f"kept as it was: {', '.join(sorted(missing))} is still used by the KB"
    out.owned_after = {p: owned[p] for p in out.kept}
    for path, (data, _, entry) in sorted(rendered.items()):
        out.owned_after[path] = hash_blob(data)
        if kb.files.get(path) == out.owned_after[path]:
            out.unchanged.append(path)
        else:
            out.files[path] = data
            if path in kb.files:
                out.modified.append(path)
        if entry is None:
            continue
        doc = entry["source"]["doc"]
        out.concepts.append({"id": entry["id"], "path": path, "doc": doc})
        out.statements.extend({"id": sid, "path": path, "doc": r["source"]["doc"]} for sid, r in entry["relations"].items())
    out.removed = sorted(p for p in owned if p not in rendered and p not in out.kept)


def render_concept(entry: dict) -> str:
    """One concept file, written the way `patch` writes YAML (no anchors, keys in schema order)."""
    from pwd_git.repair.patch import PlainDumper

    doc: dict = {"id": entry["id"], "term": entry["term"], "type": entry["type"]}
    aliases = [entry["aliases"][k] for k in sorted(entry["aliases"])]
    if aliases:
        doc["aliases"] = aliases
    doc["definition"] = entry["definition"]
    doc["source"] = entry["source"]
    if entry["relations"]:
        doc["relations"] = [entry["relations"][sid] for sid in sorted(entry["relations"])]
    return HEADER.format(kind="concept") + yaml.dump(doc, Dumper=PlainDumper, sort_keys=False, allow_unicode=True,
                                                     width=100)


def render_chain(chain: dict) -> str:
    from pwd_git.repair.patch import PlainDumper

    doc = {"id": chain["id"], "title": chain["title"], "split": chain["split"], "steps": chain["steps"]}
    return HEADER.format(kind="chain") + yaml.dump(doc, Dumper=PlainDumper, sort_keys=False, allow_unicode=True, width=100)

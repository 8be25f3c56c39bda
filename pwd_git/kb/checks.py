"""Cross-file checks (errors) and lints (warnings) over an assembled KB."""

from __future__ import annotations

import re
from collections import defaultdict

from pwd_git.kb.diagnostics import ERROR, WARNING, Diagnostic
from pwd_git.kb.model import KB, Loc


def _diag(loc: Loc, severity: str, code: str, message: str) -> Diagnostic:
    return Diagnostic(loc.path, loc.line, loc.col, severity, code, message)


def check_kb(kb: KB) -> list[Diagnostic]:
    return [*_check_statements(kb), *_check_chains(kb), *_check_patches(kb), *_check_config(kb), *_lints(kb)]


def _check_config(kb: KB) -> list[Diagnostic]:
    holdout = (kb.config.get("build") or {}).get("holdout") or []
    return [_diag(Loc("pwd.yaml", 1), ERROR, "missing-holdout",
                  f"build.holdout names {node!r}, which is neither a concept nor a statement")
            for node in holdout if isinstance(node, str) and node not in kb.concepts and node not in kb.statements]


def _check_statements(kb: KB) -> list[Diagnostic]:
    out = []
    objects: dict[tuple[str, str], list] = defaultdict(list)
    for st in kb.statements.values():
        if st.object is not None and st.object not in kb.concepts:
            hint = _closest(st.object, kb.concepts)
            out.append(_diag(st.loc, ERROR, "missing-object",
                             f"relation '{st.predicate}' points at concept {st.object!r}, which does not exist{hint}"))
        if kb.predicate_is_functional(st.predicate):
            objects[(st.subject, st.predicate)].append(st)
    for (subject, predicate), group in objects.items():
        targets = {st.target for st in group}
        if len(targets) > 1:
            first = group[0]
            for st in group[1:]:
                out.append(_diag(st.loc, ERROR, "functional-conflict",
                                 f"'{predicate}' is declared functional in pwd.yaml but {subject!r} already has "
                                 f"{first.target!r} at {first.loc}; a second object {st.target!r} is a contradiction"))
    return out


_STEP = re.compile(r"[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)*\Z")  # as in chain.schema.json


def _check_chains(kb: KB) -> list[Diagnostic]:
    out = []
    for chain in kb.chains.values():
        previous = None
        for i, (sid, loc) in enumerate(zip(chain.steps, chain.step_locs, strict=True)):
            st = kb.statements.get(sid)
            if st is None:
                previous = None
                if not _STEP.match(sid):
                    continue  # malformed: the schema already reported it
                out.append(_diag(loc, ERROR, "missing-step",
                                 f"chain step {i + 1} {sid!r} is not a statement in the KB{_closest(sid, kb.statements)}"))
                continue
            if previous is not None and previous.object != st.subject:
                joint = previous.object if previous.object is not None else f"the value {previous.value!r}"
                out.append(_diag(loc, ERROR, "broken-chain",
                                 f"steps do not connect: step {i} ends at {joint} but step {i + 1} starts at "
                                 f"{st.subject!r}; the object of each step must be the subject of the next"))
            previous = st
        for item in chain.items:
            if not 0 <= item.answer < len(item.choices):
                out.append(_diag(item.loc, ERROR, "bad-answer",
                                 f"answer index {item.answer} is outside the {len(item.choices)} choices (0-based)"))
    return out


def _check_patches(kb: KB) -> list[Diagnostic]:
    out = []
    for ex in kb.patches:
        for cid in ex.concepts:
            if cid not in kb.concepts:
                out.append(_diag(ex.loc, ERROR, "missing-trace", f"patch example traces concept {cid!r}, which does not exist"))
        for sid in ex.statements:
            if sid not in kb.statements:
                out.append(_diag(ex.loc, ERROR, "missing-trace", f"patch example traces statement {sid!r}, which does not exist"))
        if ex.chain and ex.chain not in kb.chains:
            out.append(_diag(ex.loc, ERROR, "missing-trace", f"patch example traces chain {ex.chain!r}, which does not exist"))
    return out


_PLURAL = re.compile(r"(?<=[a-z])(es|s)\b")


def _norm_term(term: str) -> str:
    """Terms that differ only by case, punctuation, spacing or a plural 's' collide."""
    return _PLURAL.sub("", re.sub(r"[^a-z0-9]+", " ", term.lower())).replace(" ", "")


def _lints(kb: KB) -> list[Diagnostic]:
    out = []
    touched = set()  # concepts with any statement in or out
    for st in kb.statements.values():
        touched.add(st.subject)
        if st.object:
            touched.add(st.object)
    chained, probed = set(), set()  # statements on any chain; concepts the benchmark probes
    for chain in kb.chains.values():
        for sid in chain.steps:
            st = kb.statements.get(sid)
            if st:
                chained.add(sid)
                if chain.split == "test":
                    probed.update(c for c in (st.subject, st.object) if c)
    for concept in kb.concepts.values():
        if concept.id not in touched:
            out.append(_diag(concept.loc, WARNING, "orphan-concept",
                             f"concept {concept.id!r} has no statements in or out; link it with a relation"))
    if any(c.split == "test" for c in kb.chains.values()):
        for st in kb.statements.values():
            if st.id not in chained and st.subject not in probed and st.object not in probed:
                out.append(_diag(st.loc, WARNING, "untested-statement",
                                 f"statement {st.id!r} is on no chain and touches no probed concept; "
                                 "nothing exercises it"))
    seen: dict[str, tuple[str, Loc]] = {}
    for concept in kb.concepts.values():
        for name in (concept.term, *concept.aliases):
            key = _norm_term(name)
            other = seen.get(key)
            if other and other[0] != concept.id:
                out.append(_diag(concept.loc, WARNING, "near-duplicate-term",
                                 f"term {name!r} of {concept.id!r} nearly duplicates {other[0]!r} at {other[1]}; "
                                 "merge the concepts or make the terms distinct"))
            elif not other:
                seen[key] = (concept.id, concept.loc)
    declared = kb.config.get("predicates") or {}
    if declared:
        for st in kb.statements.values():
            if st.predicate not in declared:
                out.append(_diag(st.loc, WARNING, "undeclared-predicate",
                                 f"predicate '{st.predicate}' is not declared under predicates: in pwd.yaml"))
    return out


def _closest(name: str, known) -> str:
    import difflib

    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.8) if len(known) < 20000 else []
    return f" (did you mean {match[0]!r}?)" if match else ""

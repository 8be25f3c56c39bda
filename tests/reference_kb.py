"""The KB checks as they were before incremental validation (assemble.py + checks.py at
commit 705413e), frozen as an oracle: the differential tests compare the incremental engine
with it on random KBs and edits. Not used by the tool."""

# ruff: noqa

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict

from pwd_git.kb.checks import same_choices
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
                joint, previous = previous.object if previous is not None else None, None
                if not _STEP.match(sid):
                    continue  # malformed: the schema already reported it
                known = [k for k in kb.statements if joint is None or k.startswith(joint + ".")]
                out.append(_diag(loc, ERROR, "missing-step",
                                 f"chain step {i + 1} {sid!r} is not a statement in the KB{_closest(sid, known)}"))
                continue
            if previous is not None and previous.object != st.subject:
                joint = previous.object if previous.object is not None else f"the value {previous.value!r}"
                out.append(_diag(loc, ERROR, "broken-chain",
                                 f"steps do not connect: step {i} ends at {joint} but step {i + 1} starts at "
                                 f"{st.subject!r}; the object of each step must be the subject of the next"))
            previous = st
        if chain.split == "train" and chain.items:  # added with the rule (fix/robust2), not at 705413e
            out.append(_diag(chain.items[0].loc, WARNING, "unused-items",
                             f"chain {chain.id!r} has split: train, so its {len(chain.items)} hand-written item(s) are "
                             "never asked (only test chains feed the benchmark); set split: test or move the items"))
        for item in chain.items:
            if not 0 <= item.answer < len(item.choices):
                out.append(_diag(item.answer_loc, ERROR, "bad-answer",
                                 f"answer index {item.answer} is outside the {len(item.choices)} choices (0-based)"))
            same = same_choices(item.choices)  # added with the rule (fix/robust), not at 705413e
            if same:
                out.append(_diag(item.choices_loc, ERROR, "same-choices",
                                 f"choices {same[0]} and {same[1]} read the same (case, spacing or end punctuation); "
                                 "make them distinct"))
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


#: An English plural: "es" after a sibilant ("boxes", "classes", "dishes"), else an "s" not after
#: another ("cells"; "glass" stays): "libgles" is not the plural of "libgl".
_PLURAL = re.compile(r"(?:(?<=[sxz])|(?<=ch)|(?<=sh))es\b|(?<=[a-rt-z])s\b")


def _norm_term(term: str) -> str:
    """Terms that differ only by case, punctuation, spacing, Unicode form or a plural 's' collide
    (letters of every script kept: issue 11 changed this and the alias wording below)."""
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", term).casefold())
    spaced = "".join(ch if ch.isalnum() or unicodedata.category(ch)[0] == "M" else " " for ch in text)
    return _PLURAL.sub("", spaced).replace(" ", "") or text


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
        names = (("term", concept.term), *(("alias", a) for a in concept.aliases))
        for (what, name), name_loc in zip(names, concept.name_locs, strict=True):
            key = _norm_term(name)
            other = seen.get(key)
            if other and other[0] != concept.id:
                out.append(_diag(name_loc, WARNING, "near-duplicate-term",
                                 f"{what} {name!r} of {concept.id!r} nearly duplicates {other[0]!r} at {other[1]}; "
                                 "merge them if they are one concept, or qualify one name ('perl (section)')"))
            elif not other:
                seen[key] = (concept.id, name_loc)
    declared = kb.config.get("predicates") or {}
    if declared:
        for st in kb.statements.values():
            if st.predicate not in declared:
                out.append(_diag(st.loc, WARNING, "undeclared-predicate",
                                 f"predicate '{st.predicate}' is not declared under predicates: in pwd.yaml"
                                 f"{_closest(st.predicate, declared)}"))
    return out


def _closest(name: str, known) -> str:
    import difflib

    folded = {k.casefold(): k for k in known} if len(known) < 20000 else {}
    match = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.8)
    return f" (did you mean {folded[match[0]]!r}?)" if match else ""



import re

from pwd_git.kb.diagnostics import ERROR, Diagnostic
from pwd_git.kb.model import KB, Chain, Concept, HandItem, Loc, PatchExample, Statement, statement_id


def assemble(records: dict[str, tuple[str, dict]]) -> tuple[KB, list[Diagnostic]]:
    """Build the KB from {path: (oid, record)}; nodes with schema errors are kept when usable,
    so one typo does not cascade into dozens of 'missing concept' errors elsewhere."""
    diags = [Diagnostic(path, line, col, ERROR, code, msg, jp)
             for path, (_, rec) in records.items() for line, col, code, msg, jp in rec["diags"]]
    config_rec = records.get("pwd.yaml")
    if config_rec is None:
        diags.append(Diagnostic("pwd.yaml", 1, 1, ERROR, "missing-config", "pwd.yaml is missing"))
    config = (config_rec[1]["data"] if config_rec else None) or {}
    kb = KB(config=_usable_config(config))
    kb.files = {path: oid for path, (oid, _) in sorted(records.items())}
    id_owner: dict[str, Loc] = {}

    def claim(node_id: str, loc: Loc) -> bool:
        first = id_owner.get(node_id)
        if first:
            diags.append(Diagnostic(loc.path, loc.line, loc.col, ERROR, "duplicate-id",
                                    f"id {node_id!r} is already used by {first.path}:{first.line}; ids are unique across the KB"))
            return False
        id_owner[node_id] = loc
        return True

    for path in sorted(records):
        _, rec = records[path]
        data, pos = rec["data"], rec["pos"]
        if not isinstance(data, dict):
            continue
        top = path.split("/", 1)[0]
        if top == "concepts":
            _add_concept(kb, path, data, pos, diags, claim)
        elif top == "chains":
            _add_chain(kb, path, data, pos, diags, claim)
        elif top == "patches":
            _add_patch(kb, path, data, pos)
    diags.extend(check_kb(kb))
    return kb, sorted(set(diags))


def _usable_config(config: object) -> dict:
    """pwd.yaml as later checks can read it: a malformed `predicates:` (already reported by
    the schema) is dropped rather than crashing them."""
    if not isinstance(config, dict):
        return {}
    predicates = config.get("predicates")
    if predicates is None:
        return config
    usable = {str(k): v for k, v in predicates.items() if isinstance(v, dict)} if isinstance(predicates, dict) else {}
    return {**config, "predicates": usable}


def _loc(path: str, pos: dict, *keys) -> Loc:
    line, col = pos.get(tuple(keys)) or pos.get(("key", *keys[:1])) or pos.get(()) or (1, 1)
    return Loc(path, line, col)


_ID = re.compile(r"[a-z0-9][a-z0-9-]*\Z")


def _node_id(path: str, data: dict, pos: dict, diags: list[Diagnostic]) -> str | None:
    """The id a concept or chain is registered under. A missing or malformed id was already
    reported by the schema; the node then goes under its file stem (ids equal stems), so one
    typo is one error, not a cascade of 'id mismatch' and 'missing concept' errors elsewhere."""
    node_id, stem = data.get("id"), path.rpartition("/")[2].rpartition(".")[0]
    if not isinstance(node_id, str) or not _ID.match(node_id):
        return stem if _ID.match(stem) else None
    if stem != node_id:
        loc = _loc(path, pos, "id")
        diags.append(Diagnostic(path, loc.line, loc.col, ERROR, "id-mismatch",
                                f"id {node_id!r} must equal the file stem {stem!r}; rename the file or the id"))
    return node_id


def _strs(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _add_concept(kb: KB, path: str, data: dict, pos: dict, diags: list[Diagnostic], claim) -> None:
    cid = _node_id(path, data, pos, diags)
    if cid is None:
        return
    loc = _loc(path, pos, "id")
    if not claim(cid, loc):
        return
    concept = Concept(cid, str(data.get("term", cid)), str(data.get("type", "")), str(data.get("definition", "")),
                      _strs(data.get("aliases")), loc, source=data.get("source"))
    concept.name_locs = [_loc(path, pos, "term") if "term" in data else loc,
                         *(_loc(path, pos, "aliases", i) for i in range(len(concept.aliases)))]
    kb.concepts[cid] = concept
    relations = data.get("relations")
    for i, rel in enumerate(relations if isinstance(relations, list) else []):
        if not isinstance(rel, dict) or not isinstance(rel.get("predicate"), str):
            continue
        obj, value = rel.get("object"), rel.get("value")
        if (obj is None) == (value is None) or (obj is not None and not (isinstance(obj, str) and _ID.match(obj))):
            continue  # the schema already reported it (an object that is no id would be a second error)
        target = obj if obj is not None else value
        sid = rel.get("id") if isinstance(rel.get("id"), str) else statement_id(cid, rel["predicate"], target)
        sloc = _loc(path, pos, "relations", i)
        if sid in kb.statements:
            st = kb.statements[sid]
            same = (st.subject, st.predicate, st.object, st.value) == (
                cid, rel["predicate"], str(obj) if obj is not None else None, str(value) if value is not None else None)
            other = st.object if st.object is not None else st.value
            diags.append(Diagnostic(path, sloc.line, sloc.col, ERROR, "duplicate-statement",
                                    f"statement {sid!r} is already stated at {st.loc}; remove one" if same else
                                    f"statement id {sid!r} also names a different statement at {st.loc} "
                                    f"({st.subject!r} {st.predicate!r} -> {other!r}); give one of them its own "
                                    "`id:` (a derived id folds case and punctuation)"))
            continue
        kb.statements[sid] = Statement(sid, cid, rel["predicate"], str(obj) if obj is not None else None,
                                       str(value) if value is not None else None,
                                       rel.get("text") if isinstance(rel.get("text"), str) else None, sloc,
                                       source=rel.get("source"))
        concept.statements.append(sid)


def _add_chain(kb: KB, path: str, data: dict, pos: dict, diags: list[Diagnostic], claim) -> None:
    chid = _node_id(path, data, pos, diags)
    if chid is None:
        return
    loc = _loc(path, pos, "id")
    if not claim(chid, loc):
        return
    steps = _strs(data.get("steps"))
    items = []
    for i, item in enumerate(data.get("items") if isinstance(data.get("items"), list) else []):
        if isinstance(item, dict) and isinstance(item.get("choices"), list) and isinstance(item.get("answer"), int):
            items.append(HandItem(str(item.get("question", "")), _strs(item["choices"]), item["answer"],
                                  _loc(path, pos, "items", i), _loc(path, pos, "items", i, "answer"),
                                  _loc(path, pos, "items", i, "choices")))
    kb.chains[chid] = Chain(chid, str(data.get("title", chid)), str(data.get("split", "test")), steps,
                            [_loc(path, pos, "steps", i) for i in range(len(steps))], loc,
                            _strs(data.get("preconditions")), _strs(data.get("negative_constraints")), items)


def _add_patch(kb: KB, path: str, data: dict, pos: dict) -> None:
    examples = data.get("examples")
    for i, ex in enumerate(examples if isinstance(examples, list) else []):
        if not isinstance(ex, dict) or not isinstance(ex.get("messages"), list):
            continue
        traces = ex.get("traces") if isinstance(ex.get("traces"), dict) else {}
        messages = [m for m in ex["messages"] if isinstance(m, dict)]
        kb.patches.append(PatchExample(_strs(traces.get("concepts")), _strs(traces.get("statements")),
                                       traces.get("chain") if isinstance(traces.get("chain"), str) else None,
                                       messages, _loc(path, pos, "examples", i),
                                       ex.get("kind") if isinstance(ex.get("kind"), str) else None))

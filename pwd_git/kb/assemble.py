"""Parsed records -> one KB, plus every diagnostic (file-local ones and cross-file checks).

The KB objects are built here; the diagnostics come from the per-file checks (checks.py over
index.py), the same code `git pwd validate` runs incrementally, so both always agree.
"""

from __future__ import annotations

import re

from pwd_git.kb.diagnostics import Diagnostic
from pwd_git.kb.model import KB, Chain, Concept, HandItem, Loc, PatchExample, Statement, statement_id


def assemble(records: dict[str, tuple[str, dict]]) -> tuple[KB, list[Diagnostic]]:
    """Build the KB from {path: (oid, record)}; nodes with schema errors are kept when usable,
    so one typo does not cascade into dozens of 'missing concept' errors elsewhere."""
    from pwd_git.kb.index import check_records

    diags = [Diagnostic(*d) for d in check_records(records).diagnostics]
    config_rec = records.get("pwd.yaml")
    config = (config_rec[1]["data"] if config_rec else None) or {}
    kb = KB(config=_usable_config(config))
    kb.files = {path: oid for path, (oid, _) in sorted(records.items())}
    id_owner: dict[str, Loc] = {}

    def claim(node_id: str, loc: Loc) -> bool:
        if node_id in id_owner:
            return False  # a duplicate-id error; the first file in path order owns the id
        id_owner[node_id] = loc
        return True

    for path in sorted(records):
        _, rec = records[path]
        data, pos = rec["data"], rec["pos"]
        if not isinstance(data, dict):
            continue
        top = path.split("/", 1)[0]
        if top == "concepts":
            _add_concept(kb, path, data, pos, claim)
        elif top == "chains":
            _add_chain(kb, path, data, pos, claim)
        elif top == "patches":
            _add_patch(kb, path, data, pos)
    return kb, diags


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


NODE_ID = re.compile(r"[a-z0-9][a-z0-9-]*\Z")


def _node_id(path: str, data: dict) -> str | None:
    """The id a concept or chain is registered under. A missing or malformed id was already
    reported by the schema; the node then goes under its file stem (ids equal stems), so one
    typo is one error, not a cascade of 'id mismatch' and 'missing concept' errors elsewhere.
    (A valid id that differs from the stem is an id-mismatch error, reported by facts.py.)"""
    node_id, stem = data.get("id"), path.rpartition("/")[2].rpartition(".")[0]
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        return stem if NODE_ID.match(stem) else None
    return node_id


def statement_relations(data: dict):
    """(index, relation, object, value) of each relation that makes a statement. Malformed ones
    are skipped: the schema already reported them (an object that is no id would be a second error)."""
    relations = data.get("relations")
    for i, rel in enumerate(relations if isinstance(relations, list) else []):
        if not isinstance(rel, dict) or not isinstance(rel.get("predicate"), str):
            continue
        obj, value = rel.get("object"), rel.get("value")
        if (obj is None) == (value is None) or (obj is not None and not (isinstance(obj, str) and NODE_ID.match(obj))):
            continue
        yield i, rel, obj, value


def strs(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _add_concept(kb: KB, path: str, data: dict, pos: dict, claim) -> None:
    cid = _node_id(path, data)
    if cid is None:
        return
    loc = _loc(path, pos, "id")
    if not claim(cid, loc):
        return
    concept = Concept(cid, str(data.get("term", cid)), str(data.get("type", "")), str(data.get("definition", "")),
                      strs(data.get("aliases")), loc, source=data.get("source"))
    kb.concepts[cid] = concept
    for i, rel, obj, value in statement_relations(data):
        target = obj if obj is not None else value
        sid = rel.get("id") if isinstance(rel.get("id"), str) else statement_id(cid, rel["predicate"], target)
        sloc = _loc(path, pos, "relations", i)
        if sid in kb.statements:
            continue  # a duplicate-statement error; the first claim in path order wins
        kb.statements[sid] = Statement(sid, cid, rel["predicate"], str(obj) if obj is not None else None,
                                       str(value) if value is not None else None,
                                       rel.get("text") if isinstance(rel.get("text"), str) else None, sloc,
                                       source=rel.get("source"))
        concept.statements.append(sid)


def _add_chain(kb: KB, path: str, data: dict, pos: dict, claim) -> None:
    chid = _node_id(path, data)
    if chid is None:
        return
    loc = _loc(path, pos, "id")
    if not claim(chid, loc):
        return
    steps = strs(data.get("steps"))
    items = []
    for i, item in enumerate(data.get("items") if isinstance(data.get("items"), list) else []):
        if isinstance(item, dict) and isinstance(item.get("choices"), list) and isinstance(item.get("answer"), int):
            items.append(HandItem(str(item.get("question", "")), strs(item["choices"]), item["answer"],
                                  _loc(path, pos, "items", i)))
    kb.chains[chid] = Chain(chid, str(data.get("title", chid)), str(data.get("split", "test")), steps,
                            [_loc(path, pos, "steps", i) for i in range(len(steps))], loc,
                            strs(data.get("preconditions")), strs(data.get("negative_constraints")), items)


def _add_patch(kb: KB, path: str, data: dict, pos: dict) -> None:
    examples = data.get("examples")
    for i, ex in enumerate(examples if isinstance(examples, list) else []):
        if not isinstance(ex, dict) or not isinstance(ex.get("messages"), list):
            continue
        traces = ex.get("traces") if isinstance(ex.get("traces"), dict) else {}
        messages = [m for m in ex["messages"] if isinstance(m, dict)]
        kb.patches.append(PatchExample(strs(traces.get("concepts")), strs(traces.get("statements")),
                                       traces.get("chain") if isinstance(traces.get("chain"), str) else None,
                                       messages, _loc(path, pos, "examples", i),
                                       ex.get("kind") if isinstance(ex.get("kind"), str) else None))

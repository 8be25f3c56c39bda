"""Parsed records -> one KB, plus every diagnostic (file-local ones and cross-file checks).

The KB objects are built here; the diagnostics come from the per-file checks (checks.py over
index.py), the same code `git pwd validate` runs incrementally, so both always agree.
"""

from __future__ import annotations

from pwd_git.kb import walk
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
    if config.get("predicates") is None:
        return config
    return {**config, "predicates": walk.usable_predicates(config)}


def _loc(path: str, pos: dict, *keys) -> Loc:
    return Loc(path, *walk.position(pos, *keys))


def _add_concept(kb: KB, path: str, data: dict, pos: dict, claim) -> None:
    cid = walk.node_id(path, data.get("id"))
    if cid is None:
        return
    loc = _loc(path, pos, "id")
    if not claim(cid, loc):
        return
    concept = Concept(cid, str(data.get("term", cid)), str(data.get("type", "")), str(data.get("definition", "")),
                      walk.strs(data.get("aliases")), loc, source=data.get("source"))
    kb.concepts[cid] = concept
    for i, rel, obj, value in walk.statement_relations(data):
        target = obj if obj is not None else value
        sid = walk.explicit_statement_id(rel) or statement_id(cid, rel["predicate"], target)
        sloc = _loc(path, pos, "relations", i)
        if sid in kb.statements:
            continue  # a duplicate-statement error; the first claim in path order wins
        kb.statements[sid] = Statement(sid, cid, rel["predicate"], str(obj) if obj is not None else None,
                                       str(value) if value is not None else None,
                                       rel.get("text") if isinstance(rel.get("text"), str) else None, sloc,
                                       source=rel.get("source"))
        concept.statements.append(sid)


def _add_chain(kb: KB, path: str, data: dict, pos: dict, claim) -> None:
    chid = walk.node_id(path, data.get("id"))
    if chid is None:
        return
    loc = _loc(path, pos, "id")
    if not claim(chid, loc):
        return
    steps = walk.strs(data.get("steps"))
    items = [HandItem(str(item.get("question", "")), walk.strs(item["choices"]), item["answer"],
                      _loc(path, pos, "items", i), _loc(path, pos, "items", i, "answer"),
                      _loc(path, pos, "items", i, "choices")) for i, item in walk.hand_items(data)]
    kb.chains[chid] = Chain(chid, str(data.get("title", chid)), str(data.get("split", "test")), steps,
                            [_loc(path, pos, "steps", i) for i in range(len(steps))], loc,
                            walk.strs(data.get("preconditions")), walk.strs(data.get("negative_constraints")), items)


def _add_patch(kb: KB, path: str, data: dict, pos: dict) -> None:
    kb.patch_targets.update(walk.strs(data.get("targets")))
    for i, ex, concepts, statements, chain in walk.patch_examples(data):
        messages = [m for m in ex["messages"] if isinstance(m, dict)]
        kb.patches.append(PatchExample(concepts, statements, chain, messages, _loc(path, pos, "examples", i),
                                       ex.get("kind") if isinstance(ex.get("kind"), str) else None))

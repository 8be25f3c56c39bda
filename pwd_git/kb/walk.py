"""The one reading of a parse record: which parts of a KB file are usable nodes, under which id,
at which position. assemble.py builds the KB objects from it and facts.py the small per-file
facts the incremental checks need, so the two can never disagree about what a file holds.

A node or relation with a schema error (already reported by parse.py) is skipped when it is not
usable, never reported twice: an object that is no id, a relation with both or neither of
`object` and `value`, an item without choices.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

NODE_ID = re.compile(r"[a-z0-9][a-z0-9-]*\Z")


def strs(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def position(pos: dict, *keys: object) -> tuple[int, int]:
    """(line, col) of the node at `keys` in a parse record's positions (the key's line when the
    value has none, else the document's start)."""
    return tuple(pos.get(tuple(keys)) or pos.get(("key", *keys[:1])) or pos.get(()) or (1, 1))


def stem(path: str) -> str:
    return path.rpartition("/")[2].rpartition(".")[0]


def node_id(path: str, declared: object) -> str | None:
    """The id a concept or chain is registered under. A missing or malformed id was already
    reported by the schema; the node then goes under its file stem (ids equal stems), so one
    typo is one error, not a cascade of 'missing concept' errors elsewhere. (A valid id that
    differs from the stem stays the id: facts.py reports the id-mismatch.)"""
    if isinstance(declared, str) and NODE_ID.match(declared):
        return declared
    return stem(path) if NODE_ID.match(stem(path)) else None


def declared_id(data: dict) -> str | None:
    """The file's own `id`, when it is a valid id."""
    value = data.get("id")
    return value if isinstance(value, str) and NODE_ID.match(value) else None


def usable_predicates(config: dict) -> dict[str, dict]:
    """pwd.yaml's `predicates:` as the checks can read it: a malformed one (already reported by
    the schema) counts as absent."""
    predicates = config.get("predicates")
    return {str(k): v for k, v in predicates.items() if isinstance(v, dict)} if isinstance(predicates, dict) else {}


def holdout(config: dict) -> list[str]:
    build = config.get("build")
    ids = build.get("holdout") if isinstance(build, dict) else None
    return [h for h in ids if isinstance(h, str)] if isinstance(ids, list) else []


def statement_relations(data: dict) -> Iterator[tuple[int, dict, str | None, object]]:
    """(index, relation, object, value) of each relation that makes a statement."""
    relations = data.get("relations")
    for i, rel in enumerate(relations if isinstance(relations, list) else []):
        if not isinstance(rel, dict) or not isinstance(rel.get("predicate"), str):
            continue
        obj, value = rel.get("object"), rel.get("value")
        if (obj is None) == (value is None) or (obj is not None and not (isinstance(obj, str) and NODE_ID.match(obj))):
            continue
        yield i, rel, obj, value


def explicit_statement_id(rel: dict) -> str | None:
    return rel.get("id") if isinstance(rel.get("id"), str) else None


def hand_items(data: dict) -> Iterator[tuple[int, dict]]:
    """(index, item) of a chain's usable hand-written items."""
    items = data.get("items")
    for i, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict) and isinstance(item.get("choices"), list) and isinstance(item.get("answer"), int):
            yield i, item


def patch_examples(data: dict) -> Iterator[tuple[int, dict, list[str], list[str], str | None]]:
    """(index, example, traced concepts, traced statements, traced chain) of a patch file's
    usable examples."""
    examples = data.get("examples")
    for i, ex in enumerate(examples if isinstance(examples, list) else []):
        if not isinstance(ex, dict) or not isinstance(ex.get("messages"), list):
            continue
        traces = ex.get("traces") if isinstance(ex.get("traces"), dict) else {}
        chain = traces.get("chain") if isinstance(traces.get("chain"), str) else None
        yield i, ex, strs(traces.get("concepts")), strs(traces.get("statements")), chain

"""Per-file facts: the little of each parsed file that the cross-file checks need.

`extract` turns a parse record (see parse.py) into plain, marshal-friendly facts that depend
only on the file's bytes, so they are cached by blob OID like the record. `resolve` adds what
depends on the path (a node's id falls back to the file stem, derived statement ids, the
id-mismatch error) and gives a `FileInfo`, the unit the checks in checks.py work on.

The rules here mirror assemble.py, which builds the full KB objects from the same records:
a node or relation that assemble skips (already reported by the schema) is skipped here too.
"""

from __future__ import annotations

from pwd_git.errors import quote
from pwd_git.kb.assemble import NODE_ID, statement_relations, strs
from pwd_git.kb.model import statement_id

ERROR = "error"


def _pos(pos: dict, *keys) -> tuple[int, int]:
    """(line, col) of a node, as assemble._loc finds it."""
    return tuple(pos.get(tuple(keys)) or pos.get(("key", *keys[:1])) or pos.get(()) or (1, 1))


def extract(kind: str, record: dict) -> dict:
    """Path-independent facts of one parsed file."""
    data, pos = record["data"], record["pos"]
    out: dict = {"diags": [tuple(d) for d in record["diags"]]}
    if not isinstance(data, dict):
        return out
    if kind == "config":
        out["config"] = _config_facts(data)
        return out
    if kind in ("concept", "chain"):
        node_id = data.get("id")
        out["id"] = node_id if isinstance(node_id, str) and NODE_ID.match(node_id) else None
        out["id_pos"] = _pos(pos, "id")
    if kind == "concept":
        out["term"] = str(data["term"]) if "term" in data else None
        out["aliases"] = strs(data.get("aliases"))
        rels = []
        for i, rel, obj, value in statement_relations(data):
            explicit = rel.get("id") if isinstance(rel.get("id"), str) else None
            rels.append((i, explicit, rel["predicate"], obj, None if value is None else str(value),
                         *_pos(pos, "relations", i)))
        out["rels"] = rels
    elif kind == "chain":
        out["split"] = str(data.get("split", "test"))
        steps = strs(data.get("steps"))
        out["steps"] = [(sid, *_pos(pos, "steps", i)) for i, sid in enumerate(steps)]
        items = []
        raw_items = data.get("items")
        for i, item in enumerate(raw_items if isinstance(raw_items, list) else []):
            if isinstance(item, dict) and isinstance(item.get("choices"), list) and isinstance(item.get("answer"), int):
                items.append((item["answer"], len(item["choices"]), *_pos(pos, "items", i)))
        out["items"] = items
    elif kind == "patch":
        examples = []
        raw_examples = data.get("examples")
        for i, ex in enumerate(raw_examples if isinstance(raw_examples, list) else []):
            if not isinstance(ex, dict) or not isinstance(ex.get("messages"), list):
                continue
            traces = ex.get("traces") if isinstance(ex.get("traces"), dict) else {}
            chain = traces.get("chain") if isinstance(traces.get("chain"), str) else None
            examples.append((strs(traces.get("concepts")), strs(traces.get("statements")), chain,
                             *_pos(pos, "examples", i)))
        out["examples"] = examples
    return out


def _config_facts(config: dict) -> dict:
    """What the checks read from pwd.yaml: declared and functional predicates, holdout ids.
    A malformed `predicates:` or `build:` (already reported by the schema) counts as absent."""
    predicates = config.get("predicates")
    usable = {str(k): v for k, v in predicates.items() if isinstance(v, dict)} if isinstance(predicates, dict) else {}
    build = config.get("build")
    holdout = build.get("holdout") if isinstance(build, dict) else None
    return {"declared": sorted(usable), "functional": sorted(k for k, v in usable.items() if v.get("functional")),
            "holdout": [h for h in holdout if isinstance(h, str)] if isinstance(holdout, list) else []}


class FileInfo:
    """One KB file as the checks see it: local diagnostics plus the node it defines and what
    that node refers to. Diagnostics are tuples in `Diagnostic` field order."""

    __slots__ = (
        "aliases",
        "config",
        "diags",
        "examples",
        "items",
        "kind",
        "node",
        "path",
        "rels",
        "split",
        "steps",
        "term",
    )

    def __init__(self, path: str, kind: str):
        self.path, self.kind = path, kind
        self.diags: list[tuple] = []
        self.node: tuple | None = None  # (id, line, col) of a concept or chain
        self.term, self.aliases, self.rels = "", (), ()  # rels: (index, sid, predicate, object, value, line, col)
        self.split, self.steps, self.items = "", (), ()  # steps: (sid, line, col); items: (answer, n, line, col)
        self.examples = ()  # (concepts, statements, chain, line, col)
        self.config: dict | None = None

    def contribution(self) -> tuple:
        """Everything other files' diagnostics can depend on (not the local diagnostics)."""
        if self.kind == "concept":
            return (self.path, self.kind, self.node, self.term, self.aliases, self.rels)
        if self.kind == "chain":
            return (self.path, self.kind, self.node, self.split, self.steps)
        return (self.path, self.kind, self.node)


def resolve(path: str, kind: str, facts: dict) -> FileInfo:
    info = FileInfo(path, kind)
    info.diags = [(path, line, col, ERROR, code, msg, jp) for line, col, code, msg, jp in facts["diags"]]
    if kind == "config":
        info.config = facts.get("config")
        return info
    if kind == "patch":
        info.examples = tuple((tuple(c), tuple(s), ch, line, col) for c, s, ch, line, col in facts.get("examples", ()))
        return info
    if "id_pos" not in facts:  # not a mapping: nothing but the local diagnostics
        return info
    node_id, stem = facts["id"], path.rpartition("/")[2].rpartition(".")[0]
    line, col = facts["id_pos"]
    if node_id is None:
        node_id = stem if NODE_ID.match(stem) else None
        if node_id is None:
            return info
    elif stem != node_id:
        info.diags.append((path, line, col, ERROR, "id-mismatch",
                           f"id {quote(node_id)} must equal the file stem {quote(stem)}; rename the file or the id", ""))
    info.node = (node_id, line, col)
    if kind == "concept":
        info.term = facts["term"] if facts["term"] is not None else node_id
        info.aliases = tuple(facts["aliases"])
        info.rels = tuple((i, explicit if explicit is not None else
                           statement_id(node_id, pred, obj if obj is not None else value), pred, obj, value, rl, rc)
                          for i, explicit, pred, obj, value, rl, rc in facts["rels"])
    else:
        info.split = facts["split"]
        info.steps = tuple(tuple(s) for s in facts["steps"])
        info.items = tuple(tuple(i) for i in facts["items"])
    return info

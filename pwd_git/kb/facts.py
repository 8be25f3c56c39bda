"""Per-file facts: the little of each parsed file that the cross-file checks need.

`extract` turns a parse record (see parse.py) into plain, marshal-friendly facts that depend
only on the file's bytes, so they are cached by blob OID like the record. `resolve` adds what
depends on the path (a node's id falls back to the file stem, derived statement ids, the
id-mismatch error) and gives a `FileInfo`, the unit the checks in checks.py work on.

What is a usable node, its id and its position come from walk.py, the reading assemble.py
builds the full KB objects from, so a node that assemble skips is skipped here too.
"""

from __future__ import annotations

from pwd_git.errors import quote
from pwd_git.kb import walk
from pwd_git.kb.checks import norm_term, same_choices
from pwd_git.kb.model import statement_id

ERROR, WARNING = "error", "warning"
_pos = walk.position


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
        out["id"] = walk.declared_id(data)
        out["id_pos"] = _pos(pos, "id")
    if kind == "concept":
        out["term"] = str(data["term"]) if "term" in data else None
        out["aliases"] = walk.strs(data.get("aliases"))
        out["name_pos"] = [_pos(pos, "term") if "term" in data else out["id_pos"],
                           *(_pos(pos, "aliases", i) for i in range(len(out["aliases"])))]
        out["warnings"] = _definition_warnings(data, pos, out["term"] or out["id"], out["aliases"])
        out["rels"] = [(i, walk.explicit_statement_id(rel), rel["predicate"], obj, None if value is None else str(value),
                        *_pos(pos, "relations", i)) for i, rel, obj, value in walk.statement_relations(data)]
    elif kind == "chain":
        out["split"] = str(data.get("split", "test"))
        out["steps"] = [(sid, *_pos(pos, "steps", i)) for i, sid in enumerate(walk.strs(data.get("steps")))]
        out["items"] = [(item["answer"], len(item["choices"]), *_pos(pos, "items", i), same_choices(item["choices"]),
                         _pos(pos, "items", i, "answer"), _pos(pos, "items", i, "choices"))
                        for i, item in walk.hand_items(data)]
    elif kind == "patch":
        out["examples"] = [(concepts, statements, chain, *_pos(pos, "examples", i))
                           for i, _ex, concepts, statements, chain in walk.patch_examples(data)]
    return out


def _definition_warnings(data: dict, pos: dict, term: str | None, aliases: list[str]) -> list[tuple]:
    """A definition that says nothing but the concept's name ("Processing.", "Abu Dhabi is Abu
    Dhabi."): the build gives it no describe probe and it trains nothing a model could learn
    about the concept. The generator's own rule (templates.clue and informative) decides."""
    from pwd_git.build.templates import clue, informative

    definition = data.get("definition")
    if not isinstance(definition, str) or not definition.strip() or not term:
        return []
    if informative(clue(definition, (term, *aliases))):
        return []
    line, col = _pos(pos, "definition")
    return [(line, col, "uninformative-definition",
             f"the definition of {quote(term)} says nothing but its name; it gets no describe probe and teaches "
             "nothing about the concept: say what it is")]


def _config_facts(config: dict) -> dict:
    """What the checks read from pwd.yaml: declared and functional predicates, holdout ids.
    A malformed `predicates:` or `build:` (already reported by the schema) counts as absent."""
    usable = walk.usable_predicates(config)
    return {"declared": sorted(usable), "functional": sorted(k for k, v in usable.items() if v.get("functional")),
            "holdout": walk.holdout(config)}


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
        "name_pos",
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
        self.name_pos: tuple = ()  # (line, col) of the term, then of each alias
        self.split, self.steps = "", ()  # steps: (sid, line, col)
        self.items = ()  # (answer, n, line, col, same, (line, col) of answer:, (line, col) of choices:)
        self.examples = ()  # (concepts, statements, chain, line, col)
        self.config: dict | None = None

    def contribution(self) -> tuple:
        """Everything other files' diagnostics can depend on (not the local diagnostics)."""
        if self.kind == "concept":
            return (self.path, self.kind, self.node, self.term, self.aliases, self.name_pos, self.rels)
        if self.kind == "chain":
            return (self.path, self.kind, self.node, self.split, self.steps)
        return (self.path, self.kind, self.node)

    def names(self) -> list[tuple[str, str, int, int]]:
        """A concept's names with their positions: ("term" or "alias", name, line, col)."""
        return [("alias" if i else "term", name, *self.name_pos[i]) for i, name in enumerate((self.term, *self.aliases))]

    def name_keys(self) -> dict[str, tuple[int, int]]:
        """Each normalised name of a concept and the (line, col) of the first name with it."""
        out: dict[str, tuple[int, int]] = {}
        for _, name, line, col in self.names():
            out.setdefault(norm_term(name), (line, col))
        return out


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
    declared, stem, (line, col) = facts["id"], walk.stem(path), facts["id_pos"]
    node_id = walk.node_id(path, declared)
    if node_id is None:
        return info
    if declared is not None and stem != node_id:
        info.diags.append((path, line, col, ERROR, "id-mismatch",
                           f"id {quote(node_id)} must equal the file stem {quote(stem)}; rename the file or the id", ""))
    info.node = (node_id, line, col)
    if kind == "concept":
        info.diags += [(path, line, col, WARNING, code, msg, "") for line, col, code, msg in facts.get("warnings", ())]
        info.term = facts["term"] if facts["term"] is not None else node_id
        info.aliases = tuple(facts["aliases"])
        info.name_pos = tuple(tuple(p) for p in facts["name_pos"])
        info.rels = tuple((i, explicit if explicit is not None else
                           statement_id(node_id, pred, obj if obj is not None else value), pred, obj, value, rl, rc)
                          for i, explicit, pred, obj, value, rl, rc in facts["rels"])
    else:
        info.split = facts["split"]
        info.steps = tuple(tuple(s) for s in facts["steps"])
        info.items = tuple(tuple(i) for i in facts["items"])
    return info

"""Semantic diff of two KB revisions: nodes added/removed/changed, field-level unified
diffs, pwd.yaml settings changed, patch examples added or removed, per-concept
training-record deltas and benchmark items added or removed."""

from __future__ import annotations

import difflib
import json
from collections import Counter
from dataclasses import dataclass, field

from pwd_git.build.generate import generate
from pwd_git.errors import DataError
from pwd_git.kb.loader import Domain, load_revision, load_worktree
from pwd_git.kb.model import KB, PatchExample


@dataclass
class NodeChange:
    kind: str  # concept | statement | chain
    id: str
    change: str  # added | removed | changed
    location: str
    diff: str = ""  # unified diff of the node's fields, for changes


@dataclass
class SettingChange:
    key: str  # dotted pwd.yaml path, e.g. "train.epochs"
    change: str  # added | removed | changed
    old: object = None
    new: object = None

    def __str__(self) -> str:
        """`key: old -> new`, a value as JSON, an absent one as (unset)."""
        return f"{self.key}: {_show(self.old)} -> {_show(self.new)}"


def _show(value: object) -> str:
    return "(unset)" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


@dataclass
class KBDiff:
    old: str
    new: str
    nodes: list[NodeChange] = field(default_factory=list)
    settings: list[SettingChange] = field(default_factory=list)
    patches_added: list[dict] = field(default_factory=list)  # {location, kind, concepts}
    patches_removed: list[dict] = field(default_factory=list)
    train_deltas: dict[str, int] = field(default_factory=dict)  # concept -> records new - old
    bench_added: list[dict] = field(default_factory=list)
    bench_removed: list[dict] = field(default_factory=list)
    data_skipped: str | None = None  # why training/benchmark deltas could not be computed

    @property
    def empty(self) -> bool:
        return not (self.nodes or self.settings or self.patches_added or self.patches_removed
                    or self.train_deltas or self.bench_added or self.bench_removed)

    def as_dict(self) -> dict:
        return {"old": self.old, "new": self.new,
                "nodes": [vars(n) for n in self.nodes], "settings": [vars(c) for c in self.settings],
                "patches_added": self.patches_added, "patches_removed": self.patches_removed,
                "train_deltas": self.train_deltas,
                "bench_added": [_brief(i) for i in self.bench_added],
                "bench_removed": [_brief(i) for i in self.bench_removed], "data_skipped": self.data_skipped}


def _brief(item: dict) -> dict:
    return {"id": item["id"], "level": item["level"], "template": item["template"], "question": item["question"],
            "source": item["source"]}


def _field(prefix: str, value: object) -> list[str]:
    """`prefix` + value as diff lines: a value with line breaks (a definition written as a YAML
    block) is a `|` block, one diff line per line of text, as it reads in the file."""
    text = str(value)
    if "\n" not in text:
        return [f"{prefix} {text}"]
    indent = " " * (len(prefix) - len(prefix.lstrip()) + 2)
    return [f"{prefix} |", *(f"{indent}{line}" for line in text.split("\n"))]


def _item_lines(chain) -> list[str]:
    """A chain's hand-written items as diff lines."""
    return [line for i in chain.items
            for line in _field("item:", f"{i.question} {json.dumps(i.choices, ensure_ascii=False)} {i.answer}")]


def _render(node: object, fields: tuple[str, ...]) -> list[str]:
    lines = []
    for name in fields:
        value = getattr(node, name)
        if isinstance(value, list) and value:
            lines.append(f"{name}:")
            for v in value:
                lines += _field("  -", v)
        elif isinstance(value, dict) and value:  # `source: {doc, quote}`, as the file writes it
            lines.append(f"{name}:")
            for key, v in value.items():
                lines += _field(f"  {key}:", v)
        elif value not in (None, "", {}, []):
            lines += _field(f"{name}:", value)
    return lines


_FIELDS = {
    "concept": ("term", "type", "aliases", "definition", "source", "statements"),
    "statement": ("subject", "predicate", "object", "value", "text", "source"),
    "chain": ("title", "split", "steps", "preconditions", "negative_constraints"),
}


def _compare(kind: str, old: dict, new: dict, old_name: str, new_name: str) -> list[NodeChange]:
    out = []
    for node_id in sorted(old.keys() | new.keys()):
        a, b = old.get(node_id), new.get(node_id)
        if a is None:
            out.append(NodeChange(kind, node_id, "added", str(b.loc)))
        elif b is None:
            out.append(NodeChange(kind, node_id, "removed", str(a.loc)))
        else:
            before, after = _render(a, _FIELDS[kind]), _render(b, _FIELDS[kind])
            if kind == "chain":
                before, after = before + _item_lines(a), after + _item_lines(b)
            if before != after:
                diff = "\n".join(difflib.unified_diff(before, after, f"{old_name}:{a.loc.path}", f"{new_name}:{b.loc.path}",
                                                      lineterm=""))
                out.append(NodeChange(kind, node_id, "changed", str(b.loc), diff))
    return out


def _flat(config: dict, prefix: str = "") -> dict[str, object]:
    """pwd.yaml as dotted keys to leaf values (a list is one value, as the file sets it; an
    empty mapping, `train: {}`, sets nothing)."""
    out: dict[str, object] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _settings(old: dict, new: dict) -> list[SettingChange]:
    a, b = _flat(old), _flat(new)
    out = []
    for key in sorted(a.keys() | b.keys()):
        if key not in a:
            out.append(SettingChange(key, "added", new=b[key]))
        elif key not in b:
            out.append(SettingChange(key, "removed", old=a[key]))
        elif a[key] != b[key]:
            out.append(SettingChange(key, "changed", a[key], b[key]))
    return out


def _patch_key(ex: PatchExample) -> str:
    """What a patch example trains on, wherever its file is: moving a patch file changes nothing."""
    return json.dumps([ex.kind, ex.concepts, ex.statements, ex.chain, ex.messages], sort_keys=True, ensure_ascii=False)


def _patches(old: KB, new: KB) -> tuple[list[dict], list[dict]]:
    """Patch examples only `new` has and only `old` has (as multisets: a repeated example counts)."""
    left = Counter(_patch_key(ex) for ex in old.patches)
    right = Counter(_patch_key(ex) for ex in new.patches)
    added, removed = right - left, left - right
    out: tuple[list[dict], list[dict]] = ([], [])
    for side, kb, extra in ((0, new, added), (1, old, removed)):
        for ex in kb.patches:
            key = _patch_key(ex)
            if extra[key] > 0:
                extra[key] -= 1
                out[side].append({"location": str(ex.loc), "kind": ex.kind, "concepts": list(ex.concepts)})
    return out


def diff_kbs(old: KB, new: KB, old_name: str, new_name: str, *, invalid: str | None = None) -> KBDiff:
    """`invalid` names a side that does not validate: its nodes are diffed, but no training
    records or benchmark items can be generated from it."""
    result = KBDiff(old_name, new_name)
    result.nodes = (_compare("concept", old.concepts, new.concepts, old_name, new_name)
                    + _compare("statement", old.statements, new.statements, old_name, new_name)
                    + _compare("chain", old.chains, new.chains, old_name, new_name))
    result.settings = _settings(old.config, new.config)
    result.patches_added, result.patches_removed = _patches(old, new)
    if invalid:
        result.data_skipped = f"the KB at {invalid} does not validate; run `git pwd validate`"
        return result
    try:
        seed_old = int((old.config.get("build") or {}).get("seed", 0))
        seed_new = int((new.config.get("build") or {}).get("seed", 0))
        out_old, out_new = generate(old, seed_old), generate(new, seed_new)
    except DataError as exc:  # e.g. a test chain without valid distractors
        result.data_skipped = f"the KB does not build: {exc.message}"
        return result
    counts = []
    for out in (out_old, out_new):
        c: Counter[str] = Counter()
        for records in out.train.values():
            for rec in records:
                c.update(rec["traces"]["concepts"])
        counts.append(c)
    result.train_deltas = {cid: counts[1][cid] - counts[0][cid] for cid in sorted(counts[0].keys() | counts[1].keys())
                           if counts[1][cid] != counts[0][cid]}
    bench_old = {i["id"]: i for items in out_old.bench.values() for i in items}
    bench_new = {i["id"]: i for items in out_new.bench.values() for i in items}
    result.bench_added = [bench_new[k] for k in sorted(bench_new.keys() - bench_old.keys())]
    result.bench_removed = [bench_old[k] for k in sorted(bench_old.keys() - bench_new.keys())]
    return result


def diff_revisions(domain: Domain, old_rev: str, new_rev: str | None) -> KBDiff:
    """Diff `old_rev` against `new_rev`, or against the working tree when `new_rev` is None.
    Invalid KBs are diffed as far as they load (a diff is how you find what broke)."""
    old, old_diags = load_revision(domain, old_rev)
    new, new_diags = load_revision(domain, new_rev) if new_rev else load_worktree(domain)
    new_name = new_rev or "worktree"
    bad = [name for name, diags in ((old_rev, old_diags), (new_name, new_diags))
           if any(d.severity == "error" for d in diags)]
    return diff_kbs(old, new, old_rev, new_name, invalid=" and ".join(bad) or None)

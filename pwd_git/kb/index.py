"""The cross-file index of a KB, kept up to date file by file.

Every file contributes entries to a few key -> tuple tables; liveness is decided the way
assemble.py decides it (the first claimant of an id in path order owns it, the first claim
of a statement id wins). `Index.apply` takes a batch of changed files (old and new
`FileInfo`), updates the tables, and returns the set of paths whose diagnostics may have
changed; checks.py then recomputes exactly those files. A cold run is the same call with
every file new, so incremental and cold runs share one code path.

Tables (values are sorted tuples, so they marshal and compare cheaply):

  nodes   id  -> ((path, kind, line, col), ...)          every concept/chain claiming the id
  stmts   sid -> ((path, i, subject, predicate, object, value, line, col), ...)  claims by live concepts
  robj    concept id -> (sid, ...)                        live statements with that object
  rsubj   concept id -> (sid, ...)                        live statements with that subject
  rstep   sid -> ((chain id, is_test), ...)               live chains with that step
  rtrace  id  -> (patch path, ...)                        patch files tracing the id
  rterm   normalised term -> ((path, concept id, line, col), ...)   live concepts with that name

A table reads through to a backend (the SQLite store) on a miss and remembers what it wrote,
so a one-file change touches a handful of rows.
"""

from __future__ import annotations

from collections.abc import Callable

from pwd_git.kb.facts import FileInfo

HINT_LIMIT = 20000  # checks._closest only suggests names in KBs smaller than this
TABLES = ("files", "facts", "nodes", "stmts", "robj", "rsubj", "rstep", "rtrace", "rterm")
COUNTS = ("files", "concepts", "statements", "chains", "test_chains", "patch_examples")


class NeedFull(Exception):
    """The change affects every file (pwd.yaml, the first or last test chain): recompute all."""


class Table:
    """key -> value, read through `load` on a miss; `put` of an empty value deletes."""

    def __init__(self, name: str, load: Callable | None = None, scan: Callable | None = None):
        self.name, self._load, self._scan = name, load, scan
        self.cache: dict = {}
        self.dirty: set = set()
        self._scanned = load is None

    def get(self, key, default=()):
        try:
            value = self.cache[key]
        except KeyError:
            value = self.cache[key] = self._load(self.name, key) if self._load else None
        return default if value is None else value

    def put(self, key, value) -> None:
        self.cache[key] = value if value else None
        self.dirty.add(key)

    def items(self) -> list[tuple]:
        if not self._scanned:
            for key, value in self._scan(self.name):
                self.cache.setdefault(key, value)
            self._scanned = True
        return [(k, v) for k, v in self.cache.items() if v is not None]


def _traced(info: FileInfo) -> set[str]:
    """Every id a patch file's examples trace."""
    return {ref for concepts, statements, chain, _, _ in info.examples
            for ref in (*concepts, *statements, *((chain,) if chain else ()))}


def _insert(entries: tuple, entry) -> tuple:
    return tuple(sorted((*entries, entry)))


def _remove(entries: tuple, entry) -> tuple:
    return tuple(e for e in entries if e != entry)


class Index:
    """The tables plus counts, config facts and the files whose diagnostics carry name hints."""

    def __init__(self, load: Callable | None = None, scan: Callable | None = None, meta: dict | None = None,
                 info_of: Callable | None = None):
        for name in TABLES:
            setattr(self, name, Table(name, load, scan))
        meta = meta or {}
        self.counts: dict[str, int] = dict(meta.get("counts") or dict.fromkeys(COUNTS, 0))
        self.config: dict | None = meta.get("config")  # facts of pwd.yaml, None when missing or unusable
        self.has_config: bool = meta.get("has_config", False)
        self.hinted: dict[str, set] = {code: set(meta.get("hinted", {}).get(code, ())) for code in
                                       ("missing-object", "missing-step")}
        self._info_of = info_of  # path -> FileInfo | None for files not in the current batch
        self.infos: dict[str, FileInfo | None] = {}
        self._memo: dict = {}

    def meta(self) -> dict:
        return {"counts": self.counts, "config": self.config, "has_config": self.has_config,
                "hinted": {code: sorted(paths) for code, paths in self.hinted.items()}}

    # -- lookups used by the checks --------------------------------------------------------

    def info(self, path: str) -> FileInfo | None:
        try:
            return self.infos[path]
        except KeyError:
            info = self.infos[path] = self._info_of(path) if self._info_of else None
            return info

    def owner(self, node_id: str) -> tuple | None:
        claims = self.nodes.get(node_id)
        return claims[0] if claims else None

    def is_concept(self, node_id: str) -> bool:
        first = self.owner(node_id)
        return first is not None and first[1] == "concept"

    def is_chain(self, node_id: str) -> bool:
        first = self.owner(node_id)
        return first is not None and first[1] == "chain"

    def statement(self, sid: str) -> tuple | None:
        claims = self.stmts.get(sid)
        return claims[0] if claims else None

    def probed(self, concept_id: str) -> bool:
        """Whether the benchmark probes the concept: a statement touching it is on a test chain."""
        key = ("probed", concept_id)
        if key not in self._memo:
            self._memo[key] = any(test for sid in (*self.rsubj.get(concept_id), *self.robj.get(concept_id))
                                  for _, test in self.rstep.get(sid))
        return self._memo[key]

    def concept_ids(self) -> list[str]:
        if "concepts" not in self._memo:
            self._memo["concepts"] = [k for k, claims in self.nodes.items() if claims[0][1] == "concept"]
        return self._memo["concepts"]

    def statement_ids(self) -> list[str]:
        if "statements" not in self._memo:
            self._memo["statements"] = [k for k, _ in self.stmts.items()]
        return self._memo["statements"]

    # -- updates ---------------------------------------------------------------------------

    def build(self, infos: dict[str, FileInfo]) -> set[str]:
        """Fill an empty index with every file at once (a cold run); return the paths to check."""
        self._memo.clear()
        self.infos.update(infos)
        config = infos.get("pwd.yaml")
        self.has_config, self.config = config is not None, config.config if config is not None else None
        counts = self.counts
        counts["files"] = len(infos)
        grouped: dict[str, dict] = {name: {} for name in TABLES}
        nodes, stmts = grouped["nodes"], grouped["stmts"]
        for path in sorted(infos):
            info = infos[path]
            if info.node is not None:
                nodes.setdefault(info.node[0], []).append((path, info.kind, info.node[1], info.node[2]))
            elif info.kind == "patch":
                counts["patch_examples"] += len(info.examples)
                for ref in _traced(info):
                    grouped["rtrace"].setdefault(ref, []).append(path)
        for nid, claims in nodes.items():
            info = infos[claims[0][0]]
            if info.kind == "concept":
                counts["concepts"] += 1
                for i, sid, pred, obj, value, rl, rc in info.rels:
                    stmts.setdefault(sid, []).append((info.path, i, nid, pred, obj, value, rl, rc))
                for key, (line, col) in info.name_keys().items():
                    grouped["rterm"].setdefault(key, []).append((info.path, nid, line, col))
            else:
                test = info.split == "test"
                counts["chains"] += 1
                counts["test_chains"] += test
                for sid in {s for s, _, _ in info.steps}:
                    grouped["rstep"].setdefault(sid, []).append((nid, test))
        for sid, claims in stmts.items():
            claims.sort()
            live = claims[0]
            counts["statements"] += 1
            grouped["rsubj"].setdefault(live[2], []).append(sid)
            if live[4] is not None:
                grouped["robj"].setdefault(live[4], []).append(sid)
        for name, entries in grouped.items():
            table = getattr(self, name)
            for key, values in entries.items():
                table.put(key, tuple(sorted(values)))
        return set(infos) | {"pwd.yaml"}

    def apply(self, changes: dict[str, tuple[FileInfo | None, FileInfo | None]]) -> set[str]:
        """Apply {path: (old info, new info)} (None: absent); return the paths to re-check.
        Raises NeedFull when the change reaches every file."""
        self._memo.clear()
        if "pwd.yaml" in changes:
            raise NeedFull("pwd.yaml changed")
        dirty = set(changes)
        olds = {path: old for path, (old, _) in changes.items()}
        for path, (old, new) in changes.items():
            self.infos[path] = new
            self.counts["files"] += (new is not None) - (old is not None)
        tests_before = self.counts["test_chains"]
        concepts_before, statements_before = self.counts["concepts"], self.counts["statements"]

        # 1. Node claims: every concept or chain file claiming an id, in path order.
        nodes_before: dict[str, tuple] = {}
        new_claims: dict[str, list] = {}
        for path, (old, new) in changes.items():
            for info in (old, new):
                if info is not None and info.node is not None:
                    nid = info.node[0]
                    if nid not in nodes_before:
                        nodes_before[nid] = self.nodes.get(nid)
            if new is not None and new.node is not None:
                new_claims.setdefault(new.node[0], []).append((path, new.kind, new.node[1], new.node[2]))
        for nid, before in nodes_before.items():
            kept = [c for c in before if c[0] not in changes]
            self.nodes.put(nid, tuple(sorted(kept + new_claims.get(nid, []))))

        # 2. Owners that changed retract their contributions and the new owners add theirs.
        stmts_before: dict[str, tuple] = {}
        steps_before: dict[str, tuple] = {}
        terms_before: dict[str, tuple] = {}
        existence: set[str] = set()  # ids that became or stopped being a live concept or chain
        concept_flips: set[str] = set()
        for nid, before in nodes_before.items():
            after = self.nodes.get(nid)
            b0, a0 = (before[0] if before else None), (after[0] if after else None)
            if b0 != a0:  # duplicate-id messages name the owner: every claimant re-checks
                dirty.update(c[0] for c in before)
                dirty.update(c[0] for c in after)
            old_live = (olds[b0[0]] if b0[0] in olds else self.info(b0[0])) if b0 else None
            new_live = self.info(a0[0]) if a0 else None
            if (old_live.contribution() if old_live else None) == (new_live.contribution() if new_live else None):
                continue
            if old_live is not None:
                self._contribute(old_live, -1, stmts_before, steps_before, terms_before)
            if new_live is not None:
                self._contribute(new_live, +1, stmts_before, steps_before, terms_before)
            if (b0 and b0[1]) != (a0 and a0[1]):
                existence.add(nid)
                if (b0 is not None and b0[1] == "concept") != (a0 is not None and a0[1] == "concept"):
                    concept_flips.add(nid)
            dirty.update(self.rtrace.get(nid))
        if bool(self.counts["test_chains"]) != bool(tests_before):
            raise NeedFull("the first test chain appeared or the last one went: untested-statement lints flip")

        # 3. Statements: the first claim of each touched id is the live statement.
        changed_stmts: dict[str, tuple] = {}
        for sid, before in stmts_before.items():
            after = self.stmts.get(sid)
            b0, a0 = (before[0] if before else None), (after[0] if after else None)
            if b0 != a0:  # duplicate-statement messages name the first claim
                dirty.update(c[0] for c in before)
                dirty.update(c[0] for c in after)
                changed_stmts[sid] = (b0, a0)
                for st, sign in ((b0, -1), (a0, +1)):
                    if st is None:
                        continue
                    self.counts["statements"] += sign
                    change = _insert if sign > 0 else _remove
                    self.rsubj.put(st[2], change(self.rsubj.get(st[2]), sid))
                    if st[4] is not None:
                        self.robj.put(st[4], change(self.robj.get(st[4]), sid))
            else:
                dirty.update(c[0] for c in set(before) ^ set(after))

        # 4. Patches: which patch files trace which ids.
        for path, (old, new) in changes.items():
            for info, sign in ((old, -1), (new, +1)):
                if info is None or info.kind != "patch":
                    continue
                self.counts["patch_examples"] += sign * len(info.examples)
                change = _insert if sign > 0 else _remove
                for ref in _traced(info):
                    self.rtrace.put(ref, change(self.rtrace.get(ref), path))

        # 5. What else the changes reach.
        probe: set[str] = set()  # concepts whose "probed" status may have changed
        orphan: set[str] = set()  # concepts whose "touched by a statement" status may have changed
        for sid, before in steps_before.items():
            after = self.rstep.get(sid)
            if before == after:
                continue
            current = self.statement(sid)
            old_st = changed_stmts[sid][0] if sid in changed_stmts else current
            tested = any(test for _, test in set(before) ^ set(after))
            for st in {old_st, current} - {None}:
                dirty.add(st[0])
                if tested:
                    probe.update(c for c in (st[2], st[4]) if c)
        for sid, (b0, a0) in changed_stmts.items():
            steps = set(steps_before.get(sid, ())) | set(self.rstep.get(sid))
            for chid, _ in steps:
                first = self.owner(chid)
                if first is not None:
                    dirty.add(first[0])
            tested = any(test for _, test in steps)
            for st in (b0, a0):
                if st is not None:
                    dirty.add(st[0])
                    orphan.update(c for c in (st[2], st[4]) if c)
                    if tested:
                        probe.update(c for c in (st[2], st[4]) if c)
            dirty.update(self.rtrace.get(sid))
        for nid in existence:
            dirty.update(self.rtrace.get(nid))
            for sid in self.robj.get(nid):  # missing-object appears or disappears
                dirty.add(self.statement(sid)[0])
        for key, before in terms_before.items():
            after = self.rterm.get(key)
            if before[:1] != after[:1]:
                dirty.update(e[0] for e in (*before, *after))
        for cid in probe:
            for sid in self.robj.get(cid):
                dirty.add(self.statement(sid)[0])
        for cid in probe | orphan:
            first = self.owner(cid)
            if first is not None:
                dirty.add(first[0])
        if existence or changed_stmts:
            dirty.add("pwd.yaml")  # build.holdout names concepts and statements
        # Name hints ("did you mean ...?") look at every concept or statement id in small KBs.
        if concept_flips and min(self.counts["concepts"], concepts_before) < HINT_LIMIT:
            dirty.update(self.hinted["missing-object"])
        if any((b0 is None) != (a0 is None) for b0, a0 in changed_stmts.values()) \
                and min(self.counts["statements"], statements_before) < HINT_LIMIT:
            dirty.update(self.hinted["missing-step"])
        return dirty

    def _contribute(self, info: FileInfo, sign: int, stmts_before: dict, steps_before: dict,
                    terms_before: dict) -> None:
        """Add (sign=+1) or retract (-1) what a live concept or chain puts in the tables."""
        change = _insert if sign > 0 else _remove
        nid = info.node[0]
        if info.kind == "concept":
            self.counts["concepts"] += sign
            for i, sid, pred, obj, value, rl, rc in info.rels:
                if sid not in stmts_before:
                    stmts_before[sid] = self.stmts.get(sid)
                self.stmts.put(sid, change(self.stmts.get(sid), (info.path, i, nid, pred, obj, value, rl, rc)))
            for key, (line, col) in info.name_keys().items():
                if key not in terms_before:
                    terms_before[key] = self.rterm.get(key)
                self.rterm.put(key, change(self.rterm.get(key), (info.path, nid, line, col)))
        elif info.kind == "chain":
            test = info.split == "test"
            self.counts["chains"] += sign
            self.counts["test_chains"] += sign * test
            for sid in {s for s, _, _ in info.steps}:
                if sid not in steps_before:
                    steps_before[sid] = self.rstep.get(sid)
                self.rstep.put(sid, change(self.rstep.get(sid), (nid, test)))


class Checked:
    """The result of checking a whole KB: the index and every file's diagnostics."""

    def __init__(self, index: Index, per_file: dict[str, list[tuple]]):
        self.index, self.per_file = index, per_file

    @property
    def diagnostics(self) -> list[tuple]:
        return sorted(d for diags in self.per_file.values() for d in diags)


def recheck(ix: Index, paths) -> dict[str, list[tuple]]:
    """Each path's diagnostics, noting which files carry name hints that other files affect."""
    from pwd_git.kb.checks import file_diagnostics

    out = {}
    for path in sorted(paths):
        diags = out[path] = file_diagnostics(ix, path)
        for code, hinted in ix.hinted.items():
            (hinted.add if any(d[4] == code for d in diags) else hinted.discard)(path)
    return out


def check_infos(infos: dict[str, FileInfo]) -> Checked:
    ix = Index()
    return Checked(ix, recheck(ix, ix.build(infos)))


def check_records(records: dict[str, tuple[str, dict]]) -> Checked:
    """Check {path: (oid, parse record)}, as assemble and `validate --rev` do."""
    from pwd_git.kb.facts import extract, resolve
    from pwd_git.kb.parse import classify

    infos = {}
    for path, (_, record) in records.items():
        kind = classify(path)
        infos[path] = resolve(path, kind, extract(kind, record))
    return check_infos(infos)

"""`validate` as a library call: every diagnostic of the KB, optionally narrowed to some paths.

A working-tree run is incremental. The first run parses every file (through the parse
cache shared with `build`), checks the whole KB and stores the per-file facts, the index and
each file's diagnostics in `.git/pwd/cache/` (store.py). A later run:

1. walks the KB folders with `scandir` + `stat` (stamps.py) and compares each folder's
   (name, mtime, size, inode) list with the stored one; when all match, it prints the
   stored result: nothing is read, hashed or parsed (a *warm* run);
2. otherwise hashes the files whose stamps changed, parses the few whose content is new,
   updates the index and re-checks only the files the change can reach (index.py), so a
   one-file change costs about as much as a warm run (an *incremental* run);
3. falls back to checking everything (a *full* run, still without re-parsing) when the change
   reaches every file: pwd.yaml changed, the first test chain appeared or the last one went,
   or a large share of the files changed.

A missing, outdated or corrupt cache means a *cold* run, never an error.
"""

from __future__ import annotations

import os
import sys
import time
from array import array
from pathlib import Path

from pwd_git.errors import PwdError
from pwd_git.kb.diagnostics import ERROR, WARNING, Diagnostic
from pwd_git.kb.loader import CONFIG_FILE, KB_DIRS, RACY_NS, Domain
from pwd_git.kb.stamps import Scan, file_stamps, from_row, join_path, scan, to_row

_KINDS = {"concepts": "concept", "chains": "chain", "patches": "patch"}


class ValidationReport:
    """Diagnostics plus the KB's size; `kb` (the full KB objects) is loaded only if asked for."""

    def __init__(self, diagnostics: list[Diagnostic], summary: dict[str, int], files: int, mode: str,
                 load_kb=None):
        self.diagnostics, self.summary, self.files, self.mode = diagnostics, summary, files, mode
        self._load_kb, self._kb = load_kb, None

    @property
    def kb(self):
        if self._kb is None:
            self._kb = self._load_kb()
        return self._kb

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors


def validate(domain: Domain, *, rev: str | None = None, paths: list[str] | None = None,
             use_cache: bool = True, untracked: bool = True) -> ValidationReport:
    """Validate the whole KB (references need it all); keep only diagnostics in `paths`.
    `untracked=False` leaves out files git does not track (what a commit would not contain)."""
    wanted = [_kb_relative(domain, p) for p in paths or ()]
    missing = [(path, rel) for path, rel in zip(paths or (), wanted, strict=True) if not os.path.exists(path)]
    if missing and not rev:
        _no_such_path(missing[0][0], "in the working tree")
    if rev:
        report = _validate_records(domain, rev, use_cache)
        for path, rel in missing:  # a path deleted since `rev` is fine
            if not any(f == rel or f.startswith(rel + "/") for f in report.kb.files):
                _no_such_path(path, f"in the working tree or in {rev}")
    elif not use_cache:
        report = _validate_records(domain, None, use_cache, tracked=None if untracked else _tracked(domain))
    else:
        report = _validate_worktree(domain, None if untracked else _tracked(domain))
    if wanted:
        report.diagnostics = [d for d in report.diagnostics
                              if any(w in ("", d.path) or d.path.startswith(w + "/") for w in wanted)]
    return report


def _kb_relative(domain: Domain, path: str) -> str:
    full = Path(path).resolve()
    try:
        rel = full.relative_to(domain.root).as_posix()
    except ValueError:
        raise PwdError(f"{path} is outside the domain at {domain.root}") from None
    return "" if rel == "." else rel


def _no_such_path(path: str, where: str) -> None:
    """A PATH that names nothing is a usage error, not a silent pass (a typo would hide every error)."""
    raise PwdError(f"{path}: no such file or folder {where}",
                   hint="PATHS narrow the report to files or folders of the KB, e.g. `concepts/` or `chains/x.yaml`")


def _tracked(domain: Domain) -> set[str]:
    """KB-relative paths of the files in git's index (the next commit)."""
    from pwd_git.git import run_git

    out = run_git(["ls-files", "-z", "--", CONFIG_FILE, *KB_DIRS], domain.root).stdout.decode()
    return {p for p in out.split("\0") if p}


def _report(diags: list[tuple], counts: dict, mode: str, load_kb) -> ValidationReport:
    summary = {k: counts[k] for k in ("concepts", "statements", "chains", "test_chains", "patch_examples")}
    return ValidationReport([Diagnostic(*d) for d in diags], summary, counts["files"], mode, load_kb)


def _validate_records(domain: Domain, rev: str | None, use_cache: bool, tracked: set[str] | None = None):
    """Check everything from parse records, in memory: `--rev` and `--no-cache`."""
    from pwd_git.kb.assemble import assemble
    from pwd_git.kb.index import check_records
    from pwd_git.kb.loader import revision_records, worktree_records
    from pwd_git.memory import gc_paused

    with gc_paused():
        if rev:
            records = revision_records(domain, rev)
        else:
            files = [(p, s) for p, s in file_stamps(scan(domain.root)) if tracked is None or p in tracked]
            records = worktree_records(domain, use_cache=use_cache, files=files)
        checked = check_records(records)
    return _report(checked.diagnostics, checked.index.counts, "rev" if rev else "no-cache",
                   lambda: assemble(records)[0])


# -- the working tree, incrementally ---------------------------------------------------------

def _cache_path(domain: Domain) -> Path:
    import hashlib

    name = "validate.sqlite" if not domain.prefix else \
        f"validate-{hashlib.sha1(domain.prefix.encode()).hexdigest()[:12]}.sqlite"
    return domain.repo.git_dir / "pwd" / "cache" / name


def _cache_key() -> tuple:
    from pwd_git import __version__
    from pwd_git.kb.parse import PARSER_VERSION
    from pwd_git.kb.store import CACHE_VERSION

    return (CACHE_VERSION, __version__, PARSER_VERSION, *sys.version_info[:2])


def _validate_worktree(domain: Domain, tracked: set[str] | None) -> ValidationReport:
    import sqlite3

    from pwd_git.kb import store as store_mod
    from pwd_git.memory import gc_paused

    racy_after = time.time_ns() - RACY_NS
    scanned = scan(domain.root, tracked)
    path = _cache_path(domain)
    with gc_paused():
        try:
            store = store_mod.Store.open(path, _cache_key())
        except sqlite3.OperationalError as exc:
            store = None
            if "locked" in str(exc):  # another run held it for 30 s: check without the state, keep theirs
                path = None
        except (store_mod.StoreError, sqlite3.Error, OSError, ValueError, EOFError, TypeError):
            store = None
        if store is not None:
            try:
                return _Run(domain, store, scanned, racy_after).incremental()
            except (sqlite3.Error, OSError, ValueError, EOFError, TypeError, KeyError, IndexError, AttributeError):
                if os.environ.get("PWD_GIT_DEBUG"):
                    raise
            finally:
                store.close()
        return _Run(domain, None, scanned, racy_after).cold(path)


class _Run:
    """One working-tree run against the stored state (`store`), or a cold one."""

    def __init__(self, domain: Domain, store, scanned: Scan, racy_after: int):
        self.domain, self.store, self.scanned, self.racy_after = domain, store, scanned, racy_after
        self.new_facts: dict[str, dict] = {}  # "kind:oid" -> facts parsed in this run
        self.oids: dict[str, str] = {}  # path -> blob OID of the files read in this run

    def _load_kb(self):
        from pwd_git.kb.loader import load_worktree

        return load_worktree(self.domain)[0]

    def _report(self, result: list[tuple], counts: dict, mode: str) -> ValidationReport:
        return _report(result, counts, mode, self._load_kb)

    # -- a run with a stored state ------------------------------------------------------------

    def incremental(self) -> ValidationReport:
        from pwd_git.git import hash_blob
        from pwd_git.kb.index import Index, NeedFull

        store = self.store
        stored = dict(store.scan("dirs"))
        rows: dict[str, tuple | None] = {}  # folders whose stored row must change
        candidates: list[str] = []  # files whose stamp changed: read and hash them
        deleted: list[str] = []
        for rel, (names, stamps) in self.scanned.items():
            row = stored.get(rel)
            if row is not None and row[0] == "/".join(names) and row[1] == array("q", stamps).tobytes():
                continue
            rows[rel] = to_row(names, stamps, self.racy_after)
            old = from_row(row)
            for i, name in enumerate(names):
                if old.pop(name, None) != tuple(stamps[3 * i:3 * i + 3]):
                    candidates.append(join_path(rel, name))
            deleted += [join_path(rel, name) for name in old]
        for rel in stored.keys() - self.scanned.keys():
            rows[rel] = None
            deleted += [join_path(rel, name) for name in from_row(stored[rel])]
        meta = dict(store.scan("meta"))
        if not rows:
            return self._report(meta["result"], meta["counts"], "warm")

        changes = {}
        for path in candidates:
            try:
                with open(os.path.join(self.domain.root, path), "rb") as fh:
                    raw = fh.read()
            except FileNotFoundError:  # deleted since the scan
                rel, _, name = path.rpartition("/")
                names, stamps = self.scanned[rel]
                i = names.index(name)
                self.scanned[rel] = names[:i] + names[i + 1:], stamps[:3 * i] + stamps[3 * i + 3:]
                rows[rel] = to_row(*self.scanned[rel], self.racy_after)
                deleted.append(path)
                continue
            oid = self.oids[path] = hash_blob(raw)
            row = store.load("files", path)
            if row is None or row[1] != oid:
                changes[path] = (self._stored_info(path), self._new_info(path, raw, oid))
        for path in deleted:
            if store.load("files", path) is not None:
                changes[path] = (self._stored_info(path), None)
        if not changes:  # only stamps moved (a checkout, a touch): remember them
            store.put("dirs", rows)
            store.commit()
            return self._report(meta["result"], meta["counts"], "warm")

        ix = Index(store.load, store.scan, meta, self._stored_info)
        try:
            if len(changes) > max(5000, ix.counts["files"] // 5):
                raise NeedFull("many files changed")
            dirty = ix.apply(changes)
        except NeedFull:
            return self.full(changes, rows)
        return self._save_incremental(ix, changes, dirty, rows, meta)

    def _new_info(self, path: str, raw: bytes, oid: str):
        from pwd_git.kb import parse
        from pwd_git.kb.facts import extract, resolve

        kind = _KINDS.get(path.split("/", 1)[0], "config")
        key = f"{kind}:{oid}"
        facts = self.new_facts.get(key) or self.store.load("facts", key)
        if facts is None:
            facts = self.new_facts[key] = extract(kind, parse.parse(kind, raw))
        return resolve(path, kind, facts)

    def _stored_info(self, path: str):
        from pwd_git.kb.facts import resolve

        row = self.store.load("files", path)
        if row is None:
            return None
        kind, oid, _ = row
        return resolve(path, kind, self.store.load("facts", f"{kind}:{oid}"))

    def _save_incremental(self, ix, changes: dict, dirty: set[str], rows: dict, meta: dict) -> ValidationReport:
        from pwd_git.kb.index import recheck

        store = self.store
        files: dict[str, tuple | None] = {}
        fresh: list[tuple] = []
        for path, diags in recheck(ix, dirty).items():
            fresh += diags
            info = ix.info(path)
            if info is None:
                if path in changes:
                    files[path] = None
                continue
            oid = self.oids[path] if path in changes else store.load("files", path)[1]
            files[path] = (info.kind, oid, diags)
        result = sorted([d for d in meta["result"] if d[0] not in dirty] + fresh)
        for name in ("nodes", "stmts", "robj", "rsubj", "rstep", "rtrace", "rterm"):
            table = getattr(ix, name)
            store.put(name, {k: table.cache[k] for k in table.dirty})
        store.put("files", files)
        store.put("facts", self.new_facts)
        store.put("dirs", rows)
        store.put("meta", {**ix.meta(), "result": result})
        store.commit()
        return self._report(result, ix.counts, "incremental")

    def full(self, changes: dict, rows: dict) -> ValidationReport:
        """Re-check everything from the stored facts (nothing is re-parsed) and rewrite the index."""
        from pwd_git.kb.facts import resolve

        store = self.store
        facts = dict(store.scan("facts"))
        facts.update(self.new_facts)
        infos, oids = {}, {}
        for path, (kind, oid, _) in store.scan("files"):
            if path not in changes:
                infos[path], oids[path] = resolve(path, kind, facts[f"{kind}:{oid}"]), oid
        for path, (_, new) in changes.items():
            if new is not None:
                infos[path], oids[path] = new, self.oids[path]
        store.put("dirs", rows)
        return self._save_all(infos, oids, facts, "full", replace=True)

    def _save_all(self, infos: dict, oids: dict, facts: dict, mode: str, *, replace: bool) -> ValidationReport:
        from pwd_git.kb.index import check_infos

        checked = check_infos(infos)
        ix, store = checked.index, self.store
        result = checked.diagnostics
        for name in ("nodes", "stmts", "robj", "rsubj", "rstep", "rtrace", "rterm"):
            if replace:
                store.clear(name)
            store.put(name, {k: v for k, v in getattr(ix, name).cache.items() if v is not None})
        if replace:
            store.clear("files")
        store.put("files", {path: (info.kind, oids[path], checked.per_file[path]) for path, info in infos.items()})
        wanted = {f"{info.kind}:{oids[path]}" for path, info in infos.items()}
        if replace and store.count("facts") + len(self.new_facts) > 2 * len(wanted) + 1000:
            store.clear("facts")  # forget the facts of contents that no file has any more
            store.put("facts", {k: facts[k] for k in wanted})
        else:
            store.put("facts", self.new_facts)
        store.put("meta", {**ix.meta(), "result": result})
        store.commit()
        return self._report(result, ix.counts, mode)

    # -- a run without one ------------------------------------------------------------------

    def cold(self, path: Path | None) -> ValidationReport:
        """Parse (through the parse cache shared with `build`) and check every file, then store
        the state at `path` (None: do not)."""
        import sqlite3

        from pwd_git.kb import store as store_mod
        from pwd_git.kb.facts import extract, resolve
        from pwd_git.kb.loader import worktree_records
        from pwd_git.kb.parse import classify

        records = worktree_records(self.domain, files=file_stamps(self.scanned))
        infos, oids, facts = {}, {}, {}
        for rel, (oid, record) in records.items():
            kind = classify(rel)
            key = f"{kind}:{oid}"
            if key not in facts:
                facts[key] = extract(kind, record)
            infos[rel], oids[rel] = resolve(rel, kind, facts[key]), oid
        if path is not None:
            try:
                self.store = store_mod.Store.create(path, _cache_key())
                self.new_facts = facts
                self.store.put("dirs", {rel: to_row(names, stamps, self.racy_after)
                                        for rel, (names, stamps) in self.scanned.items()})
                return self._save_all(infos, oids, facts, "cold", replace=False)
            except (sqlite3.Error, OSError):  # a read-only or full disk: just do without
                if self.store is not None:
                    self.store.close()
                    self.store = None
                store_mod.remove(path)
            finally:
                if self.store is not None:
                    self.store.close()
        from pwd_git.kb.index import check_infos

        checked = check_infos(infos)
        return self._report(checked.diagnostics, checked.index.counts, "cold")

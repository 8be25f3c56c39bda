"""Load a KB from the working tree or from any git revision (object store, no checkout).

Parsing is cached by blob OID in `.git/pwd/cache/`, so a re-run after a one-file change
re-parses one file. Working-tree OIDs are themselves cached by (mtime, size, inode), the
way git's index avoids re-hashing unchanged files.
"""

from __future__ import annotations

import marshal
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pwd_git import __version__
from pwd_git.errors import PwdError
from pwd_git.git import Repo, hash_blob
from pwd_git.kb import parse as _parse
from pwd_git.kb.parse import PARSER_VERSION, classify, parse  # noqa: F401  (parse: kept for callers)
from pwd_git.memory import gc_paused

if TYPE_CHECKING:
    from pwd_git.kb.diagnostics import Diagnostic
    from pwd_git.kb.model import KB

KB_DIRS = ("concepts", "chains", "patches")
CONFIG_FILE = "pwd.yaml"
RACY_NS = 2_000_000_000  # a stamp this close to the time it was taken is not trusted next time


@dataclass(frozen=True)
class Domain:
    """Where a domain lives: the git repo and the KB root inside it (the folder with pwd.yaml)."""

    repo: Repo
    root: Path

    @property
    def prefix(self) -> str:
        """KB root relative to the repo top, '' when they are the same."""
        rel = self.root.relative_to(self.repo.top).as_posix()
        return "" if rel == "." else rel

    @classmethod
    def find(cls, start: str | Path = ".") -> Domain:
        """The nearest folder at or above `start` holding pwd.yaml, inside a git work tree."""
        repo = Repo.discover(start)
        here = Path(start).resolve()
        here = here if here.is_dir() else here.parent
        for folder in (here, *here.parents):
            if (folder / CONFIG_FILE).is_file():
                return cls(repo, folder)
            if folder == repo.top:
                break
        raise PwdError(
            f"no {CONFIG_FILE} found in {here} or above (up to {repo.top})",
            hint="run this inside a domain repo, or create one with `git pwd init`",
        )


class ParseCache:
    """{(oid, kind): record} plus a stat cache {path: (mtime_ns, size, ino, oid)}, in one file.

    Records are plain dicts, lists, tuples and scalars, so the file is written with `marshal`:
    several times faster than pickle both ways, and it cannot run code when read.
    """

    def __init__(self, path: Path):
        self.path = path
        self.records: dict[tuple[str, str], dict] = {}
        self.stats: dict[str, tuple[int, int, int, str]] = {}
        self.used: set[tuple[str, str]] = set()
        self.dirty = False
        key = (__version__, PARSER_VERSION, *sys.version_info[:2])  # marshal's format follows Python's
        try:
            with open(path, "rb") as fh:
                saved = marshal.loads(fh.read())
            if saved.get("key") == key:
                self.records, self.stats = saved["records"], saved["stats"]
        except (OSError, EOFError, KeyError, AttributeError, ValueError, TypeError):
            pass  # a missing or unreadable cache is an empty one
        self._key = key

    def record(self, oid: str, kind: str, read: callable) -> dict:
        k = (oid, kind)
        self.used.add(k)
        rec = self.records.get(k)
        if rec is None:
            rec = self.records[k] = _parse.parse(kind, read())
            self.dirty = True
        return rec

    def save(self) -> None:
        if not self.dirty:
            return
        if len(self.records) > 2 * len(self.used) + 1000:  # forget records no recent load used
            self.records = {k: v for k, v in self.records.items() if k in self.used}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            marshal.dump({"key": self._key, "records": self.records, "stats": self.stats}, fh)
        os.replace(tmp, self.path)


def _walk(root: Path) -> list[tuple[str, os.stat_result]]:
    """KB files under `root` with their stat, paths relative and '/'-separated."""
    found = []
    config = root / CONFIG_FILE
    if config.is_file():
        found.append((CONFIG_FILE, config.stat()))
    # Plain strings, not Path objects: this runs for every file on every (warm) run.
    stack = [(os.path.join(root, d), d) for d in KB_DIRS]
    while stack:
        folder, rel_folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            rel = f"{rel_folder}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, rel))
            elif entry.is_file() and classify(rel):
                found.append((rel, entry.stat()))
    return found


def load_worktree(domain: Domain, *, use_cache: bool = True) -> tuple[KB, list[Diagnostic]]:
    """The KB as it is on disk now, staged or not."""
    with gc_paused():
        return _load_worktree(domain, use_cache)


def _load_worktree(domain: Domain, use_cache: bool) -> tuple[KB, list[Diagnostic]]:
    from pwd_git.kb.assemble import assemble

    return assemble(worktree_records(domain, use_cache=use_cache))


def worktree_records(domain: Domain, *, use_cache: bool = True,
                     files: list[tuple[str, tuple[int, int, int]]] | None = None) -> dict[str, tuple[str, dict]]:
    """{path: (blob OID, parse record)} for the working tree, through the parse cache.
    `files`: [(path, (mtime_ns, size, inode))] when the caller has already walked the tree."""
    cache = ParseCache(domain.repo.pwd_dir() / "cache" / "kb.marshal") if use_cache else ParseCache(Path(os.devnull))
    records: dict[str, tuple[str, dict]] = {}
    fresh_stats = {}
    racy = time.time_ns() - RACY_NS
    if files is None:
        files = [(rel, (st.st_mtime_ns, st.st_size, st.st_ino)) for rel, st in _walk(domain.root)]
    for rel, stamp in files:
        known = cache.stats.get(rel)
        raw = None
        if known and known[:3] == stamp:
            oid = known[3]
        else:
            raw = (domain.root / rel).read_bytes()
            oid = hash_blob(raw)
        # A file changed within the filesystem's timestamp granularity of this read could change
        # again without its stamp changing (git's "racy clean" problem): such stamps never match.
        fresh_stats[rel] = (-1 if stamp[0] >= racy else stamp[0], *stamp[1:], oid)
        kind = classify(rel)
        records[rel] = (oid, cache.record(oid, kind, lambda r=raw, p=rel: r if r is not None else (domain.root / p).read_bytes()))
    if fresh_stats != cache.stats:
        cache.stats, cache.dirty = fresh_stats, True
    if use_cache:
        cache.save()
    return records


def load_revision(domain: Domain, rev: str) -> tuple[KB, list[Diagnostic]]:
    """The KB as committed at `rev`, read from the object store without a checkout."""
    with gc_paused():
        return _load_revision(domain, rev)


def _load_revision(domain: Domain, rev: str) -> tuple[KB, list[Diagnostic]]:
    from pwd_git.kb.assemble import assemble

    return assemble(revision_records(domain, rev))


def revision_records(domain: Domain, rev: str) -> dict[str, tuple[str, dict]]:
    """{path: (blob OID, parse record)} as committed at `rev`, through the parse cache."""
    commit = domain.repo.resolve(rev)
    tree = domain.repo.tree_oid(commit, domain.prefix)
    if tree is None:
        raise PwdError(f"revision {rev} has no {domain.prefix or 'KB'} folder")
    cache = ParseCache(domain.repo.pwd_dir() / "cache" / "kb.marshal")
    entries = [(e.path, e.oid) for e in domain.repo.ls_tree(tree) if classify(e.path)]
    missing = {oid for path, oid in entries if (oid, classify(path)) not in cache.records}
    blobs = dict(domain.repo.read_blobs(sorted(missing)))
    records = {path: (oid, cache.record(oid, classify(path), lambda o=oid: blobs[o])) for path, oid in entries}
    cache.save()
    return records


def kb_tree_at(domain: Domain, rev: str) -> str | None:
    """The KB tree OID (concepts/, chains/, patches/) of a commit, from ls-tree alone."""
    from pwd_git.git import tree_oid_of

    tree = domain.repo.tree_oid(rev, domain.prefix)
    if tree is None:
        return None
    files = {e.path: e.oid for e in domain.repo.ls_tree(tree) if classify(e.path) not in (None, "config")}
    return tree_oid_of(files)

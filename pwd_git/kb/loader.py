"""Load a KB from the working tree or from any git revision (object store, no checkout).

Parsing is cached by blob OID in `.git/pwd/cache/`, so a re-run after a one-file change
re-parses one file. Working-tree OIDs are themselves cached by (mtime, size, inode), the
way git's index avoids re-hashing unchanged files.
"""

from __future__ import annotations

import functools
import marshal
import os
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pwd_git import __version__
from pwd_git.errors import DataError, PwdError
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


# -- symlinks: refused when they leave the repository, the same way in the worktree and in commits --

def check_link(root: str | Path, rel: str) -> None:
    """A symlink at KB path `rel` (under the KB root `root`) in the working tree must lead, the
    way git resolves it in a commit, to a file inside the repository: a link out of it (absolute,
    `..` above the top, into .git) would feed that file to the shards from the worktree only, and
    a link to nothing or to a folder reads differently in a commit. DataError otherwise."""
    top = _top_of(str(root))
    prefix = Path(root).resolve().relative_to(top).as_posix()
    kind, detail = _resolve_worktree_link(top, rel if prefix == "." else f"{prefix}/{rel}")
    _link_verdict(rel, kind, detail)


@functools.lru_cache(maxsize=8)
def _top_of(root: str) -> Path:
    return Repo.discover(root).top


def _resolve_worktree_link(top: Path, path: str) -> tuple[str, str]:
    """Follow the symlinks on repo-relative `path` on disk as `Repo.follow_symlinks` does in a
    tree: relative hops only, never above the top; the same (kind, detail) vocabulary."""
    todo, done, hops = path.split("/")[::-1], [], 0
    while todo:
        name = todo.pop()
        if name in ("", "."):
            continue
        if name == "..":
            if not done:
                return "symlink", "/".join(["..", *todo[::-1]])
            done.pop()
            continue
        here = os.path.join(top, *done, name)
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            return "dangling", path
        except NotADirectoryError:
            return "notdir", path
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            target = os.readlink(here)
            if hops > 40:  # git's limit too
                return "loop", path
            if os.path.isabs(target):
                return "symlink", target
            todo.extend(target.split("/")[::-1])
            continue
        if not done and name == ".git":
            return "symlink", "/".join([name, *todo[::-1]])  # git's own files are no part of any commit
        done.append(name)
    return ("tree" if os.path.isdir(os.path.join(top, *done)) else "blob"), "/".join(done)


_LINK_PROBLEMS = {
    "symlink": "leads out of the repository (to {detail})",
    "dangling": "leads to nothing",
    "loop": "is a loop of symlinks",
    "notdir": "leads through a file as if it were a folder",
    "missing": "leads to nothing",
}


def _link_verdict(rel: str, kind: str, detail: str) -> None:
    """One rule for the worktree and commits: DataError unless the link at `rel` leads to a file
    inside the repository (which is then read in its place)."""
    if kind in _LINK_PROBLEMS:
        problem = _LINK_PROBLEMS[kind].format(detail=detail)
    elif rel in KB_DIRS:
        problem = "stands for a KB folder; a commit stores the link, not the files"
    elif kind == "tree" and classify(rel):
        problem = "leads to a folder, not a file"
    else:
        return
    raise DataError(f"symlink {problem}; KB files and folders must be real ones inside the repository", location=rel,
                    hint="put the file itself there instead of a link")


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
        from pwd_git.kb.stamps import file_stamps, scan  # stamps builds on this module's KB_DIRS and check_link

        files = file_stamps(scan(domain.root))
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
    entries = _committed_files(domain, commit, tree)
    missing = {oid for path, oid in entries if (oid, classify(path)) not in cache.records}
    blobs = dict(domain.repo.read_blobs(sorted(missing)))
    records = {path: (oid, cache.record(oid, classify(path), lambda o=oid: blobs[o])) for path, oid in entries}
    cache.save()
    return records


def _committed_files(domain: Domain, rev: str, tree: str) -> list[tuple[str, str]]:
    """[(path, blob OID)] of the KB files in `tree` (the KB root at `rev`); a symlink (mode 120000,
    its blob holds the target) is checked as in the worktree and stands for the file it leads to."""
    entries = domain.repo.ls_tree(tree)
    links = [e.path for e in entries if e.mode == "120000" and (e.path == CONFIG_FILE or e.path.split("/")[0] in KB_DIRS)]
    resolved: dict[str, str] = {}
    if links:
        prefix = f"{domain.prefix}/" if domain.prefix else ""
        # cat-file reads one name a line: a name with a newline in it cannot be asked about
        answers = domain.repo.follow_symlinks(rev, [prefix + path for path in links if "\n" not in path])
        for path in links:
            kind, detail = answers.get(prefix + path, ("missing", ""))
            _link_verdict(path, kind, detail)
            resolved[path] = detail
    return [(e.path, resolved.get(e.path, e.oid)) for e in entries if classify(e.path)]


def kb_trees(domain: Domain, commits: list[str]) -> dict[str, str | None]:
    """`kb_tree_at` of many commits at the cost of a few git processes: each distinct tree
    under concepts/, chains/ and patches/ is read once (consecutive commits share most of
    them) and reduced to its KB files. A commit with a symlink in those folders is left to
    `kb_tree_at`, which resolves it at that commit."""
    from pwd_git.git import objects, tree_oid_from

    prefix = f"{domain.prefix}/" if domain.prefix else ""
    roots = objects(domain.repo, [f"{c}:{domain.prefix}" if domain.prefix else f"{c}^{{tree}}" for c in commits])
    found = iter(objects(domain.repo, [f"{c}:{prefix}{d}" for c in commits for d in KB_DIRS]))
    tops = {c: {d: next(found) for d in KB_DIRS} for c in commits}
    reduced = _reduce_trees(domain, {obj[1] for top in tops.values() for obj in top.values() if obj and obj[0] == "tree"})
    out: dict[str, str | None] = {}
    for commit, root in zip(commits, roots, strict=True):
        parts = {d: reduced[obj[1]] if obj[0] == "tree" else _LINKED for d, obj in tops[commit].items() if obj}
        if root is None or root[0] != "tree":
            out[commit] = None
        elif any(part is _LINKED for part in parts.values()):
            out[commit] = kb_tree_at(domain, commit)  # a symlink, or a file where a KB folder would be
        else:
            out[commit] = tree_oid_from({d: (oid, True) for d, oid in parts.items() if oid})
    return out


_LINKED = "symlink"  # a reduced tree that holds a symlink: its KB files depend on the commit


def _reduce_trees(domain: Domain, tops: set[str]) -> dict[str, str | None]:
    """{tree OID: OID of the tree of its KB files (*.yaml, *.yml, mode 100644), None when it has
    none, _LINKED when it holds a symlink} for `tops` and every tree below them, reading each
    tree object once, a level of the hierarchy per `cat-file --batch`."""
    from pwd_git.git import tree_entries, tree_oid_from

    listing: dict[str, list[tuple[str, str, str]]] = {}
    level = set(tops)
    while level:
        for oid, raw in domain.repo.read_blobs(sorted(level)):
            listing[oid] = list(tree_entries(raw))
        level = {child for oid in level for mode, _, child in listing[oid] if mode == "40000" and child not in listing}
    reduced: dict[str, str | None] = {}

    def reduce(oid: str) -> str | None:
        if oid not in reduced:
            kept: dict[str, tuple[str, bool]] = {}
            linked = False
            for mode, name, child in listing[oid]:
                if mode == "40000":
                    sub = reduce(child)
                    linked |= sub is _LINKED
                    if sub and sub is not _LINKED:
                        kept[name] = (sub, True)
                elif mode == "120000":
                    linked = True
                elif mode.startswith("100") and name.endswith((".yaml", ".yml")):
                    kept[name] = (child, False)
            reduced[oid] = _LINKED if linked else (tree_oid_from(kept) if kept else None)
        return reduced[oid]

    for oid in tops:
        reduce(oid)
    return reduced


def kb_tree_at(domain: Domain, rev: str) -> str | None:
    """The KB tree OID (concepts/, chains/, patches/) of a commit, from ls-tree (and cat-file for
    symlinks) without reading a file; None: no KB there, or a symlink the KB refuses."""
    from pwd_git.git import tree_oid_of

    tree = domain.repo.tree_oid(rev, domain.prefix)
    if tree is None:
        return None
    try:
        files = dict(_committed_files(domain, rev, tree))
    except DataError:
        return None
    return tree_oid_of({path: oid for path, oid in files.items() if classify(path) != "config"})

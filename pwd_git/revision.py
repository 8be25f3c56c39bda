"""One revision object: `at(domain, rev)` is how every verb reaches a commit's (or the working
tree's) KB, typed settings, build key, shards, run key and results.

A Revision loads its KB once, however many verbs and library calls ask for it. Commits are
memoised (a commit never changes; the 64 most recent are kept), and the CLI opens a `scope()`
around each command that starts and ends empty. The working tree is memoised only inside a
scope, and anything that writes the worktree's KB or shards/ calls `forget()`; outside a scope
every `at(domain, None)` is a fresh look at the disk. This is DVC's `Repo` facade for one revision.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from pwd_git.errors import DataError
from pwd_git.kb.loader import Domain

if TYPE_CHECKING:
    from pwd_git.build.shards import BuildKey
    from pwd_git.kb.diagnostics import Diagnostic
    from pwd_git.kb.model import KB
    from pwd_git.model.settings import TestSettings, TrainSettings
    from pwd_git.train.pipeline import Shards

_MEMO: OrderedDict[tuple[str, str, str | None], Revision] = OrderedDict()
_KEEP = 64
_scopes = 0


@dataclass(frozen=True)
class Settings:
    """The typed settings of a revision's pwd.yaml (defaults in pwd_git.model.settings)."""

    train: TrainSettings
    test: TestSettings


class Revision:
    """A commit of a domain (`commit` is its full OID) or its working tree (`commit` None)."""

    def __init__(self, domain: Domain, commit: str | None):
        self.domain, self.commit = domain, commit

    def __repr__(self) -> str:
        return f"Revision({self.label})"

    @property
    def rev(self) -> str | None:
        """What the lower layers take: the commit OID, or None for the working tree."""
        return self.commit

    @property
    def label(self) -> str:
        return self.commit[:10] if self.commit else "the working tree"

    @cached_property
    def loaded(self) -> tuple[KB, list[Diagnostic]]:
        """(KB, diagnostics): the one load of this revision's KB."""
        from pwd_git.kb.loader import load_revision, load_worktree

        return load_revision(self.domain, self.commit) if self.commit else load_worktree(self.domain)

    @property
    def kb(self) -> KB:
        return self.loaded[0]

    @property
    def errors(self) -> list[Diagnostic]:
        """The KB's errors, files that do not parse first: their nodes are missing, so the errors
        of every chain and relation that names them follow from these."""
        return sorted((d for d in self.loaded[1] if d.severity == "error"), key=lambda d: d.code != "yaml")

    @property
    def config(self) -> dict:
        return self.kb.config

    def valid_kb(self) -> KB:
        """The KB, or one DataError pointing at `validate` when it does not validate."""
        errors = self.errors
        if errors:
            shown = "\n".join(d.render() for d in errors[:5])
            more = f"\n... and {len(errors) - 5} more" if len(errors) > 5 else ""
            where = f" at {self.commit[:10]}" if self.commit else ""
            raise DataError(f"the KB{where} does not validate ({len(errors)} error(s)):\n{shown}{more}",
                            hint="run `git pwd validate`, fix the errors and commit the fix")
        return self.kb

    @cached_property
    def settings(self) -> Settings:
        from pwd_git.model.settings import test_settings, train_settings

        return Settings(train_settings(self.config, self.domain.root), test_settings(self.config))

    @cached_property
    def build_key(self) -> BuildKey:
        from pwd_git.build.shards import BuildKey

        return BuildKey.of(self.kb)

    @cached_property
    def shards(self) -> Shards:
        """The built shards: a commit's from the build cache (built if needed); the working
        tree's shards/ folder, which must be fresh."""
        from pwd_git.train.pipeline import open_shards

        return open_shards(self)

    @property
    def run_key(self) -> str:
        from pwd_git.model.settings import run_key

        return run_key(self.settings.train)

    def results(self, run_key: str | None = None) -> list[dict]:
        """The result lines recorded on this commit (none for the working tree)."""
        from pwd_git.results import ResultsStore

        return ResultsStore(self.domain.repo).lines(self.commit, run_key) if self.commit else []


def at(domain: Domain, rev: str | None) -> Revision:
    """The Revision of `rev` (any git revision; None = the working tree), memoised."""
    commit = domain.repo.resolve(rev) if rev is not None else None
    if commit is None and not _scopes:
        return Revision(domain, None)
    key = (str(domain.repo.git_dir), str(domain.root), commit)
    found = _MEMO.get(key)
    if found is None:
        found = _MEMO[key] = Revision(domain, commit)
        while len(_MEMO) > _KEEP:
            _MEMO.popitem(last=False)
    _MEMO.move_to_end(key)
    return found


def forget(domain: Domain | None = None, *, commits: bool = False) -> None:
    """Drop the memoised working tree (of `domain`, or every one): its KB or shards/ changed;
    with `commits`, the memoised commits too."""
    for key in [k for k in _MEMO if commits or k[2] is None]:
        if domain is None or key[:2] == (str(domain.repo.git_dir), str(domain.root)):
            del _MEMO[key]


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """One command: the working tree is looked at once and kept until it is written. The
    outermost scope starts and ends with nothing memoised, so each command (also several in one
    process, as in the tests) sees the repository afresh and holds no KB after it returns."""
    global _scopes
    if not _scopes:
        forget(commits=True)
    _scopes += 1
    try:
        yield
    finally:
        _scopes -= 1
        if not _scopes:
            forget(commits=True)

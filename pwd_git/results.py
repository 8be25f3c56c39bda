"""The one results store: which note lines belong to a revision, and when a result recorded on
one commit may stand for another. `log`, `show`, `test`, `run`, `diagnose`, `bisect`, the worker
and `repair` read results only through here; `pwd_git.notes` is the storage underneath.

The reuse rule: two runs are interchangeable when their `RunIdentity` is equal, that is the same
build key (KB tree, the build settings of pwd.yaml, generator version), the same run key (base
model identity, train and model settings) and, in continue mode, the same model key (the model
also depends on the parent commits' models). Only a complete line (every metrics table and the
failed items) stands in for running the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from pwd_git import notes
from pwd_git.git import Repo
from pwd_git.kb.loader import CONFIG_FILE, Domain, kb_trees

if TYPE_CHECKING:
    from pwd_git.revision import Revision


@dataclass(frozen=True)
class RunIdentity:
    """What makes two results interchangeable (see the module docstring)."""

    build_key: str
    run_key: str
    model_key: str | None = None  # continue mode only

    def matches(self, entry: dict) -> bool:
        return (notes.is_complete(entry) and entry.get("build_key") == self.build_key
                and entry.get("run_key") == self.run_key
                and (self.model_key is None or entry.get("model_key") == self.model_key))


def identity(revision: Revision) -> RunIdentity:
    """The identity a result of `revision` has. In continue mode this names the model training
    would produce from the parent models cached now (pwd_git.train.pipeline.plan)."""
    model_key = None
    if revision.settings.train.mode == "continue":
        from pwd_git.train.pipeline import plan

        model_key = plan(revision.domain, revision.rev)[3]
    return RunIdentity(revision.build_key.key, revision.run_key, model_key)


class ResultsStore:
    """The result lines of one repository (all notes read once, re-read after a write)."""

    def __init__(self, repo: Repo):
        self.repo = repo
        self._all: dict[str, list[dict]] | None = None

    def all(self) -> dict[str, list[dict]]:
        """Every commit's valid lines, oldest first by their `time`: a `cat_sort_uniq` merge sorts
        a note's lines as text, so note order is not the order they were written in."""
        if self._all is None:
            self._all = {commit: sorted(entries, key=_written)
                         for commit, entries in notes.read_all(self.repo).items()}
        return self._all

    def lines(self, commit: str, run_key: str | None = None) -> list[dict]:
        """The valid lines recorded on `commit` (of one run key, when given), oldest first: the
        last one is the commit's latest verdict (what `log`, `report` and `diagnose` show)."""
        return [e for e in self.all().get(commit, []) if run_key is None or e.get("run_key") == run_key]

    def reusable(self, ident: RunIdentity, prefer: str | None = None) -> tuple[str, dict] | None:
        """(commit, line) of a recorded result with this identity: on `prefer` if it has one,
        its latest line there."""
        for commit, entries in sorted(self.all().items(), key=lambda kv: kv[0] != prefer):
            for entry in reversed(entries):
                if ident.matches(entry):
                    return commit, entry
        return None

    def record(self, commit: str, entry: dict) -> None:
        notes.append(self.repo, commit, entry)
        self._all = None


_UNDATED = datetime.min.replace(tzinfo=timezone.utc)


def _written(entry: dict) -> datetime:
    """When a line was written (its `time`); a line without a readable one sorts first."""
    try:
        when = datetime.fromisoformat(str(entry.get("time")))
    except ValueError:
        return _UNDATED
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


NEAREST_DEPTH = 64  # how far back along first parents the default baseline is looked for


def nearest_result(domain: Domain, start: str, run_key: str, base: str, *, skip_start: bool) -> tuple[str, dict] | None:
    """(commit, line) of the nearest first-parent ancestor of `start` (itself too, unless
    `skip_start`) with a complete result of the same base model: the default baseline of `test`.
    A line of `run_key` is preferred there; otherwise the newest line of that base, so a commit
    that changes training settings (a new run key) is still gated against what its parent scored."""
    store = ResultsStore(domain.repo)
    if not store.all():
        return None
    for n, commit in enumerate(domain.repo.log_lines(start, "%H", NEAREST_DEPTH + 1)):
        if n == 0 and skip_start:
            continue
        lines = [e for e in store.lines(commit) if notes.is_complete(e)]
        same_key = [e for e in lines if e.get("run_key") == run_key]
        same_base = [e for e in lines if e.get("base") == base]
        if same_key or same_base:
            return commit, (same_key or same_base)[-1]
    return None


def reusable_result(revision: Revision, prefer: str | None = None) -> tuple[str, dict] | None:
    """A recorded result that stands for `revision` (its own first, else any equal run)."""
    return ResultsStore(revision.domain.repo).reusable(identity(revision), prefer)


@dataclass
class CommitResult:
    commit: str
    date: str
    subject: str
    entry: dict | None
    reused_from: str | None = None


def history(domain: Domain, rev_range: str | None, limit: int, run_key: str | None = None) -> list[CommitResult]:
    """Commits of `rev_range` (None: every local branch; newest first) with their latest result. A commit without a line
    of its own shows a result recorded on another commit only when that result has the commit's
    own identity (so a pwd.yaml-only change never borrows its parent's numbers); continue-mode
    commits never borrow (their model depends on their parents')."""
    from pwd_git.revision import at

    store = ResultsStore(domain.repo)
    by_tree: dict[str, list[tuple[str, dict]]] = {}
    for commit, entries in store.all().items():
        for entry in entries:
            if entry.get("kb_tree") and notes.is_complete(entry) and (run_key is None or entry.get("run_key") == run_key):
                by_tree.setdefault(entry["kb_tree"], []).append((commit, entry))
    lines = [line.split("\x1f", 2) for line in domain.repo.log_lines(rev_range, "%H%x1f%cs%x1f%s", limit)]
    orphans = [c for c, _, _ in lines if not store.lines(c, run_key)] if by_tree else []
    trees = kb_trees(domain, orphans)
    # A KB tree and a pwd.yaml blob make one KB, so one identity: judged once for all their commits.
    prefix = f"{domain.prefix}/" if domain.prefix else ""
    configs = dict(zip(orphans, domain.repo.follow([f"{c}:{prefix}{CONFIG_FILE}" for c in orphans]), strict=True))
    judged: dict[tuple[str, str], tuple[str, dict] | None] = {}  # (KB tree, pwd.yaml) -> what it borrows
    rows = []
    for commit, date, subject in lines:
        entries = store.lines(commit, run_key)
        if entries:
            rows.append(CommitResult(commit, date, subject, entries[-1]))
            continue
        tree, borrowed = trees.get(commit), None
        if tree in by_tree:
            kind, config = configs[commit]
            key = (tree, config if kind == "blob" else commit)  # no pwd.yaml blob there: judged alone
            if key not in judged:
                judged[key] = _borrow(at(domain, commit), by_tree[tree])
            borrowed = judged[key]
        rows.append(CommitResult(commit, date, subject, borrowed[1] if borrowed else None,
                                 borrowed[0] if borrowed else None))
    return rows


def _borrow(revision: Revision, candidates: list[tuple[str, dict]]) -> tuple[str, dict] | None:
    """The first candidate (same KB tree) whose result is this revision's own, if any."""
    from pwd_git.errors import PwdError

    if not candidates:
        return None
    try:
        if revision.errors or revision.settings.train.mode == "continue":
            return None
        ident = RunIdentity(revision.build_key.key, revision.run_key)
    except PwdError:  # a commit whose pwd.yaml cannot be read as settings borrows nothing
        return None
    return next(((c, e) for c, e in candidates if ident.matches(e)), None)

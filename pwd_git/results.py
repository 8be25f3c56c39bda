"""Reading results back: the latest result per commit, reused across equal KB trees."""

from __future__ import annotations

from dataclasses import dataclass

from pwd_git import notes
from pwd_git.kb.loader import Domain, kb_tree_at


@dataclass
class CommitResult:
    commit: str
    date: str
    subject: str
    entry: dict | None
    reused_from: str | None = None


def history(domain: Domain, rev_range: str, limit: int, run_key: str | None = None) -> list[CommitResult]:
    """Commits of `rev_range` (newest first) with their latest result; a commit without a note
    borrows one from a commit with the same KB tree (and run key, when given)."""
    fmt = "%H%x1f%cs%x1f%s"
    lines = domain.repo.log_lines(rev_range, fmt, limit)
    all_notes = notes.read_all(domain.repo)
    by_tree: dict[str, tuple[str, dict]] = {}
    for commit, entries in all_notes.items():
        for entry in entries:
            if entry.get("kb_tree") and (run_key is None or entry.get("run_key") == run_key):
                by_tree.setdefault(entry["kb_tree"], (commit, entry))
    rows = []
    for line in lines:
        commit, date, subject = line.split("\x1f", 2)
        entries = [e for e in all_notes.get(commit, []) if run_key is None or e.get("run_key") == run_key]
        if entries:
            rows.append(CommitResult(commit, date, subject, entries[-1]))
            continue
        tree = kb_tree_at(domain, commit)
        borrowed = by_tree.get(tree) if tree else None
        rows.append(CommitResult(commit, date, subject, borrowed[1] if borrowed else None,
                                 borrowed[0] if borrowed else None))
    return rows

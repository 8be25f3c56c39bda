"""Bisect conclusions as git notes: `refs/notes/pwd/bisect`, one JSON line per conclusion.

A session that reaches a conclusion appends one line (pwd_git.notes.append: the same JSON
Lines, lock and single ref update as the results, so clones merge with `cat_sort_uniq` and
`git pwd notes push|pull` carry it) to the note on the first bad commit, or on BAD when only
skipped commits were left. Errors store nothing (a BAD not worse than GOOD, a GOOD already
failing, an aborted step, Ctrl-C): nothing the tool does on error changes the repository.

Lines merge in from every clone, so reading trusts none: a line that does not fit `problem`
is skipped with one warning (pwd_git.notes.parse_note), never a crash of `git pwd report`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from pwd_git import __version__, notes
from pwd_git.bisect.report import BisectReport
from pwd_git.errors import quote
from pwd_git.git import Repo

REF = notes.BISECT_REF
SCHEMA_VERSION = 1
FIRST_BAD, ONLY_SKIPPED = "first-bad", "only-skipped"  # the outcomes stored
_OID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256
_TEXT_FIELDS = ("time", "tool", "metric", "outcome", "subject")


def entry(report: BisectReport) -> dict:
    """The line a conclusion stores: the range, the metric, the outcome, what was tested."""
    first_bad = report.first_bad["commit"] if report.first_bad else None
    return {
        "schema": SCHEMA_VERSION, "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tool": __version__, "good": report.good, "bad": report.bad, "metric": report.metric,
        "threshold": report.threshold, "outcome": FIRST_BAD if first_bad else ONLY_SKIPPED, "first_bad": first_bad,
        "subject": report.first_bad["subject"] if report.first_bad else None, "candidates": report.candidates,
        "verdict": report.verdict and {k: report.verdict.get(k) for k in ("reason", "value", "regressed", "fixed",
                                                                          "p_value", "common")},
        "steps": [{k: s.get(k) for k in ("commit", "verdict", "value", "source")} for s in report.steps],
        "counts": report.counts, "trained": report.trained, "commits_in_range": report.commits_in_range,
        "kb_states": report.kb_states}


def store(repo: Repo, report: BisectReport) -> dict:
    """Append the conclusion to the note on its commit; where it went ({ref, commit})."""
    line = entry(report)
    commit = line["first_bad"] or report.bad
    notes.append(repo, commit, line, ref=REF)
    return {"ref": REF, "commit": commit}


def _is_oid(value: object) -> bool:
    return isinstance(value, str) and _OID.fullmatch(value) is not None


def problem(line: object) -> str | None:
    """Why a parsed line does not fit the conclusion schema (None when it does): the type of
    every field a reader uses, when present; OIDs must be OIDs (the page links to them)."""
    if not isinstance(line, dict):
        return f"it is {quote(line)}, not a JSON object"
    if "schema" in line and not (isinstance(line["schema"], int) and not isinstance(line["schema"], bool)):
        return f"schema is {quote(line['schema'])}, expected a version number"
    for key in _TEXT_FIELDS:
        if line.get(key) is not None and not isinstance(line[key], str):
            return f"{key} is {quote(line[key])}, expected a string"
    for key in ("good", "bad"):
        if not _is_oid(line.get(key)):
            return f"{key} is {quote(line.get(key))}, expected a commit OID"
    if line.get("first_bad") is not None and not _is_oid(line["first_bad"]):
        return f"first_bad is {quote(line['first_bad'])}, expected a commit OID or null"
    candidates = line.get("candidates", [])
    if not (isinstance(candidates, list) and all(_is_oid(c) for c in candidates)):
        return f"candidates is {quote(candidates)}, expected a list of commit OIDs"
    trained = line.get("trained", 0)
    if not (isinstance(trained, int) and not isinstance(trained, bool) and trained >= 0):
        return f"trained is {quote(trained)}, expected a count"
    return None


def read(repo: Repo, commit: str) -> list[dict]:
    """The valid conclusion lines on `commit`, in note order."""
    return notes.parse_note(notes.note_text(repo, commit, REF), commit, check=problem, kind="bisect",
                            schema=SCHEMA_VERSION)


def read_all(repo: Repo, limit: int) -> list[dict]:
    """The newest `limit` valid conclusions of the repository, newest first; each with `on`,
    the commit its note is on."""
    lines = [{**line, "on": commit} for commit, text in notes.note_texts(repo, REF).items()
             for line in notes.parse_note(text, commit, check=problem, kind="bisect", schema=SCHEMA_VERSION)]
    return sorted(lines, key=lambda line: str(line.get("time") or ""), reverse=True)[:limit]

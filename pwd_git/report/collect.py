"""What the report shows, as plain data: commits of a range with their results, aggregated
into a bounded number of points, heatmap columns and KB samples, plus the latest diagnosis,
the repair rounds, the stored bisect conclusions and links to the forge's file views.

Bounds: a history of any length draws at most MAX_POINTS points per series, MAX_COLUMNS x
MAX_ROWS heatmap cells and MAX_KB_POINTS KB samples; beyond that consecutive commits share a
bucket (its mean, and how many of its verdicts failed).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pwd_git.errors import PwdError
from pwd_git.git import object_ids, unmerged_branches
from pwd_git.kb.loader import KB_DIRS, Domain
from pwd_git.metrics import Metric
from pwd_git.repair import REPAIR_BRANCH_PREFIX
from pwd_git.results import history

log = logging.getLogger(__name__)

MAX_POINTS = 200  # points per series in a metric chart
MAX_COLUMNS = 60  # heatmap columns (commit buckets)
MAX_ROWS = 40  # heatmap rows: the concepts with the lowest accuracy
MAX_KB_POINTS = 100  # commits whose KB is loaded for the size chart
MAX_BRANCHES, MAX_ROUNDS = 20, 50  # repair branches and rounds per branch shown
MAX_BISECTS = 50  # stored bisect conclusions shown, newest first
SERIES = ("acc", "acc_norm", "control", "L1", "L2", "L3")  # names of the one metrics grammar
KB_SERIES = ("concepts", "statements", "chains")


@dataclass
class Commit:
    index: int  # position in the range, oldest first
    oid: str
    date: str
    subject: str
    entry: dict | None = None  # the latest result line with metrics (None: no result)
    reused_from: str | None = None  # the commit `entry` was recorded on, when not this one


@dataclass
class Point:
    """One drawn point: a commit, or a bucket of consecutive commits with results."""

    x: float  # mean commit index
    first: Commit
    last: Commit
    count: int  # results in the point
    values: dict[str, float]  # series -> mean value (series the results measured)
    fails: int  # results whose verdict is fail

    @property
    def label(self) -> str:
        if self.count == 1:
            reused = f" (result of {self.first.reused_from[:10]}, same KB and settings)" if self.first.reused_from else ""
            return f"{self.first.oid[:10]} {self.first.date} {self.first.subject}{reused}"
        return f"{self.count} results, {self.first.oid[:10]}..{self.last.oid[:10]} ({self.first.date} to {self.last.date})"


@dataclass
class Heatmap:
    columns: list[Point]  # commit buckets (values unused)
    rows: list[str]  # concept ids, lowest mean accuracy first
    cells: dict[tuple[str, int], tuple[float, int]]  # (concept, column) -> (acc, items)
    hidden: int  # concepts not shown (beyond MAX_ROWS)
    links: dict[str, str] = field(default_factory=dict)  # concept -> file link
    labels: dict[str, str] = field(default_factory=dict)  # concept -> its term, as people know it


@dataclass
class Finding:
    location: str
    link: str | None
    kind: str
    message: str
    confidence: float


@dataclass
class Round:
    commit: Commit
    link: str | None


@dataclass
class Bisect:
    """One stored `git pwd bisect` conclusion (pwd_git.bisect.record), as the page lists it."""

    time: str
    outcome: str  # first-bad | only-skipped (or what a newer pwd-git wrote)
    metric: str
    good: str
    bad: str
    first_bad: str | None
    subject: str | None  # the first bad commit's
    candidates: list[str]  # when only skipped commits were left
    trained: int
    link: str | None  # the first bad commit's view on the forge


@dataclass
class ReportData:
    name: str
    rev_range: str
    commits: list[Commit]
    points: list[Point]
    heatmap: Heatmap
    kb_sizes: list[tuple[Commit, dict[str, int]]]
    diagnosis_commit: str | None = None
    findings: list[Finding] = field(default_factory=list)
    diagnosis_note: str | None = None  # why there is no diagnosis, or what it concluded
    repairs: dict[str, list[Round]] = field(default_factory=dict)  # branch -> rounds, oldest first
    bisects: list[Bisect] = field(default_factory=list)
    forge: str | None = None  # the forge's web URL of the repository

    @property
    def results(self) -> list[Commit]:
        return [c for c in self.commits if c.entry]


def buckets(seq: list, limit: int) -> list[list]:
    """`seq` cut into at most `limit` runs of consecutive elements, sizes differing by one at most."""
    if len(seq) <= limit:
        return [[x] for x in seq]
    size, extra = divmod(len(seq), limit)
    out, start = [], 0
    for i in range(limit):
        end = start + size + (i < extra)
        out.append(seq[start:end])
        start = end
    return out


def _value(entry: dict, series: str) -> float | None:
    return Metric(series).value(entry.get("metrics") or {})


def _point(group: list[Commit]) -> Point:
    values = {}
    for series in SERIES:
        found = [v for c in group if (v := _value(c.entry, series)) is not None]
        if found:
            values[series] = sum(found) / len(found)
    return Point(sum(c.index for c in group) / len(group), group[0], group[-1], len(group), values,
                 sum(c.entry.get("verdict") == "fail" for c in group))


def _heatmap(results: list[Commit]) -> Heatmap:
    groups = buckets(results, MAX_COLUMNS)
    columns = [_point(g) for g in groups]
    cells: dict[tuple[str, int], tuple[float, int]] = {}
    for col, group in enumerate(groups):
        sums: dict[str, list[float]] = {}
        for c in group:
            for cid, score in ((c.entry.get("metrics") or {}).get("concepts") or {}).items():
                acc_n = sums.setdefault(cid, [0.0, 0])
                acc_n[0] += score["acc"] * score["n"]
                acc_n[1] += score["n"]
        for cid, (total, n) in sums.items():
            if n:
                cells[(cid, col)] = (total / n, n)
    means: dict[str, list[float]] = {}
    for (cid, _col), (acc, _n) in cells.items():
        means.setdefault(cid, []).append(acc)
    ranked = sorted(means, key=lambda cid: (sum(means[cid]) / len(means[cid]), cid))
    return Heatmap(columns, ranked[:MAX_ROWS], cells, max(0, len(ranked) - MAX_ROWS))


def _sample(commits: list[Commit], limit: int) -> list[Commit]:
    """At most `limit` commits spread evenly over the range, the first and the last included."""
    if len(commits) <= limit:
        return commits
    step = (len(commits) - 1) / (limit - 1)
    return [commits[round(i * step)] for i in range(limit)]


def _kb_sizes(domain: Domain, commits: list[Commit]) -> list[tuple[Commit, dict[str, int]]]:
    """KB counts at sampled commits: one cat-file for the KB folders' OIDs, one load per distinct state."""
    from pwd_git.revision import at

    sample = _sample(commits, MAX_KB_POINTS)
    prefix = f"{domain.prefix}/" if domain.prefix else ""
    oids = object_ids(domain.repo, [f"{c.oid}:{prefix}{name}" for c in sample for name in KB_DIRS])
    sizes: dict[tuple, dict[str, int] | None] = {}
    out = []
    for i, commit in enumerate(sample):
        state = tuple(oids[i * len(KB_DIRS):(i + 1) * len(KB_DIRS)])
        if state not in sizes:
            try:
                sizes[state] = at(domain, commit.oid).kb.summary() if any(state) else None
            except PwdError as exc:  # a commit whose KB cannot be read has no size to draw
                log.debug("no KB size at %s: %s", commit.oid[:10], exc)
                sizes[state] = None
        if sizes[state] is not None:
            out.append((commit, sizes[state]))
    return out


def forge_base(domain: Domain) -> tuple[str | None, str]:
    """(the web URL of origin's repository, "github" | "gitlab") when the remote is a known
    forge; (None, "") otherwise. Credentials in the remote URL never reach the page."""
    from pwd_git.repair.forge import GITHUB, forge_repo

    try:
        repo = forge_repo(domain.repo, "origin")
    except PwdError:
        return None, ""
    if repo is None or not repo.owner:
        return None, ""
    kind = repo.kind if repo.kind == "gitlab" or repo.host == GITHUB or repo.api else ""
    return (f"{repo.web}/{repo.owner}/{repo.name}", kind) if kind else (None, "")


class Links:
    """Links from the page to files and commits: the forge's views when origin is a known forge,
    else relative file links from the output folder into the checkout."""

    def __init__(self, domain: Domain, out_dir: Path):
        self.domain, self.out_dir = domain, out_dir
        self.web, self.kind = forge_base(domain)

    def _views(self) -> str:
        return f"{self.web}/-" if self.kind == "gitlab" else f"{self.web}"

    def file(self, location: str, commit: str | None) -> str:
        """`path:line` (relative to the KB root) -> a link to that line."""
        path, _, line = location.rpartition(":")
        if not path or not line.isdigit():
            path, line = location, "1"
        repo_path = f"{self.domain.prefix}/{path}" if self.domain.prefix else path
        if self.web and commit:
            return f"{self._views()}/blob/{commit}/{repo_path}#L{line}"
        return Path(os.path.relpath(self.domain.repo.top / repo_path, self.out_dir)).as_posix()

    def commit(self, oid: str) -> str | None:
        return f"{self._views()}/commit/{oid}" if self.web else None


def _commits(domain: Domain, rev_range: str, limit: int, run_key: str | None) -> list[Commit]:
    """The range oldest first, each commit with the result `git pwd log` shows for it (its own,
    or one recorded on a commit with the same KB and settings: results.history)."""
    if not domain.repo.has_commits():
        return []
    rows = reversed(history(domain, rev_range, limit, run_key))
    return [Commit(index, row.commit, row.date, row.subject,
                   row.entry if row.entry and isinstance(row.entry.get("metrics"), dict) else None, row.reused_from)
            for index, row in enumerate(rows)]


def _diagnosis(domain: Domain, data: ReportData, links: Links) -> None:
    """The diagnosis of the newest commit with a result (never runs the tests)."""
    from pwd_git.repair.diagnose import diagnose

    newest = data.results[-1] if data.results else None
    if newest is None:
        data.diagnosis_note = "no results yet: nothing to diagnose"
        return
    data.diagnosis_commit = newest.oid
    try:
        found = diagnose(domain, newest.oid, key=newest.entry.get("run_key"), run_if_missing=False)
    except PwdError as exc:
        data.diagnosis_note = f"no diagnosis of {newest.oid[:10]}: {exc.message}"
        return
    data.findings = [Finding(f.location, links.file(f.location, newest.oid), f.kind, f.message(), f.confidence)
                     for f in found.findings]
    if not found.model_learned:
        data.diagnosis_note = "the model did no better than guessing on nodes with adequate data: fix training first"
    elif not found.findings:
        data.diagnosis_note = f"nothing to fix: {len(found.failed_items)} failed item(s), none traces to a KB node"


def _repairs(domain: Domain, run_key: str | None, links: Links) -> dict[str, list[Round]]:
    """The rounds of each `pwd/repair/*` branch (its commits not on HEAD), with their results."""
    out = {}
    for name, tip in unmerged_branches(domain.repo, REPAIR_BRANCH_PREFIX)[:MAX_BRANCHES]:
        rounds = [Round(c, links.commit(c.oid)) for c in _commits(domain, f"HEAD..{tip}", MAX_ROUNDS, run_key)]
        if rounds:
            out[name] = rounds
    return out


def stored_bisects(domain: Domain, links: Links, limit: int = MAX_BISECTS) -> list[Bisect]:
    """The newest `limit` bisect conclusions kept in refs/notes/pwd/bisect (any range: a
    conclusion names its own), newest first."""
    from pwd_git.bisect import record

    return [Bisect(str(line.get("time") or ""), str(line.get("outcome") or "?"), str(line.get("metric") or "?"),
                   line["good"], line["bad"], line.get("first_bad"), line.get("subject"), line.get("candidates", []),
                   line.get("trained", 0), links.commit(line["first_bad"]) if line.get("first_bad") else None)
            for line in record.read_all(domain.repo, limit)]


def collect(domain: Domain, rev_range: str, out_dir: Path, *, limit: int, run_key: str | None = None) -> ReportData:
    """Everything the page shows for `rev_range` (first-parent, at most `limit` commits)."""
    from pwd_git.revision import at

    commits = _commits(domain, rev_range, limit, run_key)
    results = [c for c in commits if c.entry]
    name = domain.root.name
    if commits:
        with contextlib.suppress(PwdError):  # a commit without a readable KB keeps the folder's name
            name = str(at(domain, commits[-1].oid).config.get("name") or name)
    links = Links(domain, out_dir)
    data = ReportData(name, rev_range, commits, [_point(g) for g in buckets(results, MAX_POINTS)], _heatmap(results),
                      _kb_sizes(domain, commits) if commits else [], forge=links.web)
    if results:
        with contextlib.suppress(PwdError):  # rows of a KB that cannot be read stay unlinked
            kb = at(domain, results[-1].oid).kb
            data.heatmap.links = {cid: links.file(str(kb.concepts[cid].loc), results[-1].oid)
                                  for cid in data.heatmap.rows if cid in kb.concepts}
            terms = Counter(kb.concepts[cid].term for cid in data.heatmap.rows if cid in kb.concepts)
            data.heatmap.labels = {cid: kb.concepts[cid].term if terms[kb.concepts[cid].term] == 1
                                   else f"{kb.concepts[cid].term} ({cid})"
                                   for cid in data.heatmap.rows if cid in kb.concepts}
    _diagnosis(domain, data, links)
    data.repairs = _repairs(domain, run_key, links) if commits else {}
    data.bisects = stored_bisects(domain, links)
    return data

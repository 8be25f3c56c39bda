"""What `git pwd bisect` reports: the first bad commit, what changed there, which items flipped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pwd_git.bisect.metric import Metric, selected
from pwd_git.bisect.step import Skip, _identity, result_for
from pwd_git.git import commit_info
from pwd_git.kb.loader import Domain


@dataclass
class BisectReport:
    """The outcome of a session, as `git pwd bisect` prints it (text or `--format json`)."""

    good: str
    bad: str
    metric: str
    threshold: float | None
    first_bad: dict | None  # commit info
    candidates: list[str]  # when only skipped commits are left
    steps: list[dict]
    counts: dict[str, int]
    commits_in_range: int
    kb_states: int  # distinct KB states (KB folders + pwd.yaml; each commit in continue mode) among GOOD and the range
    bisect_log: str
    unchanged: int = 0  # commits with their parent's KB state: never tested (git bisect skip)
    verdict: dict | None = None  # first bad commit vs GOOD
    kb_diff: dict | None = None
    config_changes: list[str] = field(default_factory=list)
    flipped: dict = field(default_factory=dict)
    stored: dict | None = None  # where the conclusion was kept ({ref, commit}; record.py), None if not

    @property
    def trained(self) -> int:
        return self.counts.get("trained", 0)

    def as_dict(self) -> dict:
        return {"good": self.good, "bad": self.bad, "metric": self.metric, "threshold": self.threshold,
                "first_bad": self.first_bad, "candidates": self.candidates, "verdict": self.verdict,
                "kb_diff": self.kb_diff, "config_changes": self.config_changes, "flipped": self.flipped,
                "steps": self.steps, "counts": self.counts, "trained": self.trained,
                "commits_in_range": self.commits_in_range, "kb_states": self.kb_states, "unchanged": self.unchanged,
                "bisect_log": self.bisect_log, "stored": self.stored}


def _describe(domain: Domain, report: BisectReport, first_bad: str, metric: Metric, state: dict,
              log: Callable[[str], None]) -> None:
    """Who, what changed (KB diff, pwd.yaml), and which items and concepts flipped."""
    from pwd_git.kbdiff import diff_revisions

    repo = domain.repo
    report.first_bad = commit_info(repo, first_bad).as_dict()
    parent = repo.resolve(f"{first_bad}^")
    report.first_bad["parent"] = parent
    report.verdict = next((s for s in reversed(state["steps"]) if s["commit"] == first_bad), None)
    if report.verdict is None:  # judged through another commit with the same KB state
        ident, _, _ = _identity(domain, first_bad)
        report.verdict = state["judged"].get(ident)
    kb_diff = diff_revisions(domain, parent, first_bad)
    report.kb_diff = kb_diff.as_dict()
    report.config_changes = [str(setting) for setting in kb_diff.settings]
    try:
        before = result_for(domain, parent, allow_train=False)
        after = result_for(domain, first_bad, allow_train=False)
    except Skip as exc:
        report.flipped = {"skipped": str(exc)}
        return
    items = {i["id"]: i for i in after.items}
    now = selected(metric, after)
    old = selected(metric, before)
    common = now.keys() & old.keys()
    regressed = sorted(i for i in common if old[i] and not now[i])
    fixed = sorted(i for i in common if not old[i] and now[i])
    concepts: dict[str, dict] = {}
    for cid in sorted({c for i in regressed + fixed if i in items for c in items[i]["traces"]["concepts"]}):
        a = before.metrics.get("concepts", {}).get(cid, {}).get("acc")
        b = after.metrics.get("concepts", {}).get(cid, {}).get("acc")
        if a != b:
            concepts[cid] = {"before": a, "after": b}
    # Against the parent, not GOOD (that is the verdict's comparison): `common` says how many
    # items the two share, `not_at_good` how many regressed items GOOD's benchmark lacks.
    report.flipped = {"parent": parent, "common": len(common), "regressed": [_brief(items, i) for i in regressed],
                      "fixed": [_brief(items, i) for i in fixed], "concepts": concepts,
                      "not_at_good": sum(i not in state["good_items"] for i in regressed)}


def _brief(items: dict[str, dict], item_id: str) -> dict:
    """A flipped benchmark item as the report shows it; a control item is known by its id alone."""
    item = items.get(item_id)
    if item is None:
        return {"id": item_id, "level": "control"}
    return {"id": item["id"], "level": item["level"], "question": item["question"],
            "answer": item["choices"][item["answer"]], "source": item["source"],
            "concepts": item["traces"]["concepts"], "chain": item["traces"].get("chain")}

"""What "good" means (the metric) and how one commit is judged against GOOD.

Kept apart from git and training so the verdict rule can be read and tested on its own;
the exit codes are the answers `git bisect run` understands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pwd_git.errors import PwdError, quote

GOOD, BAD, SKIP, ABORT = 0, 1, 125, 128  # `git bisect run` exit codes
INCONCLUSIVE_FACTOR = 2.0  # alpha <= p < 2 alpha with more regressed than fixed items: skip
METRIC_SYNTAX = "acc, L1, L2, L3, concept:ID, chain:ID or item:ID"
_METRIC = re.compile(r"\A(acc|L1|L2|L3|(concept|chain|item):[A-Za-z0-9][A-Za-z0-9._-]*)\Z")


@dataclass(frozen=True)
class Metric:
    """What "good" means: a set of benchmark items (all, a level, a concept's, a chain's, one)."""

    name: str

    @classmethod
    def parse(cls, name: str) -> Metric:
        if not _METRIC.match(name):
            raise PwdError(f"unknown metric {quote(name)}", hint=f"use {METRIC_SYNTAX}")
        return cls(name)

    @property
    def kind(self) -> str:
        return self.name.split(":", 1)[0] if ":" in self.name else self.name

    @property
    def arg(self) -> str:
        return self.name.split(":", 1)[1] if ":" in self.name else ""

    def covers(self, item: dict) -> bool:
        kind, arg = self.kind, self.arg
        if kind == "acc":
            return True
        if kind in ("L1", "L2", "L3"):
            return item["level"] == kind
        if kind == "concept":
            return arg in item["traces"]["concepts"]
        if kind == "chain":
            return item["traces"].get("chain") == arg
        return item["id"] == arg or (len(arg) >= 6 and item["id"].startswith(arg))

    def default_threshold(self) -> float | None:
        """One item cannot be significant under McNemar: item:ID means "this item passes"."""
        return 1.0 if self.kind == "item" else None


@dataclass
class Judgment:
    """A verdict on one commit with its evidence; `exit_code` is the answer for `git bisect run`."""

    verdict: str  # good | bad | skip
    reason: str
    value: float | None = None
    regressed: int = 0  # items passing at GOOD and failing here
    fixed: int = 0
    p_value: float | None = None

    @property
    def exit_code(self) -> int:
        return {"good": GOOD, "bad": BAD}.get(self.verdict, SKIP)

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "reason": self.reason, "value": self.value,
                "regressed": self.regressed, "fixed": self.fixed, "p_value": self.p_value}


def selected(metric: Metric, result_items: list[dict], per_item: dict[str, bool]) -> dict[str, bool]:
    """Pass/fail of the items the metric covers: the only items a verdict looks at."""
    return {i["id"]: per_item[i["id"]] for i in result_items if metric.covers(i) and i["id"] in per_item}


def judge_against(metric: Metric, threshold: float | None, alpha: float, good: dict[str, bool],
                  now: dict[str, bool]) -> Judgment:
    """Good, bad or inconclusive, by the `test` rule: threshold on the metric plus a one-sided
    exact McNemar test on the items the two commits share."""
    from pwd_git.evaluate.verdict import judge

    if not now:
        return Judgment("skip", f"the metric {metric.name} covers no benchmark item here")
    value = sum(now.values()) / len(now)
    threshold = metric.default_threshold() if threshold is None else threshold
    thresholds = {"acc": threshold} if threshold is not None else {}
    v = judge({"acc": value}, thresholds, passed_now=now, passed_before=good, alpha=alpha)
    j = Judgment("good", "", round(value, 4), len(v.regressed_items), len(v.fixed_items), v.p_value)
    summary = f"{len(v.regressed_items)} regressed, {len(v.fixed_items)} fixed (p={v.p_value:.4g})"
    if v.threshold_failures:
        j.verdict, j.reason = "bad", f"{metric.name} = {value:.3f} is below {threshold:.3f}; {summary}"
    elif not v.ok:
        j.verdict, j.reason = "bad", f"{summary} vs GOOD"
    elif len(v.regressed_items) > len(v.fixed_items) and v.p_value < INCONCLUSIVE_FACTOR * alpha:
        j.verdict, j.reason = "skip", f"inconclusive: {summary} vs GOOD (significant only below {alpha:g})"
    elif not (now.keys() & good.keys()) and threshold is None:
        j.verdict, j.reason = "skip", f"no {metric.name} item in common with GOOD to compare"
    else:
        j.reason = f"{metric.name} = {value:.3f}; {summary} vs GOOD"
    return j

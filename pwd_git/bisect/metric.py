"""What "good" means (the metric) and how one commit is judged against GOOD.

Kept apart from git and training so the verdict rule can be read and tested on its own;
the exit codes are the answers `git bisect run` understands.
"""

from __future__ import annotations

from dataclasses import dataclass

from pwd_git.metrics import Metric

GOOD, BAD, SKIP, ABORT = 0, 1, 125, 128  # `git bisect run` exit codes
INCONCLUSIVE_FACTOR = 2.0  # alpha <= p < 2 alpha with more regressed than fixed items: skip


@dataclass
class Judgment:
    """A verdict on one commit with its evidence; `exit_code` is the answer for `git bisect run`."""

    verdict: str  # good | bad | skip
    reason: str
    value: float | None = None
    regressed: int = 0  # items passing at GOOD and failing here
    fixed: int = 0
    p_value: float | None = None
    common: int = 0  # the metric's items GOOD and this commit both have: what regressed and fixed count

    @property
    def inconclusive(self) -> bool:
        """Measured, with more items regressed than fixed, yet not significantly: a skip that
        is an answer (unlike a commit that cannot be judged at all)."""
        return self.verdict == "skip" and self.p_value is not None and self.regressed > self.fixed

    @property
    def exit_code(self) -> int:
        return {"good": GOOD, "bad": BAD}.get(self.verdict, SKIP)

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "reason": self.reason, "value": self.value,
                "regressed": self.regressed, "fixed": self.fixed, "p_value": self.p_value, "common": self.common}


def selected(metric: Metric, result) -> dict[str, bool]:
    """Pass/fail of the items the metric covers in a commit's result (bisect.step.Result): the
    only items a verdict looks at. Empty when the result did not record the flags the metric
    counts (acc_norm or control flags of a note written before they were recorded)."""
    return metric.flags(result.items, result.flags) or {}


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
    common = len(now.keys() & good.keys())
    j = Judgment("good", "", round(value, 4), len(v.regressed_items), len(v.fixed_items), v.p_value, common)
    # The value counts every item of the commit; the paired counts only those GOOD has too
    # (an edit elsewhere in the KB can give an item a new id): the reason says both.
    measured = f"{metric.name} = {value:.3f} ({len(now) - sum(now.values())} of {len(now)} failing)"
    summary = (f"{len(v.regressed_items)} regressed, {len(v.fixed_items)} fixed vs GOOD, of the {common} "
               f"{metric.name} item(s) both have (p={v.p_value:.4g})")
    if v.threshold_failures:
        j.verdict, j.reason = "bad", f"{measured} is below {threshold:.3f}; {summary}"
    elif not v.ok:
        j.verdict, j.reason = "bad", f"{measured}; {summary}"
    elif len(v.regressed_items) > len(v.fixed_items) and v.p_value < INCONCLUSIVE_FACTOR * alpha:
        j.verdict, j.reason = "skip", f"inconclusive: {summary} (significant only below {alpha:g})"
    elif not common and threshold is None:
        j.verdict, j.reason = "skip", f"no {metric.name} item in common with GOOD to compare"
    else:
        j.reason = f"{measured}; {summary}"
    return j

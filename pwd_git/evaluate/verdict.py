"""Pass/fail like a unit-test runner: thresholds from pwd.yaml plus a paired statistical
test against a baseline, so a one-item wobble is noise and a real drop is a regression."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import exp, lgamma, log

from pwd_git.metrics import Metric

_LOG2 = log(2.0)


def mcnemar_p(broke: int, fixed: int) -> float:
    """One-sided exact McNemar: P(at least `broke` of the discordant pairs go bad by chance),
    the upper tail of Binomial(broke + fixed, 1/2). Summed in floating point from the term
    nearest the mode outwards (each term from the last by its ratio, the first from lgamma),
    stopping once terms no longer change the sum: O(sqrt(n)) steps, so 20k discordant pairs
    take microseconds where summing big-integer binomials took seconds."""
    n = broke + fixed
    if broke <= 0:
        return 1.0
    if 2 * broke >= n:  # the tail starts at or past the mode: sum it directly
        return _binomial_tail(n, broke, 1)
    return 1.0 - _binomial_tail(n, broke - 1, -1)  # the tail holds the mode: 1 - the (smaller) lower tail


def _binomial_tail(n: int, k: int, step: int) -> float:
    """P(X = k) + P(X = k + step) + ... for X ~ Binomial(n, 1/2), k at or beyond the mode on the
    side `step` walks to, so the terms only shrink."""
    log_first = lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1) - n * _LOG2
    total = term = 1.0  # relative to the first term
    last = n if step > 0 else 0
    while k != last:
        term *= (n - k) / (k + 1) if step > 0 else k / (n - k + 1)
        k += step
        total += term
        if term < total * 1e-18:
            break
    return exp(log_first + log(total))


def guessing_p(passed: int, n: int, chance: float) -> float:
    """P(at least `passed` of `n` items right by guessing, each with probability `chance`): the
    one-sided binomial test of "better than chance" (1.0 for n = 0). Summed from the top term
    down in logs: n is a benchmark level's size, thousands at most."""
    if n <= 0 or passed <= 0:
        return 1.0
    if chance <= 0:
        return 0.0
    if chance >= 1:
        return 1.0
    lp, lq = log(chance), log(1 - chance)
    terms = [lgamma(n + 1) - lgamma(j + 1) - lgamma(n - j + 1) + j * lp + (n - j) * lq for j in range(passed, n + 1)]
    top = max(terms)
    return min(1.0, exp(top) * sum(exp(t - top) for t in terms))


def against_guessing(flags: list[tuple[dict, bool]]) -> tuple[int, float, float]:
    """(items right, what guessing gets on them: the mean of 1 / choices, `guessing_p`) for
    (benchmark item, passed) pairs: the one rule for "no better than chance" that `test`'s
    level warning and diagnose's composition line share."""
    right = sum(ok for _item, ok in flags)
    chance = sum(1 / max(1, len(item.get("choices") or [])) for item, _ok in flags) / max(1, len(flags))
    return right, chance, guessing_p(right, len(flags), chance)


@dataclass
class AtChance:
    level: str
    acc: float
    chance: float
    n: int
    p_value: float


def levels_at_chance(items: list[dict], passed: dict[str, bool], alpha: float = 0.05, min_items: int = 10,
                     ) -> list[AtChance]:
    """The benchmark levels the model answers no better than guessing (one-sided binomial test
    at `alpha`, levels of at least `min_items` items): a PASS by thresholds alone can hide a
    level at chance, as a minimal pwd.yaml sets none."""
    by_level: dict[str, list[tuple[dict, bool]]] = {}
    for item in items:
        if item["id"] in passed:
            by_level.setdefault(item["level"], []).append((item, passed[item["id"]]))
    out = []
    for level, flags in sorted(by_level.items()):
        right, chance, p = against_guessing(flags)
        if len(flags) >= min_items and p >= alpha:
            out.append(AtChance(level, right / len(flags), chance, len(flags), p))
    return out


@dataclass
class Verdict:
    ok: bool
    threshold_failures: list[str] = field(default_factory=list)
    regressed_items: list[str] = field(default_factory=list)
    fixed_items: list[str] = field(default_factory=list)
    p_value: float | None = None
    baseline: str | None = None

    def as_dict(self) -> dict:
        return {"ok": self.ok, "threshold_failures": self.threshold_failures, "regressed": self.regressed_items,
                "fixed": self.fixed_items, "p_value": self.p_value, "baseline": self.baseline}


def judge(metrics: dict, thresholds: dict, *, passed_now: dict[str, bool] | None = None,
          passed_before: dict[str, bool] | None = None, alpha: float = 0.05, baseline: str | None = None) -> Verdict:
    """Thresholds name a metric (pwd_git.metrics); values are minimum accuracies. A threshold
    whose metric measured nothing fails."""
    failures = []
    for name, minimum in sorted(thresholds.items()):
        value = Metric.parse(name).value(metrics, passed_now)
        if value is None:  # a typo or a node no test chain touches must not pass silently
            failures.append(f"{name} measures no benchmark items (is the id right, and does a test chain "
                            "touch it?)" if ":" in name else f"{name} measures no benchmark items")
        elif value < float(minimum):
            failures.append(f"{name} = {value:.3f} is below the threshold {float(minimum):.3f}")
    verdict = Verdict(ok=not failures, threshold_failures=failures, baseline=baseline)
    if passed_now is not None and passed_before is not None:
        common = passed_now.keys() & passed_before.keys()
        verdict.regressed_items = sorted(i for i in common if passed_before[i] and not passed_now[i])
        verdict.fixed_items = sorted(i for i in common if not passed_before[i] and passed_now[i])
        verdict.p_value = mcnemar_p(len(verdict.regressed_items), len(verdict.fixed_items))
        if len(verdict.regressed_items) > len(verdict.fixed_items) and verdict.p_value < alpha:
            verdict.ok = False
    return verdict


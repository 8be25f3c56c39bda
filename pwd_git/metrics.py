"""The one metrics grammar: what `acc | acc_norm | L1..L3 | control | concept:ID | chain:ID |
item:ID` mean, for `test.thresholds`, `bisect --metric`, `log` and the dashboard alike.

A metric is a set of scored items and the flag that counts for each: every benchmark item,
a level's, a concept's (every item whose traces name it), a chain's, one item (an id or an
unambiguous prefix of six or more characters), or the control set; acc_norm counts the
length-normalised flag of every benchmark item. Its value is the share of those items that
pass; a metric that covers no item has no value (a threshold on it fails).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pwd_git.errors import PwdError, quote

LEVELS = ("L1", "L2", "L3")
WHOLE = ("acc", "acc_norm", *LEVELS, "control")
SCOPES = ("concept", "chain", "item")
ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9._-]*"
PATTERN = "^(" + "|".join(WHOLE) + "|(" + "|".join(SCOPES) + "):" + ID_PATTERN + ")$"
SYNTAX = "acc, acc_norm, L1, L2, L3, control, concept:ID, chain:ID or item:ID"
ITEM_PREFIX_MIN = 6
_PATTERN = re.compile(PATTERN)


@dataclass(frozen=True)
class Flags:
    """Per-item pass/fail of one run: acc flags and acc_norm flags of the benchmark items, and
    the acc flags of the control items."""

    acc: Mapping[str, bool]
    acc_norm: Mapping[str, bool] | None = None
    control: Mapping[str, bool] | None = None


@dataclass(frozen=True)
class Metric:
    name: str

    @classmethod
    def parse(cls, name: str) -> Metric:
        if not isinstance(name, str) or not _PATTERN.fullmatch(name):
            raise PwdError(f"unknown metric {quote(str(name))}", hint=f"use {SYNTAX}")
        return cls(name)

    @property
    def kind(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def arg(self) -> str:
        return self.name.split(":", 1)[1] if ":" in self.name else ""

    def covers(self, item: Mapping) -> bool:
        """Whether a benchmark item belongs to the metric (control items belong only to `control`)."""
        kind, arg = self.kind, self.arg
        if kind in ("acc", "acc_norm"):
            return True
        if kind in LEVELS:
            return item["level"] == kind
        if kind == "concept":
            return arg in item["traces"]["concepts"]
        if kind == "chain":
            return item["traces"].get("chain") == arg
        if kind == "item":
            return item["id"] == arg or (len(arg) >= ITEM_PREFIX_MIN and item["id"].startswith(arg))
        return False

    def flags(self, items: Iterable[Mapping], flags: Flags) -> dict[str, bool] | None:
        """Pass/fail of the items the metric covers (what a paired test compares); None when the
        run did not record the flags this metric counts (an older note without acc_norm flags)."""
        if self.kind == "control":
            return dict(flags.control) if flags.control is not None else None
        table = flags.acc_norm if self.kind == "acc_norm" else flags.acc
        if table is None:
            return None
        return {i["id"]: table[i["id"]] for i in items if self.covers(i) and i["id"] in table}

    def value(self, metrics: Mapping, flags: Mapping[str, bool] | None = None) -> float | None:
        """The metric's accuracy from a run's summary (`metrics` of a note line); item:ID needs
        the run's acc flags."""
        kind, arg = self.kind, self.arg
        if kind in ("acc", "acc_norm"):
            return metrics.get(kind)
        if kind in LEVELS:
            return (metrics.get("levels", {}).get(kind) or {}).get("acc")
        if kind == "control":
            return (metrics.get("control") or {}).get("acc")
        if kind == "item":
            hits = [ok for iid, ok in (flags or {}).items()
                    if iid == arg or (len(arg) >= ITEM_PREFIX_MIN and iid.startswith(arg))]
            return sum(hits) / len(hits) if hits else None
        entry = metrics.get({"concept": "concepts", "chain": "chains"}[kind], {}).get(arg)
        return entry.get("acc") if entry else None

    def default_threshold(self) -> float | None:
        """One item cannot be significant under McNemar: item:ID means "this item passes"."""
        return 1.0 if self.kind == "item" else None

"""The shapes of what flows between the verbs: training records and benchmark items (one JSON
object per line in shards/), and result note lines. They stay plain dicts on the wire (JSON
Lines that TRL, datasets and lm-eval read as they are); these types say which keys they carry,
and `family` names what kind of test an item is, so no code matches template strings.
"""

from __future__ import annotations

from typing import Literal, TypedDict

Level = Literal["L1", "L2", "L3"]
Family = Literal["concept-probe", "statement-probe", "chain", "hand"]

# Every benchmark template (pwd_git.build.templates.BENCH) and the family it belongs to.
FAMILIES: dict[str, Family] = {
    "probe.l1.describe": "concept-probe",
    "probe.l1.kind": "concept-probe",
    "probe.l2.complete": "statement-probe",
    "chain.l3.hops": "chain",
    "hand": "hand",
}


class Traces(TypedDict):
    concepts: list[str]
    statements: list[str]
    chain: str  # "" when none: shard records hold no nulls (pwd_git.build.card)


class TrainRecord(TypedDict):
    id: str
    level: str  # L1 | L2 | L3 | patch
    messages: list[dict]
    traces: Traces
    template: str
    source: str  # path:line of the YAML node


class BenchItem(TypedDict):
    id: str
    level: Level
    question: str
    choices: list[str]
    answer: int
    distractor_fallback: bool  # a probe whose distractors include other types than the answer's
    hand_index: int  # position among its chain's hand-written items; -1 for a generated item
    traces: Traces
    template: str
    source: str


class NoteLine(TypedDict, total=False):
    """One result line in refs/notes/pwd/results (pwd_git.notes checks the types on read)."""

    schema: int
    time: str
    tool: str
    commit: str | None
    run_key: str
    model_key: str
    base: str
    kb_tree: str
    shards_hash: str
    build_key: str
    metrics: dict
    failed: list[str]
    failed_norm: list[str]
    control_items: list[str]
    control_failed: list[str]
    verdict: str
    baseline: dict
    reused_from: str


def family(item: BenchItem) -> Family:
    """What kind of test a benchmark item is: a probe of one concept (L1) or one statement
    (L2), a multi-hop chain item (L3), or a hand-written chain item."""
    return FAMILIES[item["template"]]

"""Structural diagnosis: failed benchmark items -> the KB nodes at fault, and what kind of fault.

Every concept and statement has probes (L1 and L2 benchmark items that test it alone). A node
whose probes fail is classified by its training data:

- data-gap: its training records are missing or thin (the data is at fault: `patch` fixes it);
- contradiction: a competing statement gives its functional predicate another object (report,
  never patch: a person must resolve it);
- not-learned: its coverage is adequate yet its probes fail (a training or capacity problem).

A failed multi-hop (L3) item is traced along its chain's statements: a hop whose probes fail
(or which has no probe and no training data) is where it breaks, and the item is charged to
that node. When every hop's probes pass, the item is a chain-break: the model answers each
fact and cannot compose them. A hop whose probes pass though its training data is missing or
thin (a lucky guess, or the fact learned from elsewhere) does not make a data gap, whose
probes fail by definition; the chain break lists it as `untaught`, and `patch` teaches it
along with the compositions. Concept probes on the path do not veto a chain break (the hops
are the statements; a concept's "kind" probe says nothing about composing them).

Confidence: each node verdict is tested against the model's own noise. `base_failure` is the
failure rate of probes of nodes whose data is adequate (smoothed with a Beta(1, 3) prior: a
trained model mostly knows its well-covered facts). For a node with f of its k probes failing,
two explanations compete: the node is not known (each probe fails as a guess does, with
probability 1 - 1/choices) or it is known and failed by noise (each fails with base_failure);
the confidence is the first one's share of the likelihood, with even priors. A chain break's
confidence is the chance that its h hop probes did not all pass by guessing, 1 - (1/choices)^h,
times the same likelihood share for its multi-hop items (those of the chain whose hops pass):
not composed (each fails as a guess does) against composed and failed by noise (base_failure).
When even adequately covered nodes fail at chance level, the model learned nothing to diagnose:
`model_learned` is False and every data verdict is moot (fix training first).

`Composition` sums up the multi-hop items whose hops all pass: how many the model answers
against what guessing gets (a one-sided binomial test). A model that answers them at chance
does not compose at all; its chain breaks are one fault of the model over a few predicate
patterns, not many faults of many chains, and diagnose says so in one line.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from pwd_git.errors import PwdError, quote
from pwd_git.evaluate.verdict import against_guessing
from pwd_git.kb.loader import Domain
from pwd_git.kb.model import KB
from pwd_git.records import family
from pwd_git.revision import at
from pwd_git.train.pipeline import Shards

DATA_GAP, CHAIN_BREAK, NOT_LEARNED, CONTRADICTION = "data-gap", "chain-break", "not-learned", "contradiction"
KINDS = (DATA_GAP, CHAIN_BREAK, NOT_LEARNED, CONTRADICTION)
PATCHED_BY_DEFAULT = (DATA_GAP, CHAIN_BREAK)
MIN_CONFIDENCE = 0.5  # what `patch` needs by default: more likely a fault than noise


@dataclass
class Finding:
    kind: str  # data-gap | chain-break | not-learned | contradiction
    node_kind: str  # concept | statement | chain
    node: str
    location: str  # path:line
    items: list[str] = field(default_factory=list)  # failed items this node explains
    root_of: list[str] = field(default_factory=list)  # L3 items whose chain breaks first at this node
    evidence: str = ""  # missing | thin | contradictory | present
    records: int = 0  # training records tracing to the node
    median: float | None = None  # KB median of training records for this node kind (None for a chain)
    conflicts: list[str] = field(default_factory=list)  # competing statements (contradictory evidence)
    untaught: list[str] = field(default_factory=list)  # chain break: hops whose probes pass without data
    probes: int = 0  # probes of this node (for a chain: its hops' statement probes)
    unprobed: int = 0  # chain break: hops with no probe (judged by their training data alone)
    tried: int = 0  # chain break: the chain's multi-hop items whose hops all pass (failed or not)
    probes_failed: int = 0
    confidence: float = 0.0  # that this is a real fault of the node, not the model's item-level noise

    def message(self) -> str:
        what = {"concept": "concept", "statement": "statement", "chain": "chain"}[self.node_kind]
        data = f"{self.records} training record(s){' of its hops' if self.node_kind == 'chain' else ''}, {self.evidence}"
        if self.evidence == "thin":
            data += f" (KB median {self.median:g})"
        if self.conflicts:
            data += f"; competing statement(s): {', '.join(self.conflicts)}"
        if self.kind == CHAIN_BREAK:
            unprobed = f"; {self.unprobed} hop(s) without a probe, judged by their data" if self.unprobed else ""
            head = (f"chain {quote(self.node)}: every hop's probe passes ({self.probes} hop probe(s){unprobed}) but "
                    f"{len(self.items)} of its {max(self.tried, len(self.items))} multi-hop item(s) fail; add "
                    "composition demonstrations")
            if self.untaught:
                head += f", and teach {', '.join(self.untaught)} (no or thin training data)"
        elif self.kind == DATA_GAP:
            head = f"{what} {quote(self.node)} lacks training data"
            if self.probes:
                head += f" and {self.probes_failed} of its {self.probes} probe(s) fail"
        elif self.kind == CONTRADICTION:
            head = (f"{what} {quote(self.node)} contradicts {', '.join(self.conflicts)} (a functional predicate with "
                    "two objects); resolve it in the KB")
        else:
            head = (f"{what} {quote(self.node)} is not learned though its data is adequate ({self.probes_failed} of "
                    f"{self.probes} probe(s) fail); more epochs, more surface forms or a larger model")
        return f"{head}; {data}; explains {len(self.items)} failed item(s); confidence {self.confidence:.2f}"

    def as_dict(self) -> dict:
        return {**vars(self), "message": self.message()}


@dataclass
class Composition:
    """The multi-hop items whose every hop passes: does the model compose what it knows?"""

    items: int = 0
    passed: int = 0
    chance: float = 0.0  # what guessing gets on them (mean of 1 / choices)
    p_value: float = 1.0  # that guessing would pass at least this many (one-sided binomial)
    patterns: int = 0  # predicate patterns of the chain breaks
    alpha: float = 0.05  # test.alpha of the diagnosed revision
    MIN_ITEMS = 10  # fewer cannot tell composing from guessing

    @property
    def at_chance(self) -> bool:
        return self.items >= self.MIN_ITEMS and self.p_value >= self.alpha

    def message(self) -> str:
        share = self.passed / self.items if self.items else 0.0
        head = (f"{self.passed} of the {self.items} multi-hop item(s) whose hops all pass are answered ({share:.0%}; "
                f"guessing gets {self.chance:.0%}, p={self.p_value:.2f})")
        if self.at_chance:
            return (f"the model does not compose: {head}. Its chain breaks are one fault over {self.patterns} "
                    "predicate pattern(s), which `patch` demonstrates once each; if they stay at chance, "
                    "a model this size may not compose at all (more epochs or a larger base)")
        return f"composition: {head}"

    def as_dict(self) -> dict:
        return {"items": self.items, "passed": self.passed, "chance": round(self.chance, 4),
                "p_value": round(self.p_value, 6), "patterns": self.patterns, "at_chance": self.at_chance}


@dataclass
class Diagnosis:
    commit: str
    run_key: str
    findings: list[Finding]
    failed_items: list[str]
    metrics: dict
    base_failure: float = 0.0  # probes of adequately covered nodes that fail: the model's noise
    model_learned: bool = True  # False: adequately covered probes fail at chance level
    composition: Composition = field(default_factory=Composition)

    @property
    def clean(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        return {kind: sum(f.kind == kind for f in self.findings) for kind in KINDS}

    def patchable(self, include: tuple[str, ...] = PATCHED_BY_DEFAULT, min_confidence: float = MIN_CONFIDENCE,
                  ) -> list[Finding]:
        """The findings `patch` repairs: by default the data's faults, every data gap (missing or
        thin data whose probes fail) and the chain breaks that beat the model's noise; `include`
        adds not-learned nodes that beat it. Contradictions never."""
        return [f for f in self.findings if f.kind in include and f.kind != CONTRADICTION
                and (f.kind == DATA_GAP or f.confidence >= min_confidence)]


def result_for(domain: Domain, commit: str, key: str, *, run_if_missing: bool,
               log: Callable[[str], None], on_step: Callable[[int, int, float], None] | None = None) -> dict:
    """The latest note line on `commit` for `key`; runs `test` when there is none (if allowed)."""
    entries = at(domain, commit).results()
    mine = [e for e in entries if e.get("run_key") == key]
    if mine:
        return mine[-1]
    if entries:
        keys = sorted({quote(e.get("run_key")) for e in entries})
        raise PwdError(f"the results on {commit[:10]} are from other runs ({', '.join(keys)}), not {quote(key)}",
                       hint="run `git pwd test --rev ...` with this pwd.yaml, or pass --run-key with one of those")
    if not run_if_missing:
        raise PwdError(f"no results recorded on {commit[:10]}", hint=f"run `git pwd test --rev {commit[:10]}` first")
    log(f"no results on {commit[:10]} yet: running the tests first")
    from pwd_git.evaluate.run import evaluate

    return evaluate(domain, commit, compare=False, log=log, on_step=on_step).entry


def training_counts(shards: Shards) -> tuple[Counter, Counter]:
    """Training records per concept (L1 and patches) and per statement (L2, L3, patches)."""
    concepts, statements = Counter(), Counter()
    for rec in shards.records("train"):
        traces = rec["traces"]
        if rec["level"] in ("L1", "patch"):
            concepts.update(traces.get("concepts") or [])
        statements.update(traces.get("statements") or [])
    return concepts, statements


def diagnose(domain: Domain, rev: str = "HEAD", *, key: str | None = None, run_if_missing: bool = True,
             log: Callable[[str], None] = lambda _m: None,
             on_step: Callable[[int, int, float], None] | None = None) -> Diagnosis:
    """REV's failed items traced to KB nodes; runs the tests first (training, reported through
    `log` and `on_step` as `test` reports it) when REV has no result and `run_if_missing`."""
    revision = at(domain, rev)
    commit, kb, shards = revision.commit, revision.kb, revision.shards
    key = key or revision.run_key
    entry = result_for(domain, commit, key, run_if_missing=run_if_missing, log=log, on_step=on_step)
    failed = set(entry.get("failed", []))
    items = shards.records("bench")
    findings, base, learned, composition = classify(kb, items, failed, training_counts(shards))
    composition.alpha = revision.settings.test.alpha
    return Diagnosis(commit, key, findings, sorted(failed), entry.get("metrics", {}), base, learned, composition)


def find_gaps(kb: KB, items: list[dict], failed: set[str], counts: tuple[Counter, Counter]) -> list[Finding]:
    """The findings alone (see `classify`)."""
    return classify(kb, items, failed, counts)[0]


def classify(kb: KB, items: list[dict], failed: set[str], counts: tuple[Counter, Counter],
             ) -> tuple[list[Finding], float, bool, Composition]:
    """(findings ranked data gaps first, then by failed items explained; the model's base failure
    rate on adequately covered probes; whether the model learned anything beyond chance; how
    it does on the multi-hop items whose hops it knows)."""
    probes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item in items:
        if family(item) == "concept-probe":
            probes[("concept", item["traces"]["concepts"][0])].append(item["id"])
        elif family(item) == "statement-probe":
            probes[("statement", item["traces"]["statements"][0])].append(item["id"])
    evidence = _Evidence(kb, counts)
    base, learned = _base_failure(probes, failed, evidence)
    found: dict[tuple[str, str], Finding] = {}

    def finding(node_kind: str, node: str) -> Finding:
        if (node_kind, node) not in found:
            table = {"concept": kb.concepts, "statement": kb.statements, "chain": kb.chains}[node_kind]
            f = found[(node_kind, node)] = Finding("", node_kind, node, str(table[node].loc))
            evidence.fill(f)
            mine = probes.get((node_kind, node), [])
            f.probes, f.probes_failed = len(mine), sum(p in failed for p in mine)
        return found[(node_kind, node)]

    for (node_kind, node), mine in probes.items():
        if node in (kb.concepts if node_kind == "concept" else kb.statements):
            for probe in mine:
                if probe in failed:
                    finding(node_kind, node).items.append(probe)
    composed: list[tuple[dict, bool]] = []  # multi-hop items whose hops all pass, and whether they pass
    tried: Counter = Counter()
    for item in items:
        if item["level"] != "L3" or not item["traces"].get("chain"):
            continue
        chain = kb.chains.get(item["traces"]["chain"])
        if chain is None or any(s not in kb.statements for s in chain.steps):
            continue  # a chain (or hop) that no longer exists at this revision: nothing to trace
        breaks = [sid for sid in chain.steps if any(p in failed for p in probes.get(("statement", sid), []))
                  or (not probes.get(("statement", sid)) and evidence.lacking("statement", sid))]
        if not breaks:
            composed.append((item, item["id"] not in failed))
            tried[chain.id] += 1
        if item["id"] not in failed:
            continue
        if breaks:
            for i, sid in enumerate(breaks):
                f = finding("statement", sid)
                f.items.append(item["id"])
                if i == 0:
                    f.root_of.append(item["id"])
        else:
            f = finding("chain", chain.id)
            f.items.append(item["id"])
            f.probes = sum(len(probes.get(("statement", s), [])) for s in chain.steps)
            f.unprobed = sum(not probes.get(("statement", s)) for s in chain.steps)
            f.untaught = [s for s in chain.steps if evidence.lacking("statement", s)]
    for f in found.values():
        f.tried = tried[f.node] if f.node_kind == "chain" else 0
        _judge(f, base)
    rank = {DATA_GAP: 0, CHAIN_BREAK: 1, NOT_LEARNED: 2, CONTRADICTION: 3}
    ranked = sorted(found.values(), key=lambda f: (rank[f.kind], -len(f.items), -f.confidence, f.node))
    return ranked, base, learned, _composition(kb, composed, ranked)


def _composition(kb: KB, composed: list[tuple[dict, bool]], findings: list[Finding]) -> Composition:
    passed, chance, p_value = against_guessing(composed)
    patterns = {tuple(kb.statements[s].predicate for s in kb.chains[f.node].steps)
                for f in findings if f.kind == CHAIN_BREAK}
    return Composition(len(composed), passed, chance, p_value, len(patterns))


class _Evidence:
    """How much training data teaches each node, against the KB's median for its kind."""

    def __init__(self, kb: KB, counts: tuple[Counter, Counter]):
        self.kb = kb
        self.counts = {"concept": counts[0], "statement": counts[1]}
        self.medians = {kind: statistics.median([self.counts[kind][n] for n in table] or [0])
                        for kind, table in (("concept", kb.concepts), ("statement", kb.statements))}
        self.competing: dict[tuple[str, str], list[str]] = defaultdict(list)
        for st in kb.statements.values():
            self.competing[(st.subject, st.predicate)].append(st.id)

    def fill(self, f: Finding) -> None:
        if f.node_kind == "chain":
            f.records = sum(self.counts["statement"][s] for s in self.kb.chains[f.node].steps)
            f.evidence = "present"  # the facts are taught; the composition is not
            return
        f.records, f.median = self.counts[f.node_kind][f.node], self.medians[f.node_kind]
        if f.node_kind == "statement":
            st = self.kb.statements[f.node]
            declared = (self.kb.config.get("predicates") or {}).get(st.predicate)
            if declared is None or self.kb.predicate_is_functional(st.predicate):
                f.conflicts = [s for s in self.competing[(st.subject, st.predicate)] if s != f.node]
        f.evidence = ("missing" if f.records == 0 else "contradictory" if f.conflicts
                      else "thin" if f.records < 0.5 * f.median else "present")

    def lacking(self, node_kind: str, node: str) -> bool:
        """Missing or thin training data (a hop that was never taught cannot be composed)."""
        records = self.counts[node_kind][node]
        return records == 0 or records < 0.5 * self.medians[node_kind]


def _base_failure(probes: dict[tuple[str, str], list[str]], failed: set[str], evidence: _Evidence,
                  ) -> tuple[float, bool]:
    """The failure rate of probes of adequately covered nodes (smoothed), and whether the model
    does better than guessing on them."""
    from pwd_git.build.generate import N_CHOICES

    adequate = [p for (kind, node), mine in probes.items() if not evidence.lacking(kind, node) for p in mine]
    fails = sum(p in failed for p in adequate)
    base = (fails + 1) / (len(adequate) + 4)
    chance_fail = 1 - 1 / N_CHOICES
    learned = len(adequate) < 2 or fails / len(adequate) < chance_fail - 0.1
    return base, learned


def _judge(f: Finding, base: float) -> None:
    """Kind and confidence of a finding (see the module docstring)."""
    from pwd_git.build.generate import N_CHOICES

    guess_fail = 1 - 1 / N_CHOICES

    def not_noise(failed: int, passed: int) -> float:
        unknown = guess_fail**failed * (1 - guess_fail) ** passed
        noise = base**failed * (1 - base) ** passed
        return unknown / (unknown + noise)

    if f.node_kind == "chain":
        f.kind = CHAIN_BREAK
        hops = max(1, f.probes)
        failed = len(f.items)
        f.confidence = round((1 - (1 / N_CHOICES) ** hops) * not_noise(failed, max(0, f.tried - failed)), 4)
        return
    f.kind = (CONTRADICTION if f.evidence == "contradictory" else DATA_GAP if f.evidence in ("missing", "thin")
              else NOT_LEARNED)
    f.confidence = round(not_noise(f.probes_failed, f.probes - f.probes_failed), 4)

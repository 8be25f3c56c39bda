"""Structural diagnosis: failed benchmark items -> concept gaps and reasoning-chain breaks.

For each failed L3 item we look at the probes on its path, hop by hop: a failing probe is a
concept gap at that node (the earliest on the path is the root); all probes passing while
the chain item fails is a chain break. Failed probes outside failed chains are concept gaps
too. Each implicated node gets its data evidence: how many training records teach it.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from pwd_git.errors import PwdError, quote
from pwd_git.kb.loader import Domain
from pwd_git.kb.model import KB
from pwd_git.records import family
from pwd_git.revision import at
from pwd_git.train.pipeline import Shards

CONCEPT_GAP, CHAIN_BREAK = "concept-gap", "chain-break"


@dataclass
class Finding:
    kind: str  # concept-gap | chain-break
    node_kind: str  # concept | statement | chain
    node: str
    location: str  # path:line
    items: list[str] = field(default_factory=list)  # failed items this node explains
    root_of: list[str] = field(default_factory=list)  # L3 items where this node is the earliest failing hop
    evidence: str = ""  # missing | thin | contradictory | present
    records: int = 0  # training records tracing to the node
    median: float = 0.0  # KB median of training records for this node kind
    conflicts: list[str] = field(default_factory=list)  # competing statements (contradictory evidence)

    def message(self) -> str:
        what = {"concept": "concept", "statement": "statement", "chain": "chain"}[self.node_kind]
        if self.kind == CHAIN_BREAK:
            head = f"chain {quote(self.node)}: every hop's probe passes but the multi-hop item fails"
        else:
            head = f"{what} {quote(self.node)} is not learned (its probe fails)"
        data = f"{self.records} training record(s), {self.evidence}"
        if self.evidence == "thin":
            data += f" (KB median {self.median:g})"
        if self.conflicts:
            data += f"; competing statement(s): {', '.join(self.conflicts)}"
        return f"{head}; {data}; explains {len(self.items)} failed item(s)"

    def as_dict(self) -> dict:
        return {**vars(self), "message": self.message()}


@dataclass
class Diagnosis:
    commit: str
    run_key: str
    findings: list[Finding]
    failed_items: list[str]
    metrics: dict

    @property
    def clean(self) -> bool:
        return not self.findings


def result_for(domain: Domain, commit: str, key: str, *, run_if_missing: bool,
               log: Callable[[str], None]) -> dict:
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

    return evaluate(domain, commit, compare=False, log=log).entry


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
             log: Callable[[str], None] = lambda _m: None) -> Diagnosis:
    revision = at(domain, rev)
    commit, kb, shards = revision.commit, revision.kb, revision.shards
    key = key or revision.run_key
    entry = result_for(domain, commit, key, run_if_missing=run_if_missing, log=log)
    failed = set(entry.get("failed", []))
    items = shards.records("bench")
    findings = find_gaps(kb, items, failed, training_counts(shards))
    return Diagnosis(commit, key, findings, sorted(failed), entry.get("metrics", {}))


def find_gaps(kb: KB, items: list[dict], failed: set[str], counts: tuple[Counter, Counter]) -> list[Finding]:
    concept_probes: dict[str, list[str]] = defaultdict(list)
    statement_probes: dict[str, list[str]] = defaultdict(list)
    for item in items:
        if family(item) == "concept-probe":
            concept_probes[item["traces"]["concepts"][0]].append(item["id"])
        elif family(item) == "statement-probe":
            statement_probes[item["traces"]["statements"][0]].append(item["id"])
    found: dict[tuple[str, str], Finding] = {}

    def finding(kind: str, node_kind: str, node: str) -> Finding:
        if (node_kind, node) not in found:
            loc = {"concept": kb.concepts, "statement": kb.statements, "chain": kb.chains}[node_kind][node].loc
            found[(node_kind, node)] = Finding(kind, node_kind, node, str(loc))
        return found[(node_kind, node)]

    explained: set[str] = set()
    for item in items:
        if item["level"] != "L3" or item["id"] not in failed or not item["traces"].get("chain"):
            continue
        chain = kb.chains.get(item["traces"]["chain"])
        if chain is None:
            continue
        failing_hops = []
        for sid in chain.steps:
            st = kb.statements[sid]
            for node_kind, node, probes in (("concept", st.subject, concept_probes.get(st.subject, [])),
                                            ("statement", sid, statement_probes.get(sid, [])),
                                            ("concept", st.object, concept_probes.get(st.object or "", []))):
                if any(p in failed for p in probes) and (node_kind, node) not in failing_hops:
                    failing_hops.append((node_kind, node))
        if failing_hops:
            for i, (node_kind, node) in enumerate(failing_hops):
                f = finding(CONCEPT_GAP, node_kind, node)
                f.items.append(item["id"])
                if i == 0:
                    f.root_of.append(item["id"])
        else:
            finding(CHAIN_BREAK, "chain", chain.id).items.append(item["id"])
        explained.add(item["id"])
    for node_kind, by_node in (("concept", concept_probes), ("statement", statement_probes)):
        for node, probes in by_node.items():
            for probe in probes:
                if probe in failed:
                    f = finding(CONCEPT_GAP, node_kind, node)
                    if probe not in f.items:
                        f.items.append(probe)
    _add_evidence(kb, list(found.values()), counts)
    return sorted(found.values(), key=lambda f: (-len(f.items), f.kind, f.node))


def _add_evidence(kb: KB, findings: list[Finding], counts: tuple[Counter, Counter]) -> None:
    concept_counts, statement_counts = counts
    medians = {
        "concept": statistics.median([concept_counts[c] for c in kb.concepts] or [0]),
        "statement": statistics.median([statement_counts[s] for s in kb.statements] or [0]),
    }
    competing = defaultdict(list)
    for st in kb.statements.values():
        competing[(st.subject, st.predicate)].append(st.id)
    for f in findings:
        if f.node_kind == "chain":
            f.records = sum(statement_counts[s] for s in kb.chains[f.node].steps)
            f.evidence = "present"  # the facts are taught; the composition is not
            continue
        f.records = (concept_counts if f.node_kind == "concept" else statement_counts)[f.node]
        f.median = medians[f.node_kind]
        if f.node_kind == "statement":
            st = kb.statements[f.node]
            declared = (kb.config.get("predicates") or {}).get(st.predicate)
            if declared is None or kb.predicate_is_functional(st.predicate):
                f.conflicts = [s for s in competing[(st.subject, st.predicate)] if s != f.node]
        if f.records == 0:
            f.evidence = "missing"
        elif f.conflicts:
            f.evidence = "contradictory"
        elif f.records < 0.5 * f.median:
            f.evidence = "thin"
        else:
            f.evidence = "present"

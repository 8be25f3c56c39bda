"""SARIF 2.1.0 output, so forges annotate the YAML lines of a diagnosis in pull requests."""

from __future__ import annotations

from pwd_git import __version__
from pwd_git.repair.diagnose import CHAIN_BREAK, CONTRADICTION, DATA_GAP, NOT_LEARNED, PATCHED_BY_DEFAULT, Diagnosis

RULES = {
    DATA_GAP: "A KB node whose training data is missing or thin, and whose probes fail: `git pwd patch` adds data.",
    CHAIN_BREAK: "Every hop of a reasoning chain is learned but the multi-hop item fails: teach composition.",
    NOT_LEARNED: "A KB node with adequate training data whose probes fail: a training or capacity problem.",
    CONTRADICTION: "Two statements give a functional predicate different objects: resolve it in the KB.",
}


def to_sarif(diagnosis: Diagnosis, prefix: str = "") -> dict:
    results = []
    for f in diagnosis.findings:
        path, _, line = f.location.rpartition(":")
        uri = f"{prefix}/{path}" if prefix else path
        results.append({
            "ruleId": f.kind,
            "level": "error" if f.kind in PATCHED_BY_DEFAULT or f.kind == CONTRADICTION else "warning",
            "message": {"text": f.message()},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri},
                                                "region": {"startLine": int(line or 1)}}}],
            "properties": {"node": f.node, "nodeKind": f.node_kind, "evidence": f.evidence, "records": f.records,
                           "items": f.items, "confidence": f.confidence},
        })
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "pwd-git", "version": __version__,
                                "rules": [{"id": rule, "shortDescription": {"text": text}} for rule, text in RULES.items()]}},
            "automationDetails": {"id": f"pwd-git/diagnose/{diagnosis.commit}"},
            "results": results,
        }],
    }

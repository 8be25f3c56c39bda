"""SARIF 2.1.0 output, so forges annotate the YAML lines of a diagnosis in pull requests."""

from __future__ import annotations

from pwd_git import __version__
from pwd_git.repair.diagnose import CHAIN_BREAK, CONCEPT_GAP, Diagnosis

RULES = {
    CONCEPT_GAP: "A KB node the model did not learn: its probe fails. Add or strengthen its training data.",
    CHAIN_BREAK: "Every hop of a reasoning chain is known but the multi-hop item fails: teach composition.",
}


def to_sarif(diagnosis: Diagnosis, prefix: str = "") -> dict:
    results = []
    for f in diagnosis.findings:
        path, _, line = f.location.rpartition(":")
        uri = f"{prefix}/{path}" if prefix else path
        results.append({
            "ruleId": f.kind,
            "level": "error" if f.root_of or f.kind == CHAIN_BREAK else "warning",
            "message": {"text": f.message()},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri},
                                                "region": {"startLine": int(line or 1)}}}],
            "properties": {"node": f.node, "nodeKind": f.node_kind, "evidence": f.evidence, "records": f.records,
                           "items": f.items},
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

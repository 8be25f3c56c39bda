"""The repair loop end to end on the example domain: starve nodes in a commit, see `test`
fail, `diagnose` name exactly those nodes, `patch` + retrain fix what broke."""

from __future__ import annotations

import json
import math
import re

import pytest

from pwd_git import notes
from pwd_git.git import Repo
from pwd_git.kb.loader import Domain
from pwd_git.train.pipeline import shards_for
from tests.conftest import git, run_cli

pytestmark = pytest.mark.slow


def _passing(root, rev="HEAD") -> dict[str, bool]:
    entry = notes.read(Repo.discover(root), rev)[-1]
    items = shards_for(Domain.find(root), git(root, "rev-parse", rev)).records("bench")
    return {i["id"]: i["id"] not in set(entry["failed"]) for i in items}


def test_starve_diagnose_patch_retrain(trained_example, tmp_path, monkeypatch):
    example, model_cache_dir = trained_example
    monkeypatch.setenv("PWD_GIT_CACHE", str(model_cache_dir))
    root = tmp_path / "loop"
    git(tmp_path, "clone", "-q", str(example), str(root))
    git(example, "push", "-q", str(root), "refs/notes/*:refs/notes/*")
    before = _passing(root)
    items = {i["id"]: i for i in shards_for(Domain.find(root), "HEAD").records("bench")}

    # Starve two concepts with the probed statements under them (their own probes then have no
    # training data at all), and four statements whose probes pass, one the last hop of a chain
    # (one whose multi-hop item passes if there is one: which do depends on the CPU's arithmetic).
    # The starvation is controlled through the KB, not through luck: the guarded concepts are the
    # two whose own probes all pass and that have the most of them, so losing all their training
    # data costs more than the one item of slack the thresholds below allow, on every version.
    probes_of: dict[str, list[str]] = {}
    for k, i in items.items():
        if i["template"].startswith("probe.") and (i["level"] == "L1" or i["traces"]["statements"][0].startswith(
                i["traces"]["concepts"][0] + ".")):
            probes_of.setdefault(i["traces"]["concepts"][0], []).append(k)
    concepts = sorted((c for c, ks in probes_of.items() if all(before[k] for k in ks)),
                      key=lambda c: (-len(probes_of[c]), c))[:2]
    own = sorted({s for c in concepts for k in probes_of[c] for s in items[k]["traces"]["statements"]})
    probe_of = {i["traces"]["statements"][0]: k for k, i in items.items() if i["template"] == "probe.l2.complete"}
    chain_item = next(i for k, i in sorted(items.items(), key=lambda kv: (not before[kv[0]], kv[0]))
                      if i["template"] == "chain.l3.hops" and before[probe_of[i["traces"]["statements"][-1]]]
                      and i["traces"]["statements"][-1] not in own)
    bridge = chain_item["traces"]["statements"][-1]
    others = [s for s, k in sorted(probe_of.items()) if before[k] and s != bridge and s not in own][:3]
    starved = [*concepts, *own, bridge, *others]
    # The user guards these concepts with thresholds at today's accuracy less one item's worth (so
    # one multi-hop item wobbling under fine-tuning is tolerated), as one pins the functions a change
    # must not break. (The paired test alone cannot single out ten starved nodes: two from-scratch
    # runs of the tiny model on nearly equal data disagree on about a third of the items.)
    metrics = notes.read(Repo.discover(root), "HEAD")[-1]["metrics"]["concepts"]
    guarded = {f"concept:{c}": math.floor(1000 * (round(metrics[c]["acc"] * metrics[c]["n"]) - 1) / metrics[c]["n"])
               / 1000 for c in concepts}
    config = (root / "pwd.yaml").read_text().replace("build:\n", f"build:\n  holdout: {json.dumps(starved)}\n", 1)
    (root / "pwd.yaml").write_text(config.replace("test: {", f"test: {{thresholds: {json.dumps(guarded)}, ", 1))
    assert run_cli("build", "-q", cwd=root).code == 0
    git(root, "commit", "-qam", "starve two concepts and four statements")
    starved_commit = git(root, "rev-parse", "HEAD")

    # `test` fails on the starved commit and lists what broke against the unstarved parent.
    tested = run_cli("test", "--baseline", "HEAD~1", cwd=root)
    assert tested.code == 1 and "below the threshold" in tested.out, tested.output
    assert re.search(r"regressed: L[123] [0-9a-f]{12}  concepts/\S+\.yaml:\d+  ", tested.out), tested.out

    # Every starved node whose probe now fails is named, as a data gap with no training data,
    # and nothing else is reported as missing data. (A starved node can still pass its probe by luck.)
    starved_set = set(starved)
    now = _passing(root)
    failing = {n for n in starved_set for k, i in items.items() if i["template"].startswith("probe.") and not now[k]
               and n in (*i["traces"]["statements"], *(i["traces"]["concepts"] if i["level"] == "L1" else []))}
    diagnosis = json.loads(run_cli("diagnose", "--format", "json", cwd=root).out)
    missing = {f["node"] for f in diagnosis["findings"] if f["evidence"] == "missing"}
    assert len(failing) >= 2 and failing == {f["node"] for f in diagnosis["findings"]
                                             if f["evidence"] == "missing" and f["probes_failed"]}
    assert missing <= starved_set  # a starved hop of a failed chain is charged too, though its probe passed
    assert all(f["kind"] == "data-gap" for f in diagnosis["findings"] if f["node"] in starved_set)

    # The probes the starvation broke: passed before, fail now, and test a starved node.
    broke = {k for k, ok in now.items() if not ok and before.get(k) and items[k]["template"].startswith("probe.")
             and starved_set & {*items[k]["traces"]["concepts"], *items[k]["traces"]["statements"]}}
    assert broke
    # Patch the data gaps (they rank first), what the starvation broke. The composition
    # demonstrations for chain breaks that the default patch adds tilt this 2-layer model (on
    # the example, transformers 5.24: 30 of 48 passing probes kept, 8 of 8 broken ones fixed); they
    # are measured in benchmarks/diagnosis_quality.py, not asserted here.
    gaps = sum(f["kind"] == "data-gap" for f in diagnosis["findings"])
    patch = json.loads(run_cli("patch", "--train-mode", "continue", "--limit", str(gaps), "--format", "json",
                               cwd=root).out)
    assert {p["kind"] for p in patch["patched"]} == {"data-gap"}
    patched = {p["node"] for p in patch["patched"]}
    assert failing <= patched
    assert broke <= set(patch["expected_flips"])
    git(root, "checkout", "-q", patch["branch"])
    assert "mode: continue" in (root / "pwd.yaml").read_text()

    # Fine-tuned from the starved commit's model on the patch plus replay: most of what the
    # starvation broke passes again, most of what passed on the starved commit still passes, and
    # the paired test finds no significant regression. Measured with transformers 5.24: 8 of 8
    # fixed, 35 of 48 kept, 14 regressed against 13 fixed; on an AMD EPYC with generator 19: 5 of
    # 7 fixed, 56 of 59 kept, 3 regressed against 13 fixed. "Most" is a majority: with a handful
    # of broken probes a higher share would be decided by one item's noise (docs/performance.md,
    # seed agreement). The guarded concepts' thresholds also
    # count their multi-hop items, which a data patch does not target, so they are not asserted
    # after the repair (the paper-level targets are measured in benchmarks/diagnosis_quality.py).
    repaired = run_cli("run", "--baseline", starved_commit, "--format", "json", cwd=root)
    entry = json.loads(repaired.out)
    after = {k: k not in set(entry["failed"]) for k in items}
    fixed = {k for k in broke if after[k]}
    passed_starved = {k for k, ok in now.items() if ok and items[k]["template"].startswith("probe.")}
    still = {k for k in passed_starved if after[k]}
    gate = entry["baseline"]
    summary = (len(broke), len(fixed), len(passed_starved), len(still), len(gate["regressed"]), len(gate["fixed"]),
               gate["p_value"], entry["metrics"]["levels"])
    assert 2 * len(fixed) > len(broke), summary
    assert len(still) >= 0.7 * len(passed_starved), summary
    assert not (len(gate["regressed"]) > len(gate["fixed"]) and gate["p_value"] < 0.05), summary
    assert after_diagnosis_is_clean_of(root, patched)


def after_diagnosis_is_clean_of(root, patched: set[str]) -> bool:
    """No patched node lacks training data any more, and the diagnosis is of the patch commit."""
    after = json.loads(run_cli("diagnose", "--format", "json", cwd=root).out)
    return (not [f["node"] for f in after["findings"] if f["evidence"] == "missing" and f["node"] in patched]
            and after["commit"] == git(root, "rev-parse", "HEAD"))

"""`diagnose` and `patch`: structural diagnosis, data patches on a branch, pull requests."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from pwd_git import notes
from pwd_git.git import Repo
from pwd_git.kb.loader import Domain, load_worktree
from pwd_git.repair.diagnose import CHAIN_BREAK, CONTRADICTION, DATA_GAP, NOT_LEARNED, classify, diagnose, find_gaps
from pwd_git.repair.examples import ExampleWriter
from pwd_git.repair.patch import write_patch
from tests.conftest import git, run_cli, small_domain, snapshot, write

TOKEN = "ghp_test-secret-token-123"


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One model cache for the module: the small domain trains once, later runs are cache hits."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture
def really_tested(tmp_path, monkeypatch, shared_cache):
    """The small domain with a real (weak) model run on HEAD: it has failed items to diagnose."""
    monkeypatch.setenv("PWD_GIT_CACHE", str(shared_cache))
    root = small_domain(tmp_path / "d")
    assert run_cli("run", "-q", cwd=root).code in (0, 1)
    failed = notes.read(Repo.discover(root), "HEAD")[-1]["failed"]
    assert failed, "a two-epoch model should fail some items"
    return root


@pytest.fixture
def tested(tmp_path, monkeypatch, shared_cache):
    """The small domain with one concept (spoke) and its statement held out of training, and a
    result on HEAD in which their probes and the chain through them fail: what fails is set
    through the KB, not by how a model happened to train (which differs between transformers
    versions), so there is always a data gap to patch."""
    from tests.histories import record_results

    monkeypatch.setenv("PWD_GIT_CACHE", str(shared_cache))
    root = small_domain(tmp_path / "d")
    (root / "pwd.yaml").write_text((root / "pwd.yaml").read_text() + "build: {holdout: [spoke, spoke.is-part-of.wheel]}\n")
    assert run_cli("build", "-q", cwd=root).code == 0
    git(root, "commit", "-qam", "hold out the spoke")
    record_results(root, [git(root, "rev-parse", "HEAD")], lambda c, item: "spoke" in item["traces"]["concepts"])
    return root


# --- diagnosis logic on a hand-made KB ----------------------------------------------------------

_PART_OF = "name: k\npredicates: {is part of: {functional: false}}\n"


def _load_kb(tmp_path, files: dict[str, str], config: str = _PART_OF):
    """The KB of `files` (KB path -> text) and `config` as pwd.yaml, in a fresh repo; it validates."""
    root = tmp_path / "k"
    root.mkdir()
    git(root, "init", "-q")
    write(root, {"pwd.yaml": config, **files})
    kb, diags = load_worktree(Domain.find(root))
    assert not [d for d in diags if d.severity == "error"], diags
    return kb


def _kb(tmp_path):
    files = {}
    for c in "abcd":
        files[f"concepts/{c}.yaml"] = f"id: {c}\nterm: {c}\ntype: t\ndefinition: The {c}.\n"
    files["concepts/a.yaml"] += "relations:\n  - {predicate: is part of, object: b}\n"
    files["concepts/b.yaml"] += "relations:\n  - {predicate: is part of, object: c}\n"
    files["chains/abc.yaml"] = "id: abc\ntitle: t\nsplit: test\nsteps: [a.is-part-of.b, b.is-part-of.c]\n"
    return _load_kb(tmp_path, files)


def _items():
    def probe(i, template, concepts=(), statements=()):
        return {"id": i, "level": "L1" if "l1" in template else "L2", "template": template,
                "traces": {"concepts": list(concepts), "statements": list(statements), "chain": None}}

    return [
        probe("pa", "probe.l1.describe", ["a"]), probe("pb", "probe.l1.describe", ["b"]),
        probe("pc", "probe.l1.describe", ["c"]),
        probe("sab", "probe.l2.complete", ["a", "b"], ["a.is-part-of.b"]),
        probe("sbc", "probe.l2.complete", ["b", "c"], ["b.is-part-of.c"]),
        {"id": "chain", "level": "L3", "template": "chain.l3.hops",
         "traces": {"concepts": ["a", "b", "c"], "statements": ["a.is-part-of.b", "b.is-part-of.c"], "chain": "abc"}},
    ]


def test_failing_bridge_probe_without_data_is_the_root_data_gap(tmp_path):
    kb = _kb(tmp_path)
    counts = (Counter({"a": 4, "b": 4, "c": 4, "d": 4}), Counter({"a.is-part-of.b": 5}))
    findings = find_gaps(kb, _items(), {"chain", "sbc"}, counts)
    assert [(f.kind, f.node) for f in findings] == [(DATA_GAP, "b.is-part-of.c")]
    gap = findings[0]
    assert gap.root_of == ["chain"] and sorted(gap.items) == ["chain", "sbc"]
    assert gap.evidence == "missing" and gap.records == 0
    assert gap.location == "concepts/b.yaml:6"


def test_all_probes_passing_while_the_chain_fails_is_a_chain_break(tmp_path):
    kb = _kb(tmp_path)
    counts = (Counter({"a": 4, "b": 4, "c": 4}), Counter({"a.is-part-of.b": 5, "b.is-part-of.c": 5}))
    findings = find_gaps(kb, _items(), {"chain"}, counts)
    assert [(f.kind, f.node_kind, f.node) for f in findings] == [(CHAIN_BREAK, "chain", "abc")]
    assert findings[0].location.startswith("chains/abc.yaml:")
    assert "(2 hop probe(s)) but" in findings[0].message() and "10 training record(s) of its hops" in findings[0].message()
    # a taught hop without a probe (its answer was in its question) is said to be judged by its data
    [brk] = find_gaps(kb, [i for i in _items() if i["id"] != "sbc"], {"chain"}, counts)
    assert (brk.kind, brk.probes, brk.unprobed) == (CHAIN_BREAK, 1, 1)
    assert "(1 hop probe(s); 1 hop(s) without a probe, judged by their data) but" in brk.message()


def test_evidence_thin_versus_present_and_probes_outside_chains(tmp_path):
    kb = _kb(tmp_path)
    counts = (Counter({"a": 1, "b": 8, "c": 8, "d": 8}), Counter({"a.is-part-of.b": 5, "b.is-part-of.c": 5}))
    findings = {f.node: f for f in find_gaps(kb, _items(), {"pa", "pc"}, counts)}
    assert set(findings) == {"a", "c"}
    assert findings["a"].evidence == "thin" and findings["c"].evidence == "present"
    assert findings["a"].kind == DATA_GAP and findings["c"].kind == NOT_LEARNED
    assert not any(f.root_of for f in findings.values())


def test_a_failing_concept_probe_on_the_path_does_not_veto_a_chain_break(tmp_path):
    """The hops (statements) are learned and taught; a concept's own probe failing is that
    concept's finding, and the multi-hop failure is still a chain break."""
    kb = _kb(tmp_path)
    counts = (Counter({"a": 4, "b": 4, "c": 4}), Counter({"a.is-part-of.b": 5, "b.is-part-of.c": 5}))
    findings = {(f.kind, f.node) for f in find_gaps(kb, _items(), {"chain", "pb"}, counts)}
    assert findings == {(CHAIN_BREAK, "abc"), (NOT_LEARNED, "b")}


def test_a_hop_without_data_whose_probe_passes_is_taught_by_the_chain_break_not_a_data_gap(tmp_path):
    """A data gap's probes fail; a hop whose probe passes without training data (luck, or learned
    from elsewhere) is named by the chain break, and its patch teaches the hop too."""
    kb = _kb(tmp_path)
    counts = (Counter({"a": 4, "b": 4, "c": 4}), Counter({"a.is-part-of.b": 5, "b.is-part-of.c": 0}))
    [brk] = find_gaps(kb, _items(), {"chain"}, counts)
    assert (brk.kind, brk.node, brk.items, brk.untaught) == (CHAIN_BREAK, "abc", ["chain"], ["b.is-part-of.c"])
    assert "b.is-part-of.c" in brk.message()
    examples, _ = ExampleWriter(kb).for_finding(brk)
    assert any(ex["traces"]["statements"] == ["b.is-part-of.c"] for ex in examples)
    # without a probe, missing data is where the chain breaks
    unprobed = [i for i in _items() if i["id"] != "sbc"]
    [gap] = find_gaps(kb, unprobed, {"chain"}, counts)
    assert (gap.kind, gap.node, gap.items, gap.probes) == (DATA_GAP, "b.is-part-of.c", ["chain"], 0)


def test_confidence_is_measured_against_the_models_noise(tmp_path):
    """The same failing probe is strong evidence from a model that passes the other adequately
    covered probes, and none from a model that fails them all (it learned nothing)."""
    kb = _kb(tmp_path)
    counts = (Counter({"a": 4, "b": 4, "c": 0}), Counter({"a.is-part-of.b": 5, "b.is-part-of.c": 5}))
    findings, base, learned, _ = classify(kb, _items(), {"pc"}, counts)
    assert learned and base < 0.3 and findings[0].node == "c" and findings[0].confidence > 0.8
    everything = {"pa", "pb", "pc", "sab", "sbc", "chain"}
    findings, base, learned, _ = classify(kb, _items(), everything, counts)
    assert not learned and base > 0.6
    assert next(f for f in findings if f.node == "c").confidence < 0.6


def _many_chains(tmp_path, n: int = 12):
    """`n` two-hop test chains a_i -> b_i -> c over learned hops, with their probes and items."""
    files = {"concepts/c.yaml": "id: c\nterm: c\ntype: t\ndefinition: The c.\n"}
    items = []
    for i in range(n):
        files[f"concepts/a{i}.yaml"] = (f"id: a{i}\nterm: a{i}\ntype: t\ndefinition: The a{i}.\n"
                                        f"relations:\n  - {{predicate: is part of, object: b{i}}}\n")
        files[f"concepts/b{i}.yaml"] = (f"id: b{i}\nterm: b{i}\ntype: t\ndefinition: The b{i}.\n"
                                        "relations:\n  - {predicate: is part of, object: c}\n")
        steps = [f"a{i}.is-part-of.b{i}", f"b{i}.is-part-of.c"]
        files[f"chains/ch{i}.yaml"] = f"id: ch{i}\ntitle: t\nsplit: test\nsteps: [{', '.join(steps)}]\n"
        for sid in steps:
            items.append({"id": f"s-{sid}", "level": "L2", "template": "probe.l2.complete",
                          "traces": {"concepts": [], "statements": [sid], "chain": None}})
        items.append({"id": f"ch{i}", "level": "L3", "template": "chain.l3.hops", "choices": ["w", "x", "y", "z"],
                      "traces": {"concepts": [], "statements": steps, "chain": f"ch{i}"}})
    kb = _load_kb(tmp_path, files)
    counts = (Counter({c: 4 for c in kb.concepts}), Counter({s: 5 for s in kb.statements}))
    return kb, items, counts


def test_a_model_that_composes_at_chance_is_one_finding_in_words_not_many_confident_ones(tmp_path):
    """Nine of twelve chains fail with every hop known: as often as guessing fails. Diagnose
    says the model does not compose, in one line; one failed item of a chain is weighed
    against the model's noise, as a node's probes are."""
    kb, items, counts = _many_chains(tmp_path)
    at_chance = {f"ch{i}" for i in range(9)}
    findings, _base, _learned, comp = classify(kb, items, at_chance, counts)
    assert (comp.items, comp.passed, comp.patterns) == (12, 3, 1) and comp.chance == 0.25
    assert comp.at_chance and "does not compose" in comp.message() and comp.p_value > 0.5
    composing = {"ch0"}
    lone, _base, _learned, good = classify(kb, items, composing, counts)
    assert not good.at_chance and good.p_value < 0.001 and good.message().startswith("composition: 11 of the 12")
    assert all(f.kind == CHAIN_BREAK for f in findings) and len(findings) == 9
    assert 0.5 < lone[0].confidence < 1 - 0.25**2  # the hops were no guess; the one failure may be noise
    assert "1 of its 1 multi-hop item(s) fail" in lone[0].message()


def test_diagnose_says_when_the_model_does_not_compose(tmp_path):
    """The whole verb: text and json carry the composition summary."""
    _many_chains(tmp_path)
    root = tmp_path / "k"
    assert run_cli("build", "-q", cwd=root).code == 0
    git(root, "add", "-A")
    git(root, "commit", "-qm", "kb")
    from tests.histories import record_results

    record_results(root, [git(root, "rev-parse", "HEAD")], lambda c, item: item["level"] == "L3")
    res = run_cli("diagnose", cwd=root)
    assert res.code == 1 and "the model does not compose: 0 of the 12 multi-hop item(s)" in res.out
    info = json.loads(run_cli("diagnose", "--format", "json", cwd=root).out)
    assert info["composition"]["at_chance"] is True and info["composition"]["items"] == 12
    assert info["counts"]["chain-break"] == 12
    tested = run_cli("test", "--rev", "HEAD", cwd=root)
    assert tested.code == 0 and "warning: L3 0.00 is no better than guessing (0.25 by chance, n=12" in tested.out
    assert "warning: L2" not in tested.out


def test_a_chain_whose_hop_no_longer_exists_is_not_traced(tmp_path):
    kb = _kb(tmp_path)
    kb.chains["abc"].steps.append("c.is-part-of.gone")
    counts = (Counter({"a": 4, "b": 4, "c": 4}), Counter({"a.is-part-of.b": 5, "b.is-part-of.c": 5}))
    assert find_gaps(kb, _items(), {"chain"}, counts) == []


def _three_paths_kb(tmp_path):
    """Nine concepts in three is-part-of paths (a-b-c, d-e-f, g-h-i); abc and def are test chains."""
    files = {}
    links = [("a", "b"), ("b", "c"), ("d", "e"), ("e", "f"), ("g", "h"), ("h", "i")]
    for c in "abcdefghi":
        files[f"concepts/{c}.yaml"] = f"id: {c}\nterm: {c}\ntype: t\ndefinition: The {c}.\n" + "".join(
            f"relations:\n  - {{predicate: is part of, object: {o}}}\n" for s_, o in links if s_ == c)
    files["chains/abc.yaml"] = "id: abc\ntitle: t\nsplit: test\nsteps: [a.is-part-of.b, b.is-part-of.c]\n"
    files["chains/def.yaml"] = "id: def\ntitle: t\nsplit: test\nsteps: [d.is-part-of.e, e.is-part-of.f]\n"
    kb = _load_kb(tmp_path, files)
    counts = (Counter({c: 4 for c in "abcdefghi"}), Counter({f"{s_}.is-part-of.{o}": 5 for s_, o in links}))
    return kb, counts


def test_chains_that_break_on_one_pattern_share_its_compositions(tmp_path):
    """Thirty chain breaks over one predicate pattern get one pattern's worth of compositions,
    not thirty (each copy tilts a small model towards the demonstrated paths)."""
    kb, counts = _three_paths_kb(tmp_path)
    items = [{"id": f"chain-{cid}", "level": "L3", "template": "chain.l3.hops",
              "traces": {"concepts": list(cid), "statements": kb.chains[cid].steps, "chain": cid}} for cid in ("abc", "def")]
    breaks = find_gaps(kb, items, {"chain-abc", "chain-def"}, counts)
    assert [(f.kind, f.node) for f in breaks] == [(CHAIN_BREAK, "abc"), (CHAIN_BREAK, "def")]
    writer = ExampleWriter(kb)
    first, second = writer.for_finding(breaks[0]), writer.for_finding(breaks[1])
    assert first[0] and all(ex["traces"]["statements"] == ["g.is-part-of.h", "h.is-part-of.i"] for ex in first[0])
    assert second == ([], None)  # covered by the first: patched, nothing written twice


def test_compositions_spread_over_endpoints_and_never_reword_a_test_question(tmp_path):
    """Real relations pile up on one endpoint (most packages end in `libs`): the demonstrations
    end at each endpoint in turn, none more than its even share, and none starts where a test
    chain of the same pattern starts (that would ask the test's question with another answer)."""
    files = {f"concepts/{c}.yaml": f"id: {c}\nterm: {c}\ntype: t\ndefinition: The {c} part.\n"
             for c in ["libs", "net", "admin", "x", *(f"a{i}" for i in range(10)), *(f"b{i}" for i in range(10))]}
    ends = {**{i: "libs" for i in range(7)}, 7: "net", 8: "admin", 9: "libs"}
    for i in range(10):
        files[f"concepts/a{i}.yaml"] += f"relations:\n  - {{predicate: uses, object: b{i}}}\n"
        files[f"concepts/b{i}.yaml"] += f"relations:\n  - {{predicate: is in, object: {ends[i]}}}\n"
    files["concepts/a9.yaml"] += "  - {predicate: uses, object: b7}\n"  # a9 -> b7 -> net: the test's start
    files["chains/t.yaml"] = "id: t\ntitle: t\nsplit: test\nsteps: [a9.uses.b9, b9.is-in.libs]\n"
    writer = ExampleWriter(_load_kb(tmp_path, files))
    examples, reason = writer.compositions("t")
    assert reason is None
    paths = [ex["traces"]["statements"] for ex in examples[::2]]
    ends_taught = Counter(writer.kb.statements[p[-1]].object for p in paths)
    assert ends_taught == {"libs": 2, "net": 1, "admin": 1}  # not 6 of 6 in libs, as 7 of the 9 paths are
    assert all(not p[0].startswith("a9.") for p in paths)
    assert len({p[0].split(".")[0] for p in paths}) == len(paths)  # every start once


def test_a_pattern_whose_only_other_paths_cross_a_test_chain_is_not_demonstrated(tmp_path):
    """b-c-? paths exist (d-e-f's pattern over other concepts), but every one shares a statement
    with a test chain: a demonstration over it would teach a test's answer, so none is written,
    and the reason says why rather than that no such path exists."""
    kb, _ = _three_paths_kb(tmp_path)
    del kb.statements["g.is-part-of.h"]  # g-h-i was the only path off the test chains
    writer = ExampleWriter(kb)
    assert writer.paths_with_pattern(["is part of", "is part of"], exclude=set(kb.chains["abc"].steps))
    examples, reason = writer.compositions("abc")
    assert examples == [] and "avoids every test chain's statements" in reason


def test_a_patch_restates_the_type_of_every_concept_it_names_but_does_not_teach(tmp_path):
    """Compositions over g-h-i name g, h and i: each gets one anchor ("g is a t."); a concept
    the patch teaches (its own concept examples) gets none."""
    kb, _ = _three_paths_kb(tmp_path)
    writer = ExampleWriter(kb)
    compositions, _ = writer.compositions("abc")
    taught = writer.concept_examples("a")
    anchors = writer.anchors(compositions + taught)
    siblings = [c for ex in taught if ex["kind"] == "contrast" for c in ex["traces"]["concepts"][1:]]
    assert len(siblings) == 2 and not set(siblings) & set("aghi")
    assert [(ex["kind"], ex["traces"]["concepts"]) for ex in anchors] == [("anchor", [c]) for c in [*"ghi", *siblings]]
    assert anchors[0]["messages"] == [{"role": "user", "content": "Which category does g belong to?"},
                                      {"role": "assistant", "content": "g is a t."}]
    assert "a" not in {c for ex in anchors for c in ex["traces"]["concepts"]}


def test_a_definition_that_says_nothing_but_the_name_is_not_taught(tmp_path):
    """validate calls "Java." for java uninformative: the patch restates java's type but never
    trains "java is defined as Java.", neither as its own definition nor as a sibling's."""
    files = {f"concepts/{c}.yaml": f"id: {c}\nterm: {c}\ntype: t\ndefinition: The {c} part of a machine.\n"
             for c in "abcd"}
    files["concepts/java.yaml"] = "id: java\nterm: java\ntype: t\ndefinition: Java.\n"
    writer = ExampleWriter(_load_kb(tmp_path, files))
    own = writer.concept_examples("java")
    assert [ex["messages"][1]["content"] for ex in own] == ["java is a t."]
    for cid in "abcd":
        assert all("java" not in ex["traces"]["concepts"] for ex in writer.concept_examples(cid))
    assert len([ex for ex in writer.concept_examples("a") if ex["kind"] == "contrast"]) == 2


def test_contrast_questions_read_as_english_for_any_predicate(tmp_path):
    """Predicates are third-person verb phrases ("is part of"), so "Does a is part of d?" was
    ungrammatical for every KB; the contrast asks "Is it true that ...?"."""
    kb = _kb(tmp_path)
    contrasts = [ex for ex in ExampleWriter(kb).statement_examples("a.is-part-of.b") if ex["kind"] == "contrast"]
    assert sorted([m["content"] for m in ex["messages"]] for ex in contrasts) == [
        ["Is it true that a is part of c?", "No. a is part of b, not c."],
        ["Is it true that a is part of d?", "No. a is part of b, not d."]]


def test_patch_examples_are_one_line_like_the_builds_records(tmp_path):
    """A definition written as a YAML `|` block keeps its line breaks in the KB; the examples a
    patch writes from it (concept forms, sibling contrasts) have none, as the build's own don't."""
    files = {}
    for c in "abc":
        files[f"concepts/{c}.yaml"] = f"id: {c}\nterm: {c}\ntype: t\ndefinition: |\n  The {c},\n  on two lines.\n"
    kb = _load_kb(tmp_path, files)
    assert "\n" in kb.concepts["a"].definition
    examples = ExampleWriter(kb).concept_examples("a")
    assert {ex["kind"] for ex in examples} >= {"concept", "contrast"}
    texts = [m["content"] for ex in examples for m in ex["messages"]]
    assert any("The a, on two lines." in t for t in texts)
    assert not [t for t in texts if "\n" in t or "  " in t]


def _sentences_kb(tmp_path):
    """Definitions without a final period (as real package descriptions are) and a chain whose
    negative constraint names a."""
    files = {}
    for c in "abc":
        files[f"concepts/{c}.yaml"] = f"id: {c}\nterm: {c}\ntype: t\ndefinition: Shared library of {c} - runtime\n"
    files["concepts/a.yaml"] += "relations:\n  - {predicate: depends on, object: b}\n"
    files["concepts/b.yaml"] += "relations:\n  - {predicate: depends on, object: c}\n"
    files["chains/abc.yaml"] = ("id: abc\ntitle: t\nsplit: test\nsteps: [a.depends-on.b, b.depends-on.c]\n"
                                "negative_constraints: [a does not depend on itself]\n")
    files["chains/ab.yaml"] = ("id: ab\ntitle: t\nsplit: test\nsteps: [a.depends-on.b]\n"
                               "negative_constraints: [a does not depend on itself]\n")
    return _load_kb(tmp_path, files, "name: k\npredicates: {depends on: {functional: false}}\n")


def test_a_sibling_contrast_ends_the_first_definition_before_going_on(tmp_path):
    """"...of a - runtime By contrast, ..." ran on: a definition without a final period ends
    its sentence (the build's l1.define answer too, `templates.define`)."""
    contrasts = [ex for ex in ExampleWriter(_sentences_kb(tmp_path)).concept_examples("a") if ex["kind"] == "contrast"]
    assert contrasts
    for ex in contrasts:
        other = ex["traces"]["concepts"][1]
        assert ex["messages"][1]["content"] == (f"a is defined as Shared library of a - runtime. By contrast, {other} "
                                                f"is defined as Shared library of {other} - runtime.")


def test_a_negative_constraint_answers_what_does_not_hold_never_a_misconception(tmp_path):
    """A negative constraint is true ("a does not depend on itself"): it is no misconception. Two
    chains stating it teach it once."""
    negatives = [ex for ex in ExampleWriter(_sentences_kb(tmp_path)).concept_examples("a") if ex["kind"] == "negative"]
    assert [[m["content"] for m in ex["messages"]] for ex in negatives] == [
        ["What does not hold for a?", "a does not depend on itself."]]


def test_a_contrast_names_another_object_of_the_same_predicate_first(tmp_path):
    """As the build's l2.false claims do: "Is it true that a is part of d?" (d is something parts
    belong to), not a concept that only shares the type."""
    files = {}
    for c in "abcdefgh":
        files[f"concepts/{c}.yaml"] = f"id: {c}\nterm: {c}\ntype: t\ndefinition: The {c}.\n"
    for subject, whole in ("ab", "cd", "ef"):
        files[f"concepts/{subject}.yaml"] += f"relations:\n  - {{predicate: is part of, object: {whole}}}\n"
    kb = _load_kb(tmp_path, files)
    contrasts = [ex for ex in ExampleWriter(kb).statement_examples("a.is-part-of.b") if ex["kind"] == "contrast"]
    assert sorted(ex["traces"]["concepts"][-1] for ex in contrasts) == ["d", "f"]


def test_a_contrast_never_names_a_namesake_of_the_true_object(tmp_path):
    """"Is it true that a is part of B? No" while "b" is true: the build never offers a choice
    that reads as a true answer, and a patch's contrast follows the same rule."""
    files = {}
    for c, term in (("a", "a"), ("b", "b"), ("b2", "B."), ("c", "c")):
        files[f"concepts/{c}.yaml"] = f"id: {c}\nterm: {term}\ntype: t\ndefinition: The {c}.\n"
    files["concepts/a.yaml"] += "relations:\n  - {predicate: is part of, object: b}\n"
    kb = _load_kb(tmp_path, files)
    contrasts = [ex for ex in ExampleWriter(kb).statement_examples("a.is-part-of.b") if ex["kind"] == "contrast"]
    assert [ex["traces"]["concepts"][-1] for ex in contrasts] == ["c"]


def test_contradictory_evidence_is_reported_not_patched(tmp_path):
    """Two objects for one subject and an undeclared predicate: name the competitor, write nothing."""
    _kb(tmp_path)  # the repo; a.yaml is rewritten below
    root = tmp_path / "k"
    (root / "concepts" / "a.yaml").write_text(
        "id: a\nterm: a\ntype: t\ndefinition: The a.\nrelations:\n  - {predicate: is part of, object: b}\n"
        "  - {predicate: is stored in, object: c}\n  - {predicate: is stored in, object: d}\n")
    kb, _ = load_worktree(Domain.find(root))
    items = [*_items(), {"id": "sac", "level": "L2", "template": "probe.l2.complete",
                         "traces": {"concepts": ["a", "c"], "statements": ["a.is-stored-in.c"], "chain": None}}]
    counts = (Counter({"a": 4, "b": 4, "c": 4, "d": 4}),
              Counter({"a.is-part-of.b": 5, "b.is-part-of.c": 5, "a.is-stored-in.c": 5, "a.is-stored-in.d": 5}))
    [finding] = find_gaps(kb, items, {"sac"}, counts)
    assert finding.kind == CONTRADICTION
    assert finding.evidence == "contradictory" and finding.conflicts == ["a.is-stored-in.d"]
    assert "competing statement(s): a.is-stored-in.d" in finding.message()
    examples, reason = ExampleWriter(kb).for_finding(finding)
    assert examples == [] and "a.is-stored-in.d" in reason and "resolve the conflict" in reason


# --- diagnose on a real run -----------------------------------------------------------------

def test_diagnose_reports_like_a_compiler(really_tested):
    tested = really_tested
    result = run_cli("diagnose", cwd=tested)
    assert result.code == 1
    kinds = (DATA_GAP, CHAIN_BREAK, NOT_LEARNED, CONTRADICTION)
    lines = [ln for ln in result.out.splitlines() if any(f": {k}: " in ln for k in kinds)]
    assert lines and all(ln.split(":")[0].startswith(("concepts/", "chains/")) for ln in lines)
    data = json.loads(run_cli("diagnose", "--format", "json", cwd=tested).out)
    explained = {i for f in data["findings"] for i in f["items"]}
    assert explained <= set(data["failed_items"]) and explained
    sarif = json.loads(run_cli("diagnose", "--format", "sarif", cwd=tested).out)
    assert sarif["version"] == "2.1.0"
    first = sarif["runs"][0]["results"][0]
    assert first["ruleId"] in kinds
    assert first["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1


def test_diagnose_without_results_or_with_another_run_key(tmp_path, monkeypatch):
    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = small_domain(tmp_path / "d")
    res = run_cli("diagnose", "--no-run", cwd=root)
    assert res.code == 2 and "no results recorded" in res.err and "git pwd test" in res.err
    git(root, "notes", "--ref", notes.NOTES_REF, "add", "-m", json.dumps({"run_key": "gpt2@abc", "failed": []}), "HEAD")
    res = run_cli("diagnose", cwd=root)
    assert res.code == 2 and "gpt2@abc" in res.err and "Traceback" not in res.output


# --- patch -------------------------------------------------------------------------------------

def test_patch_commits_on_a_branch_without_touching_the_worktree(tested):
    (tested / "notes.txt").write_text("uncommitted work\n")
    wagon = tested / "concepts/machines/wagon.yaml"
    wagon.write_text(wagon.read_text() + "# local edit\n")
    def worktree():
        return {k: v for k, v in snapshot(tested).items() if not k.startswith(".git/")}, git(tested, "status", "--porcelain")

    before, head = worktree(), git(tested, "rev-parse", "HEAD")
    branch_before = git(tested, "symbolic-ref", "HEAD")
    result = run_cli("patch", "--format", "json", cwd=tested)
    assert result.code == 0, result.output
    info = json.loads(result.out)
    assert worktree() == before and git(tested, "rev-parse", "HEAD") == head
    assert git(tested, "symbolic-ref", "HEAD") == branch_before
    assert info["branch"].startswith("pwd/patch/") and info["examples"] > 0
    files = git(tested, "diff", "--name-only", head, info["branch"]).splitlines()
    assert info["patch_file"] in files and "shards/MANIFEST.json" in files
    assert git(tested, "rev-parse", f"{info['branch']}^") == head
    patch_yaml = git(tested, "show", f"{info['branch']}:{info['patch_file']}")
    bench = git(tested, "show", f"{info['branch']}:shards/bench/items.jsonl")
    for line in bench.splitlines():
        assert json.loads(line)["question"] not in patch_yaml  # never trained on the tests
    assert run_cli("validate", "--rev", info["branch"], cwd=tested).code == 0
    manifest = json.loads(git(tested, "show", f"{info['branch']}:shards/MANIFEST.json"))
    assert manifest["kb"]["patch_examples"] == info["examples"]
    again = run_cli("patch", "--branch", info["branch"], cwd=tested)
    assert again.code == 1 and "already exists" in again.err


def test_test_on_a_patch_branch_counts_the_targets_the_patch_fixed(tested):
    """The patch file names the failed items it was written for; `test` on its branch says how
    many of them now pass, apart from what the retraining moved elsewhere."""
    from tests.histories import record_results

    result = run_cli("patch", "--format", "json", cwd=tested)
    assert result.code == 0, result.output
    info = json.loads(result.out)
    doc = yaml.safe_load(git(tested, "show", f"{info['branch']}:{info['patch_file']}"))
    assert doc["targets"] == info["expected_flips"] and len(doc["targets"]) >= 2
    text = run_cli("patch", "--dry-run", cwd=tested).out
    assert "next:" not in text  # a dry run has no branch to run
    hint = run_cli("patch", "--branch", "pwd/patch/second", cwd=tested).out
    assert "next: git pwd run pwd/patch/second (retrains from scratch" in hint
    assert "--train-mode continue" in hint
    keep = doc["targets"][0]  # the patched branch's result: one target still fails
    tip = git(tested, "rev-parse", info["branch"])
    record_results(tested, [tip], lambda c, item: item["id"] == keep)
    res = run_cli("test", "--rev", info["branch"], "--format", "json", cwd=tested)
    assert res.code == 0, res.output
    assert json.loads(res.out)["baseline"]["targeted"] == doc["targets"]
    out = run_cli("test", "--rev", info["branch"], cwd=tested).out
    n = len(doc["targets"])
    assert f"patch targets: {n - 1} of the {n} failed item(s)" in out
    every = {r["commit"]: r for r in json.loads(run_cli("log", "--all", "--format", "json", cwd=tested).out)}
    assert every[tip]["result"] is not None and git(tested, "rev-parse", "HEAD") in every
    assert tip not in {r["commit"] for r in json.loads(run_cli("log", "--format", "json", cwd=tested).out)}
    assert run_cli("log", "--all", "HEAD~1", cwd=tested).code == 2


def test_setting_train_mode_changes_only_the_train_line_of_pwd_yaml(tmp_path):
    """ruamel folded every line over 80 columns (descriptions, flow mappings) and left trailing
    spaces: a patch's pwd.yaml diff showed lines the patch never meant to change."""
    from pwd_git.repair.patch import with_train_settings

    long = "Installed packages, their sections, priorities and dependencies (from the package database)."
    config = (f"# a comment\nname: k\ndescription: {long}\npredicates:\n"
              "  depends on: {functional: false, description: the package needs another package installed to work}\n"
              "build:\n  holdout: [" + ", ".join(f"node-number-{i}.depends-on.other-{i}" for i in range(8)) + "]\n"
              "train: {epochs: 12}\n")
    root = tmp_path / "k"
    root.mkdir()
    git(root, "init", "-q")
    write(root, {"pwd.yaml": config})
    git(root, "add", "-A")
    git(root, "commit", "-qm", "c")
    out = with_train_settings(Domain.find(root), git(root, "rev-parse", "HEAD"), {"mode": "continue"}).decode()
    assert out == config.replace("train: {epochs: 12}", "train: {epochs: 12, mode: continue}")


def test_patch_dry_run_creates_nothing(tested):
    refs = git(tested, "for-each-ref")
    result = run_cli("patch", "--dry-run", cwd=tested)
    assert result.code == 0 and "### Diagnosis" in result.out and "```diff" in result.out
    assert git(tested, "for-each-ref") == refs


def _record(root, fails) -> None:
    from tests.histories import record_results

    git(root, "notes", "--ref", notes.NOTES_REF, "remove", "--ignore-missing", "HEAD")
    record_results(root, [git(root, "rev-parse", "HEAD")], fails)


def test_patch_repairs_data_gaps_by_default_and_not_learned_nodes_on_request(tested):
    """bicycle's probes fail too, but its data is adequate: not the data's fault, not patched
    unless asked for."""
    _record(tested, lambda c, item: "spoke" in item["traces"]["concepts"]
            or (item["level"] == "L1" and item["traces"]["concepts"] == ["bicycle"]))
    diagnosis = json.loads(run_cli("diagnose", "--format", "json", cwd=tested).out)
    kinds = {f["node"]: f["kind"] for f in diagnosis["findings"]}
    assert kinds["spoke"] == DATA_GAP and kinds["bicycle"] == NOT_LEARNED
    default = json.loads(run_cli("patch", "--dry-run", "--format", "json", cwd=tested).out)
    assert "spoke" in {p["node"] for p in default["patched"]} and "bicycle" not in {p["node"] for p in default["patched"]}
    more = json.loads(run_cli("patch", "--dry-run", "--include", "not-learned", "--format", "json", cwd=tested).out)
    assert {"spoke", "bicycle"} <= {p["node"] for p in more["patched"]}
    # anchors restate the types of the concepts a default patch names; one with not-learned nodes has none
    diagnosed = diagnose(Domain.find(tested), run_if_missing=False)
    kinds = [{ex["kind"] for ex in yaml.safe_load(write_patch(Domain.find(tested), diagnosed, include=include).content)
              ["examples"]} for include in ((), ("not-learned",))]
    assert "anchor" in kinds[0] and "anchor" not in kinds[1] and "concept" in kinds[1]


def test_a_model_that_learned_nothing_gets_no_data_patch(tested):
    _record(tested, lambda c, item: True)
    before = git(tested, "for-each-ref")
    diagnosed = run_cli("diagnose", cwd=tested)
    assert diagnosed.code == 1 and "fix training first" in diagnosed.out
    res = run_cli("patch", cwd=tested)
    assert res.code == 1 and "fix training first" in res.err and "Traceback" not in res.output
    assert git(tested, "for-each-ref") == before


def test_a_result_without_failures_has_nothing_to_fix(tested):
    _record(tested, lambda c, item: False)
    res = run_cli("diagnose", cwd=tested)
    assert res.code == 0 and "nothing to fix" in res.out
    assert run_cli("patch", cwd=tested).code == 1


class _Forge(BaseHTTPRequestHandler):
    """A loopback stand-in for a forge's API (here GitHub's `POST /repos/{owner}/{repo}/pulls`):
    every request recorded (raw path, Authorization, headers by lower-case name, body), answered
    from `answers`: (status, JSON or bytes[, extra headers])."""

    answers: ClassVar[list] = []
    requests: ClassVar[list] = []

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests.append({"path": self.path, "auth": self.headers["Authorization"],
                                    "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body": json.loads(raw or b"null")})
        status, payload, *extra = type(self).answers.pop(0)
        out = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(extra[0] if extra else {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def forge(tested, tmp_path, monkeypatch):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(tested, "remote", "add", "origin", str(origin))
    git(tested, "config", "pwd.forge.repo", "lab/bikes")
    server = HTTPServer(("127.0.0.1", 0), _Forge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PWD_GIT_FORGE_API", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    _Forge.answers, _Forge.requests = [], []
    yield origin
    server.shutdown()


def test_open_pr_pushes_and_creates_the_pull_request(tested, forge):
    _Forge.answers.append((201, {"html_url": "https://github.com/lab/bikes/pull/7", "number": 7}))
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 0, result.output
    assert "https://github.com/lab/bikes/pull/7" in result.out and TOKEN not in result.output
    request = _Forge.requests[0]
    assert request["path"] == "/repos/lab/bikes/pulls" and request["auth"] == f"Bearer {TOKEN}"
    body = request["body"]
    assert body["base"] == "main" and body["head"].startswith("pwd/patch/")
    assert "### Diagnosis" in body["body"] and "+++ b/patches/" in body["body"] and "expected to flip" in body["body"]
    assert git(tested, "--git-dir", str(forge), "rev-parse", f"refs/heads/{body['head']}")


@pytest.mark.parametrize(("status", "payload", "expected"), [
    (401, {"message": "Bad credentials"}, "rejected the token (401 Bad credentials)"),
    (422, {"message": "Validation Failed", "errors": [{"message": "A pull request already exists for lab:x."}]},
     "A pull request already exists"),
    (502, b"<html>Bad gateway</html>", "not JSON"),
])
def test_forge_errors_are_clear(tested, forge, status, payload, expected):
    _Forge.answers.append((status, payload))
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 2 and expected in result.err
    assert TOKEN not in result.output and "Traceback" not in result.output


def test_without_a_token_the_compare_url_and_body_file_are_given(tested, forge, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.delenv("GH_TOKEN", raising=False)
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 0 and "https://github.com/lab/bikes/compare/main...pwd/patch/" in result.out
    body_file = next(line.split(": ", 1)[1] for line in result.out.splitlines() if line.startswith("pull-request body"))
    assert "### Diagnosis" in Path(body_file).read_text()
    assert not _Forge.requests


def test_a_remote_that_rejects_the_push(tested, forge):
    hook = forge / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: no pushes' >&2\nexit 1\n")
    hook.chmod(0o755)
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 2 and "rejected the push" in result.err
    assert git(tested, "branch", "--list", "pwd/patch/*")  # the branch stays, locally
    assert not _Forge.requests


class _Recorder(BaseHTTPRequestHandler):
    """Any request: recorded (path, Authorization), then answered as `answer` says."""

    seen: ClassVar[list] = []
    answer: ClassVar[tuple] = (404, {}, b"")

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).seen.append((self.server.server_port, self.command, self.path, self.headers.get("Authorization")))
        status, headers, raw = type(self).answer
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _any

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback():
    """Start loopback HTTP servers on demand; every request any of them gets lands in _Recorder.seen."""
    servers = []
    _Recorder.seen, _Recorder.answer = [], (404, {}, b"")

    def start() -> int:
        server = HTTPServer(("127.0.0.1", 0), _Recorder)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_port

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _remote_on(tested, forge, url):
    """`origin` named by an http URL (what the forge logic reads), pushing to the bare repo."""
    git(tested, "remote", "set-url", "origin", url)
    git(tested, "remote", "set-url", "--push", "origin", str(forge))
    git(tested, "config", "--unset", "pwd.forge.repo")


def test_a_remote_on_an_unknown_host_gets_no_token_and_keeps_its_port(tested, forge, loopback, monkeypatch):
    port = loopback()
    _remote_on(tested, forge, f"http://127.0.0.1:{port}/lab/bikes.git")
    monkeypatch.delenv("PWD_GIT_FORGE_API")
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 0, result.output
    assert f"no forge API is configured for 127.0.0.1:{port}" in result.out
    assert f"http://127.0.0.1:{port}/lab/bikes/compare/main...pwd/patch/" in result.out
    assert _Recorder.seen == [] and TOKEN not in result.output  # nothing went to that host, let alone the token
    assert git(tested, "--git-dir", str(forge), "for-each-ref", "refs/heads/pwd/patch/")  # the branch was pushed


def test_a_configured_forge_api_gets_the_token_at_its_own_port_and_path(tested, forge, loopback, monkeypatch):
    port = loopback()
    _Recorder.answer = (201, {}, json.dumps({"html_url": "https://ghe.example/lab/bikes/pull/3"}).encode())
    _remote_on(tested, forge, f"http://127.0.0.1:{port}/lab/bikes.git")
    monkeypatch.delenv("PWD_GIT_FORGE_API")
    git(tested, "config", "pwd.forge.api", f"http://127.0.0.1:{port}/api/v3/")
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 0, result.output
    assert "opened https://ghe.example/lab/bikes/pull/3" in result.out
    assert _Recorder.seen == [(port, "POST", "/api/v3/repos/lab/bikes/pulls", f"Bearer {TOKEN}")]


def test_a_redirect_never_carries_the_token_elsewhere(tested, forge, loopback, monkeypatch):
    api, elsewhere = loopback(), loopback()
    _Recorder.answer = (302, {"Location": f"http://127.0.0.1:{elsewhere}/collect"}, b"")
    monkeypatch.setenv("PWD_GIT_FORGE_API", f"http://127.0.0.1:{api}")
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 2 and "HTTP 302" in result.err, result.output
    assert [seen[0] for seen in _Recorder.seen] == [api]  # the other host heard nothing


STRADDLE = b"<html>" + b"x" * 66 + TOKEN.encode() + b"</html>"  # a cut at 80 characters splits the token


@pytest.mark.parametrize(("status", "payload", "expected"), [
    (401, {"message": f"Bad credentials: Authorization: Bearer {TOKEN}"}, "rejected the token (401 Bad credentials"),
    (422, {"message": "Validation Failed", "errors": [{"message": f"{TOKEN} may not open pulls"}]}, "(422): [token] may"),
    (502, STRADDLE, "not JSON"),
])
def test_a_server_repeating_the_token_never_gets_it_printed(tested, forge, status, payload, expected):
    _Forge.answers.append((status, payload))
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 2 and expected in result.err, result.output
    assert TOKEN[:8] not in result.output and "secret-token" not in result.output  # not even a piece of it


def test_a_server_that_dribbles_bytes_is_cut_off_at_the_deadline(tested, forge, monkeypatch):
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def dribble():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 201 Created\r\nX-Slow: " + b"a" * 1000:  # a byte every 0.1 s, for minutes
                if stop.wait(0.1):
                    break
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    break

    threading.Thread(target=dribble, daemon=True).start()
    monkeypatch.setenv("PWD_GIT_FORGE_API", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setenv("PWD_GIT_FORGE_TIMEOUT", "1")
    started = time.monotonic()
    try:
        result = run_cli("patch", "--open-pr", cwd=tested)
    finally:
        stop.set()
        listener.close()
    elapsed = time.monotonic() - started
    assert result.code == 2 and "did not answer within 1 s" in result.err, result.output
    assert elapsed < 8, f"took {elapsed:.1f} s"  # push + patch take a few seconds; the request itself 1


@pytest.mark.parametrize(("url", "config_api", "host", "compare", "api"), [
    ("https://github.com/lab/bikes.git", None, "github.com", "https://github.com/lab/bikes/compare", "https://api.github.com"),
    ("git@github.com:lab/bikes.git", None, "github.com", "https://github.com/lab/bikes/compare", "https://api.github.com"),
    ("https://ghe.example:8443/lab/bikes", None, "ghe.example:8443", "https://ghe.example:8443/lab/bikes/compare", None),
    ("ssh://git@ghe.example:2222/lab/bikes.git", None, "ghe.example", "https://ghe.example/lab/bikes/compare", None),
    ("https://ghe.example:8443/lab/bikes", "https://ghe.example:8443/api/v3", "ghe.example:8443",
     "https://ghe.example:8443/lab/bikes/compare", "https://ghe.example:8443/api/v3"),
    ("https://evil.example/lab/bikes", None, "evil.example", "https://evil.example/lab/bikes/compare", None),
])
def test_the_token_goes_only_to_githubs_api_or_the_configured_one(domain, monkeypatch, url, config_api, host, compare,
                                                                   api):
    from pwd_git.repair.forge import forge_repo

    monkeypatch.delenv("PWD_GIT_FORGE_API", raising=False)
    git(domain, "remote", "add", "origin", url)
    if config_api:
        git(domain, "config", "pwd.forge.api", config_api)
    where = forge_repo(Repo.discover(domain), "origin")
    assert (where.host, where.owner, where.name, where.compare_url, where.api) == (host, "lab", "bikes", compare, api)


# --- GitLab merge requests, GitHub Enterprise on its own port ------------------------------------

GITLAB_TOKEN = "glpat-test-secret-token-456"


class _GitLab(_Forge):
    """The same stand-in with its own answers and requests, for a second forge in one test."""

    answers: ClassVar[list] = []
    requests: ClassVar[list] = []


@pytest.fixture
def own_host(tested, forge, monkeypatch):
    """`origin` named by http://127.0.0.1:PORT/lab/tools/bikes.git (a GitLab subgroup), pushing to
    the bare repo; the forge API on that same host; both forges' tokens in the environment and no
    PWD_GIT_FORGE_API: what is sent where follows from the remote and `pwd.forge.kind` alone."""
    server = HTTPServer(("127.0.0.1", 0), _GitLab)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _remote_on(tested, forge, f"http://127.0.0.1:{server.server_port}/lab/tools/bikes.git")
    monkeypatch.delenv("PWD_GIT_FORGE_API")
    monkeypatch.delenv("PWD_GIT_FORGE_KIND", raising=False)
    monkeypatch.setenv("GITLAB_TOKEN", GITLAB_TOKEN)
    git(tested, "config", "pwd.forge.kind", "gitlab")
    _GitLab.answers, _GitLab.requests = [], []
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_open_pr_on_gitlab_opens_a_merge_request(tested, forge, own_host):
    _GitLab.answers.append((201, {"web_url": "https://gitlab.example/lab/tools/bikes/-/merge_requests/4", "iid": 4}, {}))
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 0, result.output
    assert "opened https://gitlab.example/lab/tools/bikes/-/merge_requests/4" in result.out
    assert GITLAB_TOKEN not in result.output and TOKEN not in result.output
    [request] = _GitLab.requests
    assert request["path"] == "/api/v4/projects/lab%2Ftools%2Fbikes/merge_requests"
    assert request["headers"]["private-token"] == GITLAB_TOKEN and "authorization" not in request["headers"]
    body = request["body"]
    assert body["target_branch"] == "main" and body["source_branch"].startswith("pwd/patch/")
    assert body["title"].startswith("pwd patch: repair ")
    assert "### Diagnosis" in body["description"] and "+++ b/patches/" in body["description"]
    assert git(tested, "--git-dir", str(forge), "rev-parse", f"refs/heads/{body['source_branch']}")
    assert TOKEN not in json.dumps(request) and GITLAB_TOKEN not in request["path"]


@pytest.mark.parametrize(("status", "payload", "expected"), [
    (401, {"message": "401 Unauthorized"}, "rejected the token (401 401 Unauthorized)"),
    (404, {"message": "404 Project Not Found"}, "no project lab/tools/bikes"),
    (409, {"message": ["Another open merge request already exists for this source branch: !3"]},
     "refused the merge request (409): Another open merge request already exists"),
    (400, {"error": "title is missing"}, "HTTP 400: title is missing"),
    (403, {"message": f"403 Forbidden for {GITLAB_TOKEN}"}, "HTTP 403: 403 Forbidden for [token]"),
    (502, b"<html>" + GITLAB_TOKEN.encode() + b"</html>", "not JSON"),
])
def test_gitlab_errors_are_clear(tested, forge, own_host, status, payload, expected):
    _GitLab.answers.append((status, payload, {}))
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 2 and expected in result.err, result.output
    assert "glpat" not in result.output and "Traceback" not in result.output


def test_gitlab_without_its_token_gets_no_request_and_the_merge_request_url(tested, forge, own_host, monkeypatch):
    monkeypatch.delenv("GITLAB_TOKEN")  # GITHUB_TOKEN is still set: it is not GitLab's
    result = run_cli("patch", "--open-pr", "--format", "json", cwd=tested)
    assert result.code == 0 and json.loads(result.out)["pr"] is None, result.output
    assert "no GITLAB_TOKEN" in result.err
    assert (f"http://127.0.0.1:{own_host}/lab/tools/bikes/-/merge_requests/new?"
            "merge_request%5Bsource_branch%5D=pwd%2Fpatch%2F") in result.err
    assert _GitLab.requests == []


def test_a_gitlab_redirect_never_carries_the_token(tested, forge, own_host, loopback):
    elsewhere = loopback()
    _GitLab.answers.append((307, b"", {"Location": f"http://127.0.0.1:{elsewhere}/collect"}))
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 2 and "HTTP 307" in result.err, result.output
    assert len(_GitLab.requests) == 1 and _Recorder.seen == []  # the other host heard nothing


def test_a_github_enterprise_remote_with_a_port_gets_its_own_api(tested, forge, own_host):
    git(tested, "remote", "set-url", "origin", f"http://127.0.0.1:{own_host}/lab/bikes.git")
    git(tested, "config", "pwd.forge.kind", "github")
    _GitLab.answers.append((201, {"html_url": f"http://127.0.0.1:{own_host}/lab/bikes/pull/5"}, {}))
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 0 and f"opened http://127.0.0.1:{own_host}/lab/bikes/pull/5" in result.out, result.output
    [request] = _GitLab.requests
    assert request["path"] == "/api/v3/repos/lab/bikes/pulls" and request["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert "private-token" not in request["headers"] and GITLAB_TOKEN not in json.dumps(request)
    assert request["body"]["base"] == "main" and request["body"]["head"].startswith("pwd/patch/")


def test_a_bad_forge_kind_is_refused_before_anything_is_pushed(tested, forge, own_host):
    git(tested, "config", "pwd.forge.kind", "bitbucket")
    result = run_cli("patch", "--open-pr", cwd=tested)
    assert result.code == 2 and "'bitbucket' is not one of github, gitlab" in result.err and "pwd.forge.kind" in result.err
    assert not git(tested, "--git-dir", str(forge), "for-each-ref", "refs/heads/") and _GitLab.requests == []


@pytest.mark.parametrize(("url", "config", "kind", "owner", "api"), [
    ("https://gitlab.com/lab/tools/bikes.git", {}, "gitlab", "lab/tools", "https://gitlab.com/api/v4"),
    ("git@gitlab.com:lab/bikes.git", {}, "gitlab", "lab", "https://gitlab.com/api/v4"),
    ("https://gitlab.example:8443/lab/bikes", {}, "gitlab", "lab", None),  # named gitlab: its URLs, no token
    ("https://code.example:8443/lab/tools/bikes", {"pwd.forge.kind": "gitlab"}, "gitlab", "lab/tools",
     "https://code.example:8443/api/v4"),
    ("https://ghe.example:8443/lab/bikes", {"pwd.forge.kind": "github"}, "github", "lab", "https://ghe.example:8443/api/v3"),
    ("ssh://git@ghe.example:2222/lab/bikes.git", {"pwd.forge.kind": "GitHub"}, "github", "lab", "https://ghe.example/api/v3"),
    ("https://code.example/lab/bikes", {"pwd.forge.kind": "gitlab", "pwd.forge.api": "https://api.code.example/v4"},
     "gitlab", "lab", "https://api.code.example/v4"),
    ("https://github.com/lab/bikes", {}, "github", "lab", "https://api.github.com"),
])
def test_the_forge_kind_and_where_its_token_may_go(domain, monkeypatch, url, config, kind, owner, api):
    from pwd_git.repair.forge import forge_repo

    monkeypatch.delenv("PWD_GIT_FORGE_API", raising=False)
    monkeypatch.delenv("PWD_GIT_FORGE_KIND", raising=False)
    git(domain, "remote", "add", "origin", url)
    for key, value in config.items():
        git(domain, "config", key, value)
    where = forge_repo(Repo.discover(domain), "origin")
    assert (where.kind, where.owner, where.name, where.api) == (kind, owner, "bikes", api)


def test_github_needs_exactly_owner_and_name(domain, monkeypatch):
    from pwd_git.repair.forge import forge_repo

    monkeypatch.delenv("PWD_GIT_FORGE_KIND", raising=False)
    git(domain, "remote", "add", "origin", "https://github.com/lab/tools/bikes.git")
    assert forge_repo(Repo.discover(domain), "origin") is None  # not a GitHub repository: no API call at all

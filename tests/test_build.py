"""`git pwd build`: shards, benchmark correctness, determinism, cache, --rev, --check,
decontamination, bad input and interrupted builds."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from pwd_git.build import shards as shards_mod
from pwd_git.build import units as units_mod
from pwd_git.build.blind import blind_score
from pwd_git.build.decontam import BenchIndex
from pwd_git.build.generate import GENERATOR_VERSION, Generator, generate
from pwd_git.build.render import ENCODER, content_id
from pwd_git.build.templates import BENCH, TRAIN_L1, TRAIN_L2, TRAIN_L3
from pwd_git.git import Repo
from pwd_git.kb.loader import Domain, load_worktree
from tests.conftest import concept, git, run_cli, snapshot, write

REPO = Path(__file__).resolve().parents[1]

GEO_CONFIG = """
name: geo
predicates:
  borders: {functional: false}
  lies in: {functional: false}
  has capital: {functional: true}
  watches: {functional: false}
model: {base: tiny}
build: {ngram: 8, seed: 0}
"""

COUNTRIES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
REGIONS = ["north", "south", "east", "west", "central", "coast", "highland", "island"]
RELATIONS = {  # many-to-many at both hops of the test chain: alpha borders 3 countries, gamma lies in 2 regions
    "alpha": [("borders", "beta"), ("borders", "gamma"), ("borders", "delta"), ("has capital", "=Alphaville")],
    "beta": [("lies in", "north")],
    "gamma": [("lies in", "south"), ("lies in", "west")],
    "delta": [("lies in", "east")],
    "epsilon": [("lies in", "central"), ("borders", "zeta")],
    "zeta": [("lies in", "coast")],
    "eta": [("lies in", "highland"), ("has capital", "=Etaburg")],
    "theta": [("lies in", "island"), ("has capital", "=Thetaport")],
    "iota": [("lies in", "north"), ("has capital", "=Iotacity")],
}
#: Every region reachable from alpha by `borders` then `lies in`: all true answers of the test chain.
TRUE_ENDPOINTS = {"north", "south", "west", "east"}
VALID_DISTRACTORS = {"central", "coast", "highland", "island"}

TEST_CHAIN = """
id: alpha-region
title: From alpha across a border into a region
split: test
steps:
  - alpha.borders.beta
  - beta.lies-in.north
items:
  - question: Crossing one frontier out of alpha, which region can a traveller end up in?
    choices: [north, coast, highland, island]
    answer: 0
"""
TRAIN_CHAIN = """
id: epsilon-region
title: From epsilon across a border into a region
split: train
steps:
  - epsilon.borders.zeta
  - zeta.lies-in.coast
"""


def geo_concept(cid: str, ctype: str, relations=(), definition: str | None = None) -> str:
    lines = [f"id: {cid}", f"term: {cid}", f"type: {ctype}",
             f"definition: {definition or f'The {ctype} filed under code {cid[::-1]} in the test atlas.'}"]
    if relations:
        lines.append("relations:")
        for predicate, target in relations:
            lines.append(f"  - predicate: {predicate}")
            lines.append(f"    value: {target[1:]}" if target.startswith("=") else f"    object: {target}")
    return "\n".join(lines) + "\n"


def geo_files() -> dict[str, str]:
    files = {"pwd.yaml": GEO_CONFIG, "chains/alpha-region.yaml": TEST_CHAIN, "chains/epsilon-region.yaml": TRAIN_CHAIN}
    for c in COUNTRIES:
        files[f"concepts/countries/{c}.yaml"] = geo_concept(c, "country", RELATIONS.get(c, ()))
    for r in REGIONS:
        files[f"concepts/regions/{r}.yaml"] = geo_concept(r, "region")
    return files


def make_geo(root: Path, commit: bool = True, files: dict[str, str] | None = None) -> Path:
    """A domain with 9 countries and 8 regions, many-to-many relations, one test and one train
    chain (or `files` instead)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    write(root, files or geo_files())
    if commit:
        git(root, "add", "-A")
        git(root, "commit", "-qm", "geo KB")
    return root


@pytest.fixture
def geo(tmp_path) -> Path:
    return make_geo(tmp_path / "geo")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def shard_records(root: Path, split: str) -> list[dict]:
    return [r for p in sorted((root / "shards" / split).glob("*.jsonl")) for r in read_jsonl(p)]


def shard_files(folder: Path) -> dict[str, bytes]:
    """The files of a built shards folder (shards/ or a cached build dir), by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def build_ok(root: Path, *args: str):
    res = run_cli("build", *args, cwd=root)
    assert res.code == 0, res.output
    return res


def by_template(records: list[dict], template: str) -> list[dict]:
    return [r for r in records if r["template"] == template]


# --- output shape ---------------------------------------------------------------------

def test_build_writes_train_bench_manifest_and_dataset_info(geo):
    res = build_ok(geo)
    assert "Built 17 concepts" in res.out
    shards = geo / "shards"
    assert {p.relative_to(shards).as_posix() for p in shards.rglob("*") if p.is_file()} == {
        "MANIFEST.json", "README.md", "dataset_info.json", "train/kb.jsonl", "train/patches.jsonl", "bench/items.jsonl"}
    manifest = json.loads((shards / "MANIFEST.json").read_text())
    for rel, meta in manifest["files"].items():
        data = (shards / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"]
        assert data.count(b"\n") == meta["records"]
    assert manifest["generator_version"] == GENERATOR_VERSION
    assert manifest["kb"]["concepts"] == 17 and manifest["kb"]["chains"] == 2
    info = json.loads((shards / "dataset_info.json").read_text())
    assert info["pwd_kb"]["file_name"] == "train/kb.jsonl" and info["pwd_kb"]["formatting"] == "sharegpt"
    assert all((shards / entry["file_name"]).is_file() for entry in info.values())


def test_kb_tree_in_manifest_is_the_git_tree_of_the_kb_folders(geo):
    build_ok(geo)
    manifest = json.loads((geo / "shards" / "MANIFEST.json").read_text())
    # the KB tree = a git tree holding exactly concepts/ and chains/ (no patches/ here) as committed
    listing = "".join(f"040000 tree {git(geo, 'rev-parse', 'HEAD:' + d)}\t{d}\n" for d in ("chains", "concepts"))
    expected = subprocess.run(["git", "mktree"], cwd=geo, input=listing, capture_output=True, text=True,
                              check=True).stdout.strip()
    assert manifest["kb_tree"] == expected
    expected_key = hashlib.sha256(f"{expected}\0{manifest['config_hash']}\0{GENERATOR_VERSION}".encode()).hexdigest()
    assert manifest["build_key"] == expected_key


def test_every_record_has_id_level_traces_template_and_source(geo):
    write(geo, {"patches/extra.yaml": """
        examples:
          - traces: {concepts: [alpha], statements: [alpha.borders.beta]}
            messages:
              - {role: user, content: Name a neighbour of alpha.}
              - {role: assistant, content: Beta is one of them.}
    """})
    build_ok(geo)
    records = shard_records(geo, "train") + shard_records(geo, "bench")
    assert len(records) > 100
    for rec in records:
        assert {"id", "level", "traces", "template", "source"} <= rec.keys(), rec
        body = {k: v for k, v in rec.items() if k != "id"}
        assert rec["id"] == content_id(body), "id is the content hash of the record"
        assert rec["level"] in {"L1", "L2", "L3", "patch"}
        assert set(rec["traces"]) == {"concepts", "statements", "chain"}
        path, line = rec["source"].rsplit(":", 1)
        lines = (geo / path).read_text().splitlines()
        assert 1 <= int(line) <= len(lines), rec["source"]
    assert len({r["id"] for r in records}) == len(records), "ids are unique"


def test_sources_point_at_the_yaml_node_and_traces_name_it(geo):
    build_ok(geo)
    train = shard_records(geo, "train")
    for rec in train:
        path, line = rec["source"].rsplit(":", 1)
        text = (geo / path).read_text().splitlines()[int(line) - 1]
        if rec["level"] == "L1":
            assert text == f"id: {rec['traces']['concepts'][0]}"
            assert path.endswith(f"/{rec['traces']['concepts'][0]}.yaml")
        elif rec["level"] == "L2":
            (sid,) = rec["traces"]["statements"]
            subject, predicate, _ = sid.split(".")
            assert path.endswith(f"/{subject}.yaml") and text.strip() == f"- predicate: {predicate.replace('-', ' ')}"
        elif rec["level"] == "L3":
            assert rec["traces"]["chain"] == "epsilon-region" and text == "id: epsilon-region"
    gamma_west = [r for r in train if r["traces"]["statements"] == ["gamma.lies-in.west"]]
    assert gamma_west and all(r["source"] == "concepts/countries/gamma.yaml:8" for r in gamma_west)


def test_training_records_are_chat_messages_from_l1_l2_and_train_chains(geo):
    build_ok(geo)
    train = shard_records(geo, "train")
    for rec in train:
        roles = [m["role"] for m in rec["messages"]]
        assert roles == ["user", "assistant"] and all(m["content"] for m in rec["messages"])
    levels = {r["level"] for r in train}
    assert levels == {"L1", "L2", "L3"}
    assert {r["traces"]["concepts"][0] for r in train if r["level"] == "L1"} == set(COUNTRIES) | set(REGIONS)
    l3 = [r for r in train if r["level"] == "L3"]
    assert [r["traces"]["chain"] for r in l3] == ["epsilon-region"], "only train-split chains become demonstrations"
    assert "coast" in l3[0]["messages"][1]["content"]


def test_patch_examples_become_training_records_as_written(geo):
    write(geo, {"patches/extra.yaml": """
        examples:
          - traces: {concepts: [zeta], statements: [zeta.lies-in.coast]}
            kind: gap
            messages:
              - {role: user, content: Where is zeta on the map?}
              - {role: assistant, content: Zeta is on the coast.}
    """})
    build_ok(geo)
    (rec,) = read_jsonl(geo / "shards/train/patches.jsonl")
    assert rec["level"] == "patch" and rec["template"] == "patch.gap"
    assert rec["messages"][1] == {"role": "assistant", "content": "Zeta is on the coast."}
    assert rec["traces"] == {"concepts": ["zeta"], "statements": ["zeta.lies-in.coast"], "chain": ""}
    assert rec["source"] == "patches/extra.yaml:2"


def test_benchmark_covers_test_chains_and_every_node_on_their_paths(geo):
    build_ok(geo)
    bench = shard_records(geo, "bench")
    l3 = [b for b in bench if b["level"] == "L3"]
    assert {b["template"] for b in l3} == {"chain.l3.hops", "hand"}
    assert all(b["traces"]["chain"] == "alpha-region" for b in l3), "train chains never feed the benchmark"
    assert {b["traces"]["concepts"][0] for b in bench if b["level"] == "L1"} == {"alpha", "beta", "north"}
    assert {b["traces"]["statements"][0] for b in bench if b["level"] == "L2"} == {"alpha.borders.beta",
                                                                                  "beta.lies-in.north"}
    for item in bench:
        assert len(item["choices"]) == 4 and len(set(item["choices"])) == 4, item
        assert 0 <= item["answer"] < 4
    (hops,) = by_template(bench, "chain.l3.hops")
    assert hops["choices"][hops["answer"]] == "north"
    assert hops["traces"]["statements"] == ["alpha.borders.beta", "beta.lies-in.north"]
    assert hops["source"] == "chains/alpha-region.yaml:1"
    (probe,) = [b for b in bench if b["level"] == "L1" and b["traces"]["concepts"] == ["alpha"]]
    assert probe["choices"][probe["answer"]] == "The country filed under code ahpla in the test atlas."


def test_hand_written_items_are_included_as_written(geo):
    build_ok(geo)
    (hand,) = by_template(shard_records(geo, "bench"), "hand")
    written = yaml.safe_load(TEST_CHAIN)["items"][0]
    assert hand["question"] == written["question"]
    assert hand["choices"] == written["choices"] and hand["answer"] == written["answer"]
    assert hand["source"] == "chains/alpha-region.yaml:8"
    assert hand["traces"]["chain"] == "alpha-region"


def test_chains_asking_the_same_question_with_the_same_choices_give_one_item(tmp_path):
    """Two test chains from one start along one pattern to one endpoint give the same question
    and (with three possible distractors) the same choices: one item, of the first chain in id
    order (chains/z/s-a.yaml, though chains/a/s-b.yaml comes first on disk), traced to it alone.
    The other keeps its hand item, and its hops keep their probes."""
    root = tmp_path / "pkgs"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    files = {"pwd.yaml": "name: pkgs\npredicates: {depends on: {functional: false}, is in section: {functional: true}}\n"
                         "model: {base: tiny}\n",
             "concepts/s.yaml": concept("s", "package", "- {predicate: depends on, object: m1}\n"
                                                        "- {predicate: depends on, object: m2}"),
             "concepts/m1.yaml": concept("m1", "package", "- {predicate: is in section, object: libs}"),
             "concepts/m2.yaml": concept("m2", "package", "- {predicate: is in section, object: libs}"),
             "chains/z/s-a.yaml": "id: s-a\ntitle: t\nsplit: test\nsteps: [s.depends-on.m1, m1.is-in-section.libs]\n",
             "chains/a/s-b.yaml": "id: s-b\ntitle: t\nsplit: test\nsteps: [s.depends-on.m2, m2.is-in-section.libs]\n"
                                  "items:\n  - {question: Which section holds what s needs?, choices: [libs, admin],"
                                  " answer: 0}\n"}
    for section in ("libs", "admin", "devel", "python"):
        files[f"concepts/{section}.yaml"] = concept(section, "section")
    write(root, files)
    build_ok(root)
    bench = shard_records(root, "bench")
    (hops,) = by_template(bench, "chain.l3.hops")
    assert hops["traces"]["chain"] == "s-a" and hops["traces"]["statements"] == ["s.depends-on.m1",
                                                                                 "m1.is-in-section.libs"]
    assert hops["source"] == "chains/z/s-a.yaml:1"
    assert [i["traces"]["chain"] for i in by_template(bench, "hand")] == ["s-b"]
    assert {sid for i in by_template(bench, "probe.l2.complete") for sid in i["traces"]["statements"]} == {
        "s.depends-on.m1", "m1.is-in-section.libs", "s.depends-on.m2", "m2.is-in-section.libs"}


SECTIONS = ("libs", "admin", "devel", "python")


def _packages(root: Path, chains: int, sections: tuple[str, ...]) -> Path:
    """`chains` test chains p<i> -> lib<i> -> the section lib<i> is in (sections[i % len]), four sections."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    files = {"pwd.yaml": "name: pkgs\npredicates: {depends on: {functional: false}, is in section: {functional: true}}\n"
                         "model: {base: tiny}\ntrain: {epochs: 1}\n"}
    for section in SECTIONS:
        files[f"concepts/{section}.yaml"] = concept(section, "section")
    for i in range(chains):
        section = sections[i % len(sections)]
        files[f"concepts/p{i}.yaml"] = concept(f"p{i}", "package", f"- {{predicate: depends on, object: lib{i}}}")
        files[f"concepts/lib{i}.yaml"] = concept(f"lib{i}", "package", f"- {{predicate: is in section, object: {section}}}")
        files[f"chains/c{i}.yaml"] = (f"id: c{i}\ntitle: t\nsplit: test\n"
                                      f"steps: [p{i}.depends-on.lib{i}, lib{i}.is-in-section.{section}]\n")
    files["chains/c0.yaml"] += "items:\n  - {question: Where is what p0 needs filed?, choices: [libs, admin], answer: 0}\n"
    write(root, files)
    return root


@pytest.mark.parametrize(("chains", "sections", "warned"), [
    (22, ("libs",), ["probe.l2.complete", "chain.l3.hops"]),  # every item's answer is libs: a blind guess passes
    (9, ("libs",), []),  # too few items of each template (18 L2, 9 L3) to tell a prior from chance
    (22, SECTIONS, []),  # as many items end in each section: the guess is at chance
])
def test_a_template_that_a_question_blind_guess_passes_is_a_build_warning(tmp_path, chains, sections, warned):
    """Real data is skewed (most dependencies are libraries): when picking the choice that is most
    often the answer of the other items, without reading the question, scores above 0.5 and twice
    chance, the build warns (stderr and the manifest's `warnings`, so `--format json` too) and goes on."""
    root = _packages(tmp_path / "pkgs", chains, sections)
    res = build_ok(root, "--format", "json")
    warnings = json.loads(res.out)["manifest"]["warnings"]
    assert warnings == json.loads((root / "shards" / "MANIFEST.json").read_text())["warnings"]
    assert [w["template"] for w in warnings] == warned
    assert [line for line in res.err.splitlines() if line.startswith("warning:")] == [
        f"warning: {w['message']}" for w in warnings]
    if warned:
        hops = warnings[1]
        assert (hops["code"], hops["level"], hops["items"], hops["answer"], hops["answer_items"], hops["blind"],
                hops["chance"]) == ("blind-prior", "L3", 22, "libs", 22, 1.0, 0.25)
        assert hops["message"].startswith("benchmark template chain.l3.hops (L3, 22 items): a guess that never "
                                          "reads the question scores 1.00 (chance 0.25): 'libs' is the answer of 22")
        assert "add test chains that end at other answers" in hops["message"]
        assert build_ok(root).err.count("warning: benchmark template") == 2, "said again by a cached build"
        exported = run_cli("export", "lm-eval", str(tmp_path / "tasks"), cwd=root)
        assert exported.code == 0 and "warning: benchmark template" not in exported.err, "said by build and test only"
        git(root, "add", "-A")
        git(root, "commit", "-qm", "kb")
        tested = run_cli("test", cwd=root)
        assert tested.code == 0 and tested.err.count("warning: benchmark template") == 2, tested.err
        diagnosed = run_cli("diagnose", cwd=root)  # reads the recorded result: reports no benchmark
        assert "warning: benchmark template" not in diagnosed.err, diagnosed.err


def test_hand_written_items_whose_answer_echoes_the_question_are_a_word_match_warning(tmp_path):
    """A guess that reads only the question's words and picks the choice they point at (whole,
    or by the first letters: "runtime" and "runtimes") passes these items without the KB; the
    build warns and goes on. The same items with choices that share none do not warn."""
    root = _packages(tmp_path / "pkgs", 22, SECTIONS)
    items = "".join(f"  - {{question: Which runtime package carries the codec{i} files?, "
                    f"choices: [codec{i} runtimes, admin tools, web pages, libs of text], answer: 0}}\n"
                    for i in range(20))
    (root / "chains/c1.yaml").write_text((root / "chains/c1.yaml").read_text() + "items:\n" + items)
    res = build_ok(root, "--format", "json")
    [warning] = [w for w in json.loads(res.out)["manifest"]["warnings"] if w["code"] == "word-match"]
    assert (warning["template"], warning["level"], warning["items"], warning["blind"]) == ("hand", "L3", 21, 0.98)
    assert "reword the hand-written items" in warning["message"] and f"warning: {warning['message']}" in res.err
    (root / "chains/c1.yaml").write_text((root / "chains/c1.yaml").read_text().split("items:")[0] + "items:\n"
                                        + "".join(f"  - {{question: Which package carries the codec{i} files?, "
                                                  f"choices: [libs, admin tools, web pages, text], answer: 0}}\n"
                                                  for i in range(20)))
    assert not [w for w in json.loads(build_ok(root, "--format", "json").out)["manifest"]["warnings"]
                          if w["code"] == "word-match"]


def test_the_blind_score_leaves_the_item_out_and_splits_ties():
    """An answer no other item has is no prior (leave-one-out); a tie is a coin among the tied."""
    assert blind_score([("a", ["a", "b"]), ("b", ["b", "a"])]) == 0.0
    assert blind_score([("a", ["a", "b"])] * 3 + [("b", ["a", "b"])]) == 0.75
    assert blind_score([("a", ["a", "b"]), ("a", ["a", "c"]), ("b", ["b", "a"])]) == 0.5  # 1/2 + 1 + 0


def test_benchmark_wording_never_appears_in_training(geo):
    build_ok(geo)
    train, bench = shard_records(geo, "train"), shard_records(geo, "bench")
    train_templates = {r["template"] for r in train}
    assert train_templates <= set(TRAIN_L1) | set(TRAIN_L2) | set(TRAIN_L3)
    assert not train_templates & {b["template"] for b in bench}
    texts = [m["content"] for r in train for m in r["messages"]]
    for item in bench:
        if item["template"] != "hand":
            assert item["template"] in BENCH
            assert not any(item["question"] in t for t in texts), item["question"]


# --- benchmark correctness --------------------------------------------------------------

def _load_geo_kb(root: Path):
    kb, diags = load_worktree(Domain.find(root), use_cache=False)
    assert not [d for d in diags if d.severity == "error"], diags
    return kb


@pytest.mark.parametrize("seed", range(12))
def test_no_distractor_is_a_true_answer_at_any_hop(geo, seed):
    """alpha borders beta, gamma and delta; gamma lies in two regions: every region reachable
    by borders -> lies in is a true answer and must never be offered as a wrong choice."""
    out = generate(_load_geo_kb(geo), seed=seed)
    bench = [i for items in out.bench.values() for i in items]
    (hops,) = by_template(bench, "chain.l3.hops")
    wrong = set(hops["choices"]) - {hops["choices"][hops["answer"]]}
    assert hops["choices"][hops["answer"]] == "north"
    assert not wrong & TRUE_ENDPOINTS
    assert wrong <= VALID_DISTRACTORS and len(wrong) == 3, "L3 distractors are regions (same type), strictly"
    (first_hop,) = [i for i in bench if i["traces"]["statements"] == ["alpha.borders.beta"]]
    wrong = set(first_hop["choices"]) - {"beta"}
    assert first_hop["choices"][first_hop["answer"]] == "beta"
    assert not wrong & {"alpha", "gamma", "delta"}, "the other objects of alpha borders ... are true too"
    assert wrong <= set(COUNTRIES), "distractors have the answer's type"
    (second_hop,) = [i for i in bench if i["traces"]["statements"] == ["beta.lies-in.north"]]
    assert set(second_hop["choices"]) <= set(REGIONS)
    # training's "false" statements never state a truth either (alpha borders gamma is no false claim)
    false = [r for recs in out.train.values() for r in recs if r["template"] == "l2.false"]
    assert len(false) >= 10
    for rec in false:
        (sid,) = rec["traces"]["statements"]
        subject, pred_slug, _ = sid.split(".")
        predicate = pred_slug.replace("-", " ")
        claim = rec["messages"][0]["content"].removeprefix(f"True or false: {subject} {predicate} ").removesuffix(".")
        truths = {t.lstrip("=") for p, t in RELATIONS[subject] if p == predicate}
        assert claim not in truths, rec["messages"]


def test_a_multi_hop_question_with_several_true_endpoints_asks_for_one(geo):
    """borders -> lies in reaches four regions from alpha: the question asks for "one endpoint",
    not "the" one it does not name; a path with a single endpoint keeps "The endpoint is"."""
    (hops,) = by_template([i for v in generate(_load_geo_kb(geo)).bench.values() for i in v], "chain.l3.hops")
    assert hops["question"] == "Quiz. From alpha, follow the relations borders -> lies in. One endpoint is"
    files = geo_files()
    files["concepts/countries/alpha.yaml"] = geo_concept("alpha", "country", [("borders", "beta")])
    single = make_geo(geo.parent / "single", commit=False, files=files)
    (hops,) = by_template([i for v in generate(_load_geo_kb(single)).bench.values() for i in v], "chain.l3.hops")
    assert hops["question"].endswith("follow the relations borders -> lies in. The endpoint is")


def test_distractors_seen_across_seeds_cover_only_valid_ones(geo):
    kb = _load_geo_kb(geo)
    seen = set()
    for seed in range(40):
        (hops,) = generate(kb, seed=seed).bench["l3"][:1]
        seen |= set(hops["choices"]) - {"north"}
    assert seen == VALID_DISTRACTORS, "all valid distractors get used, none of the true endpoints"


def _hub_domain(root: Path) -> Path:
    """Twelve countries, four hub regions (three countries lie in each) and four rare ones (one
    country each), one test chain per region kind: a frequency prior would pick the hubs."""
    hubs, rare = ["north", "south", "east", "west"], ["coast", "highland", "island", "central"]
    lies_in = {f"c{i}": hubs[i % 4] for i in range(12)} | {f"r{i}": rare[i] for i in range(4)}
    files = {"pwd.yaml": GEO_CONFIG,
             "concepts/countries/x.yaml": geo_concept("x", "country", [("borders", "c0"), ("borders", "r0")])}
    for country, region in lies_in.items():
        files[f"concepts/countries/{country}.yaml"] = geo_concept(country, "country", [("lies in", region)])
    for region in hubs + rare:
        files[f"concepts/regions/{region}.yaml"] = geo_concept(region, "region")
    for name, via in (("hub", "c0"), ("rare", "r0")):
        files[f"chains/{name}.yaml"] = (f"id: {name}\ntitle: x to a region via {via}\nsplit: test\nsteps:\n"
                                        f"  - x.borders.{via}\n  - {via}.lies-in.{lies_in[via]}\n")
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    write(root, files)
    return root


@pytest.mark.parametrize("seed", range(6))
def test_distractors_come_from_the_answers_frequency_band(tmp_path, seed):
    """A hub answer (a region three statements name) is offered among hubs, a rare one among
    rare ones, at L2 and L3, so no choice wins for being a frequent word."""
    hubs, rare = {"north", "south", "east", "west"}, {"coast", "highland", "island", "central"}
    bench = [i for items in generate(_load_geo_kb(_hub_domain(tmp_path / "d")), seed=seed).bench.values()
             for i in items]
    region_items = [i for i in bench if i["template"] != "hand" and i["choices"][i["answer"]] in hubs | rare]
    assert {i["template"] for i in region_items} == {"probe.l2.complete", "chain.l3.hops"}
    for item in region_items:
        answer = item["choices"][item["answer"]]
        assert set(item["choices"]) <= (hubs if answer in hubs else rare), item


def test_a_ring_that_ran_short_still_serves_the_pairs_next_statement(tmp_path):
    """A draw that took what a ring had and then found nothing more must not mark the ring empty
    for the (subject, predicate) pair: its next statement's choices would depend on which
    statement was drawn first (before, the second got none from it)."""
    from pwd_git.build.distractors import Distractors
    from pwd_git.build.draws import Ring

    kb = _load_geo_kb(_hub_domain(tmp_path / "d"))
    shared = Distractors(kb, 0)
    ring = Ring(0, ["north", "south"])
    first, _ = shared.wrong_targets("one", "x", {"east"}, True, [ring], pair=("x", "lies in"))
    second, _ = shared.wrong_targets("two", "x", {"east"}, True, [ring], pair=("x", "lies in"))
    alone, _ = Distractors(kb, 0).wrong_targets("two", "x", {"east"}, True, [ring], pair=("x", "lies in"))
    assert sorted(first) == sorted(second) == ["north", "south"] and second == alone


@pytest.mark.parametrize("seed", range(4))
def test_a_namesakes_definition_and_type_are_never_wrong_choices(tmp_path, seed):
    """Two cities called Paris, and "orange" the fruit and the colour: "Paris is defined as" is
    answered by either Paris's definition and "orange is" by either type, so a namesake's
    definition or type is never offered as a wrong choice."""
    files = {"pwd.yaml": GEO_CONFIG.replace("  watches: {functional: false}\n",
                                            "  has colour: {functional: false}\n  is mixed from: {functional: false}\n"),
             "chains/orange.yaml": "id: orange\ntitle: t\nsplit: test\n"
                                   "steps: [orange-fruit.has-colour.orange-colour, orange-colour.is-mixed-from.red]\n",
             "chains/paris.yaml": "id: paris\ntitle: t\nsplit: test\n"
                                  "steps: [paris-fr.lies-in.france, france.lies-in.europe]\n"}
    kinds = {"fruit": ["apple", "pear", "plum", "fig"], "colour": ["red", "blue", "green", "cyan", "teal"],
             "tree": ["oak", "elm"], "country": ["spain", "chad", "peru", "laos"], "river": ["nile"],
             "region": ["asia", "africa", "oceania", "antarctica"], "city": ["lyon", "austin"]}
    for ctype, cids in kinds.items():
        for cid in cids:
            files[f"concepts/{ctype}/{cid}.yaml"] = geo_concept(cid, ctype)
    named = {"orange-fruit": ("fruit", "orange", [("has colour", "orange-colour")], "A round citrus fruit."),
             "orange-colour": ("colour", "Orange", [("is mixed from", "red")], "The colour between red and yellow."),
             "paris-fr": ("city", "Paris", [("lies in", "france")], "The capital of France on the Seine."),
             "paris-tx": ("city", "Paris", [], "A small town in Lamar County, Texas."),
             "france": ("country", "France", [("lies in", "europe")], "A republic in western Europe."),
             "europe": ("region", "Europe", [], "The continent west of Asia.")}
    for cid, (ctype, term, relations, definition) in named.items():
        files[f"concepts/{ctype}/{cid}.yaml"] = geo_concept(cid, ctype, relations, definition).replace(
            f"term: {cid}", f"term: {term}")
    root = tmp_path / "d"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, files)
    bench = [i for items in generate(_load_geo_kb(root), seed=seed).bench.values() for i in items]
    probes = {(i["traces"]["concepts"][0], i["template"]): i for i in bench if i["level"] == "L1"}
    assert "A small town in Lamar County, Texas." not in probes[("paris-fr", "probe.l1.describe")]["choices"]
    assert "a colour" not in probes[("orange-fruit", "probe.l1.kind")]["choices"]
    assert "a fruit" not in probes[("orange-colour", "probe.l1.kind")]["choices"]


@pytest.mark.parametrize("declared", [True, False])
def test_a_declared_inverse_makes_the_converse_true_for_distractors(geo, declared):
    """alpha borders beta is stated one way; with `borders: {inverse: borders}` "beta borders
    alpha" is true too, so the probe "beta borders ..." never offers alpha, nor does training
    claim it false. Undeclared, alpha is an ordinary wrong country (which shows the test bites)."""
    config = GEO_CONFIG.replace("borders: {functional: false}",
                                "borders: {functional: false, inverse: borders}" if declared else "borders: {}")
    write(geo, {"pwd.yaml": config,
                "concepts/countries/beta.yaml": geo_concept("beta", "country", [("lies in", "north"), ("borders", "iota")]),
                "chains/beta-iota.yaml": "id: beta-iota\ntitle: t\nsplit: test\n"
                                         "steps: [beta.borders.iota, iota.lies-in.north]\n"})
    kb = _load_geo_kb(geo)
    offered = set()
    for seed in range(12):
        out = generate(kb, seed=seed)
        (probe,) = [i for i in out.bench["l2"] if i["traces"]["statements"] == ["beta.borders.iota"]]
        offered |= set(probe["choices"])
        (false,) = [r for r in out.train["l2"] if r["template"] == "l2.false"
                    and r["traces"]["statements"] == ["beta.borders.iota"]]
        offered.add(false["messages"][0]["content"].removeprefix("True or false: beta borders ").rstrip("."))
    assert ("alpha" in offered) is not declared


@pytest.mark.parametrize("declared", [True, False])
def test_a_transitive_predicate_makes_what_its_chains_reach_true_for_distractors(geo, declared):
    """beta lies in north, north lies in mainland: with `lies in: {transitive: true}` beta lies in
    mainland too, so the probe "beta lies in ..." never offers it, nor does training claim it
    false. Undeclared, mainland is an ordinary wrong region (which shows the test bites)."""
    config = GEO_CONFIG.replace("lies in: {functional: false}",
                                "lies in: {functional: false, transitive: true}" if declared else "lies in: {}")
    write(geo, {"pwd.yaml": config, "concepts/regions/mainland.yaml": geo_concept("mainland", "region"),
                "concepts/regions/north.yaml": geo_concept("north", "region", [("lies in", "mainland")])})
    kb = _load_geo_kb(geo)
    assert ("mainland" in kb.true_targets()[("beta", "lies in")]) is declared
    offered = set()
    for seed in range(12):
        out = generate(kb, seed=seed)
        (probe,) = [i for i in out.bench["l2"] if i["traces"]["statements"] == ["beta.lies-in.north"]]
        offered |= set(probe["choices"])
        offered |= {r["messages"][0]["content"].removeprefix("True or false: beta lies in ").rstrip(".")
                    for r in out.train["l2"] if r["template"] == "l2.false"
                    and r["traces"]["statements"] == ["beta.lies-in.north"]}
    assert ("mainland" in offered) is not declared


def test_a_transitive_cycle_ends_and_every_member_reaches_the_others(geo):
    config = GEO_CONFIG.replace("lies in: {functional: false}", "lies in: {functional: false, transitive: true}")
    write(geo, {"pwd.yaml": config, "concepts/regions/north.yaml": geo_concept("north", "region", [("lies in", "south")]),
                "concepts/regions/south.yaml": geo_concept("south", "region", [("lies in", "north")])})
    targets = _load_geo_kb(geo).true_targets()
    assert targets[("north", "lies in")] == targets[("south", "lies in")] == {"north", "south"}
    assert targets[("beta", "lies in")] == {"north", "south"} and targets[("gamma", "lies in")] == {"north", "south", "west"}


def test_value_answers_get_value_distractors_never_the_true_value(geo):
    write(geo, {"chains/alpha-capital.yaml": """
        id: alpha-capital
        title: The capital of alpha's neighbour
        split: test
        steps: [alpha.borders.beta, beta.has-capital.betatown]
    """, "concepts/countries/beta.yaml": geo_concept("beta", "country", [("lies in", "north"),
                                                                        ("has capital", "=Betatown")])})
    build_ok(geo)
    (item,) = [b for b in by_template(shard_records(geo, "bench"), "chain.l3.hops")
               if b["traces"]["chain"] == "alpha-capital"]
    assert item["choices"][item["answer"]] == "Betatown"
    assert len(set(item["choices"]) & {"Alphaville", "Etaburg", "Thetaport", "Iotacity"}) == 3, \
        "distractors of a value answer are other values of the same predicate"


def _claims(kb, out) -> dict[str, str]:
    """statement id -> the target its l2.false record claims ("True or false: <subject> <predicate> <claim>.")."""
    claims = {}
    for rec in by_template(out.train["l2"], "l2.false"):
        st = kb.statements[rec["traces"]["statements"][0]]
        claim = rec["messages"][0]["content"].removeprefix(f"True or false: {kb.concepts[st.subject].term} {st.predicate} ")
        claims[st.id] = claim.removesuffix(".")
    return claims


@pytest.mark.parametrize("seed", range(8))
def test_a_false_claim_takes_a_target_its_own_predicate_uses(tmp_path, seed):
    """"mRNA is transcribed by hexokinase" is false for a reason no one needs to learn: the
    false claim of a statement names another target of the same predicate (another RNA
    polymerase; another value of `has length`), else a concept of the object's type (another
    place), and none at all rather than another predicate's value (the one motto)."""
    config = GEO_CONFIG.replace("  watches: {functional: false}\n", "  is transcribed by: {functional: true}\n"
                                "  has length: {functional: true}\n  has motto: {functional: true}\n"
                                "  is stored in: {functional: true}\n")
    transcribed = {"rrna": "pol1", "mrna": "pol2", "snrna": "pol2", "trna": "pol3", "srna": "pol3"}
    lengths = {"rrna": "=5000 nt", "mrna": "=2000 nt", "trna": "=76 nt", "srna": "=120 nt"}
    files = {"pwd.yaml": config}
    for rna, pol in transcribed.items():
        relations = [("is transcribed by", pol), ("is stored in", "nucleus")]
        relations += [("has length", lengths[rna])] if rna in lengths else []
        relations += [("has motto", "=Onward")] if rna == "mrna" else []
        files[f"concepts/rna/{rna}.yaml"] = geo_concept(rna, "rna", relations)
    for enzyme in ["pol1", "pol2", "pol3", "hexokinase", "catalase", "rubisco", "helicase", "ligase", "primase"]:
        files[f"concepts/enzymes/{enzyme}.yaml"] = geo_concept(enzyme, "enzyme")
    for place in ["nucleus", "cytosol", "vacuole"]:
        files[f"concepts/places/{place}.yaml"] = geo_concept(place, "place")
    root = tmp_path / "rna"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, files)
    kb = _load_geo_kb(root)
    claims = _claims(kb, generate(kb, seed=seed))
    for rna, pol in transcribed.items():
        assert claims[f"{rna}.is-transcribed-by.{pol}"] in {"pol1", "pol2", "pol3"} - {pol}
        assert claims[f"{rna}.is-stored-in.nucleus"] in {"cytosol", "vacuole"}
    for rna, length in lengths.items():
        assert claims[f"{rna}.has-length.{length[1:].replace(' ', '-')}"] in {v[1:] for v in lengths.values()} - {length[1:]}
    assert "mrna.has-motto.onward" not in claims and "mrna.has-motto.onward" in kb.statements


@pytest.mark.parametrize("seed", range(6))
def test_no_two_choices_read_the_same_and_none_reads_as_a_true_answer(geo, seed):
    """Real data spells one value several ways ("Red", "red ", "red.") and gives a concept a
    name another concept has as an alias: such a distractor is the answer to a reader, and a
    "True or false" record built from it would teach that a truth is false."""
    colours = {"alpha": "red", "beta": "Red", "gamma": "red.", "delta": " RED ", "epsilon": "blue",
               "zeta": "Blue", "eta": "green", "theta": "white", "iota": "black"}
    files = {}
    for c in COUNTRIES:
        files[f"concepts/countries/{c}.yaml"] = geo_concept(c, "country", [*RELATIONS.get(c, ()),
                                                                            ("has colour", f"={colours[c]}")])
    files["concepts/regions/north.yaml"] = geo_concept("north", "region").replace(
        "type: region", "type: region\naliases: [the coast]")
    files["concepts/regions/coast.yaml"] = geo_concept("coast", "region").replace("term: coast", "term: The coast")
    write(geo, files)
    kb = _load_geo_kb(geo)
    gen, out = Generator(kb, seed), generate(kb, seed=seed)
    probes = [gen.statement_probe(st) for st in kb.statements.values()]  # every statement, not just the chain's
    choices = [item["choices"] for items in out.bench.values() for item in items]
    choices += [[answer, *wrong] for _, answer, wrong, *_ in probes]
    for texts in choices:
        read = [" ".join(c.casefold().split()).strip(". ") for c in texts]
        assert len(set(read)) == len(read), texts
    assert not [p for p in probes if p[1] == "north" and "The coast" in p[2]], "'the coast' is an alias of north"
    for rec in [r for recs in out.train.values() for r in recs if r["template"] == "l2.false"]:
        (sid,) = rec["traces"]["statements"]
        subject, predicate, _ = sid.split(".")
        claim = rec["messages"][0]["content"].rsplit(" ", 1)[-1].strip(". ").casefold()
        if predicate == "has-colour":
            assert claim != colours[subject].strip(". ").casefold(), rec["messages"]


def test_chain_whose_answer_type_has_too_few_other_concepts_is_an_error(geo):
    snap = snapshot(geo)
    write(geo, {
        "concepts/stars/sol.yaml": geo_concept("sol", "star"),
        "concepts/stars/vega.yaml": geo_concept("vega", "star"),
        "concepts/stars/rigel.yaml": geo_concept("rigel", "star"),
        "concepts/countries/theta.yaml": geo_concept("theta", "country", RELATIONS["theta"] + [("watches", "sol")]),
        "concepts/countries/eta.yaml": geo_concept("eta", "country", RELATIONS["eta"] + [("borders", "theta")]),
        "chains/eta-star.yaml": "id: eta-star\ntitle: t\nsplit: test\nsteps: [eta.borders.theta, theta.watches.sol]\n",
    })
    assert run_cli("validate", cwd=geo).code == 0
    res = run_cli("build", cwd=geo)
    assert res.code == 1, res.output
    assert "chains/eta-star.yaml:1: error: chain 'eta-star'" in res.err
    assert "'star'" in res.err and "found 2" in res.err
    assert "Traceback" not in res.output
    assert not (geo / "shards").exists()
    assert not [k for k in snapshot(geo) if k not in snap and not k.startswith(("concepts/", "chains/"))]
    # every such chain in one run, not one per build
    write(geo, {"chains/theta-star.yaml": "id: theta-star\ntitle: t\nsplit: test\n"
                                          "steps: [eta.borders.theta, theta.watches.sol]\n"})
    res = run_cli("build", cwd=geo)
    assert res.code == 1 and "and 1 more test chain(s)" in res.err
    assert "chains/eta-star.yaml:1: error: chain 'eta-star'" in res.err
    assert "\n  chains/theta-star.yaml:1: chain 'theta-star' has no valid distractors" in res.err


def test_three_concept_domain_cannot_make_a_four_option_question_until_it_grows(domain):
    """The stock fixture: a -> b -> c, all of type 'thing'. The chain's answer c has only b as a
    possible distractor (a is the start), so build refuses; three more things make it build."""
    res = run_cli("build", cwd=domain)
    assert res.code == 1
    assert "chains/a-to-c.yaml:1: error: chain 'a-to-c' has no valid distractors" in res.err
    assert "needs 3 concepts of type 'thing' that are not true answers, found 1" in res.err
    assert "hint: add more concepts of type 'thing'" in res.err
    write(domain, {f"concepts/{c}.yaml": concept(c, relations="- predicate: is part of\n  object: a") for c in "def"})
    build_ok(domain)
    (hops,) = by_template(shard_records(domain, "bench"), "chain.l3.hops")
    assert hops["choices"][hops["answer"]] == "c"
    assert len(set(hops["choices"]) - {"c"}) == 3 and set(hops["choices"]) - {"c"} <= {"b", "d", "e", "f"}


def test_value_chain_needs_three_other_values_of_its_own_predicate(geo):
    """L3 distractors are strict: a capital-city question never pads its choices with other
    predicates' values (a region, a phase...) that no one would pick."""
    write(geo, {
        "concepts/countries/beta.yaml": geo_concept("beta", "country", [("lies in", "north"), ("has motto", "=Onward")]),
        "concepts/countries/eta.yaml": geo_concept("eta", "country", RELATIONS["eta"] + [("has motto", "=Upward")]),
        "chains/alpha-motto.yaml": "id: alpha-motto\ntitle: t\nsplit: test\nsteps: [alpha.borders.beta, beta.has-motto.onward]\n",
    })
    res = run_cli("build", cwd=geo)
    assert res.code == 1, res.output
    assert "chains/alpha-motto.yaml:1: error: chain 'alpha-motto'" in res.err and "values of 'has motto'" in res.err
    write(geo, {"concepts/countries/theta.yaml": geo_concept("theta", "country", RELATIONS["theta"] + [
        ("has motto", "=Inward")]), "concepts/countries/iota.yaml": geo_concept("iota", "country", RELATIONS["iota"] + [
        ("has motto", "=Outward")])})
    build_ok(geo)
    (item,) = [b for b in shard_records(geo, "bench") if b["traces"]["chain"] == "alpha-motto" and b["level"] == "L3"]
    assert sorted(item["choices"]) == ["Inward", "Onward", "Outward", "Upward"]


# --- determinism and cache ---------------------------------------------------------------

def test_rebuild_from_scratch_is_byte_identical(geo):
    build_ok(geo)
    first = shard_files(geo / "shards")
    shutil.rmtree(geo / "shards")
    shutil.rmtree(geo / ".git" / "pwd")
    build_ok(geo)
    assert shard_files(geo / "shards") == first


def test_two_clones_build_identical_bytes_even_with_another_hash_seed(geo, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    git(tmp_path, "clone", "-q", str(geo), str(one))
    git(tmp_path, "clone", "-q", str(geo), str(two))
    build_ok(one)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # set/dict order of str must not leak into the bytes
    proc = subprocess.run([sys.executable, "-m", "pwd_git", "build", "-q"], cwd=two, env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert shard_files(one / "shards") == shard_files(two / "shards")
    assert len(shard_files(one / "shards")) == 6


def test_rev_build_matches_worktree_build_byte_for_byte(geo, tmp_path):
    build_ok(geo)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(geo), str(clone))
    before = snapshot(clone)
    res = build_ok(clone, "--rev", "HEAD", "--format", "json")
    info = json.loads(res.out)
    assert info["cached"] is False, "a fresh clone has no cache: this really built from the object store"
    cached_dir = Path(info["path"])
    assert cached_dir.parent == clone / ".git" / "pwd" / "builds"
    assert shard_files(cached_dir) == shard_files(geo / "shards")
    assert snapshot(clone) == before and not (clone / "shards").exists(), "--rev never touches the worktree"


def test_rev_builds_an_old_commit_without_touching_the_worktree(geo):
    build_ok(geo)
    v1 = shard_files(geo / "shards")
    git(geo, "add", "-A")
    git(geo, "commit", "-qm", "shards v1")
    write(geo, {"concepts/countries/zeta.yaml": geo_concept("zeta", "country", [("lies in", "highland")])})
    write(geo, {"chains/epsilon-region.yaml": TRAIN_CHAIN.replace("zeta.lies-in.coast", "zeta.lies-in.highland")})
    git(geo, "commit", "-qam", "v2: zeta moved")
    write(geo, {"concepts/countries/iota.yaml": geo_concept("iota", "country", [("lies in", "south")])})  # dirty
    shutil.rmtree(geo / ".git" / "pwd" / "builds")
    before = snapshot(geo)
    res = build_ok(geo, "--rev", "HEAD~1", "--format", "json")
    assert snapshot(geo) == before
    info = json.loads(res.out)
    assert info["cached"] is False
    assert shard_files(Path(info["path"])) == v1
    assert info["kb_tree"] != json.loads(build_ok(geo, "--rev", "HEAD", "--format", "json").out)["kb_tree"]
    assert git(geo, "status", "--porcelain") == "M concepts/countries/iota.yaml"


def test_second_build_is_a_cache_hit_and_does_not_regenerate(geo, monkeypatch):
    first = build_ok(geo)
    assert first.out.startswith("Built ")
    shutil.rmtree(geo / "shards")  # restored from the cache, not regenerated

    def boom(*_a, **_k):
        raise AssertionError("generate() must not run on a cache hit")

    monkeypatch.setattr(shards_mod, "Generator", boom)
    res = build_ok(geo)
    assert res.out.startswith("Cached ")
    assert (geo / "shards" / "MANIFEST.json").is_file()


def test_build_key_follows_kb_and_build_config_only(geo):
    def key() -> str:
        return json.loads(build_ok(geo, "--format", "json").out)["build_key"]

    base = key()
    write(geo, {"README.md": "notes\n", "pwd.yaml": GEO_CONFIG.replace("base: tiny", "base: gpt2")})
    assert key() == base, "files outside the KB and model settings do not change the data"
    write(geo, {"pwd.yaml": GEO_CONFIG.replace("seed: 0", "seed: 1")})
    seeded = key()
    assert seeded != base
    write(geo, {"pwd.yaml": GEO_CONFIG, "concepts/regions/coast.yaml": geo_concept("coast", "region", definition="Shore.")})
    assert key() not in (base, seeded)


def test_hand_edited_shard_is_restored_by_build(geo):
    build_ok(geo)
    good = shard_files(geo / "shards")
    (geo / "shards/train/kb.jsonl").write_text("tampered\n")
    res = build_ok(geo)
    assert res.out.startswith("Cached ")
    assert shard_files(geo / "shards") == good


# --- --check and pre-commit -------------------------------------------------------------

def test_check_fresh_and_stale(geo):
    res = run_cli("build", "--check", cwd=geo)
    assert res.code == 1 and "MANIFEST.json is missing" in res.err
    build_ok(geo)
    res = run_cli("build", "--check", cwd=geo)
    assert res.code == 0, res.output
    assert "up to date" in res.out

    write(geo, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A shore region.")})
    res = run_cli("build", "--check", cwd=geo)
    assert res.code == 1
    assert "the KB changed since the shards were built" in res.err and "git pwd build" in res.err
    build_ok(geo)
    assert run_cli("build", "--check", cwd=geo).code == 0

    (geo / "shards/bench/items.jsonl").write_text((geo / "shards/bench/items.jsonl").read_text().replace("north", "south"))
    res = run_cli("build", "--check", "--format", "json", cwd=geo)
    assert res.code == 1
    info = json.loads(res.out)
    assert info["fresh"] is False
    assert info["reasons"] == ["shards/bench/items.jsonl does not match the manifest (edited by hand?)"]


def test_check_notices_build_config_change(geo):
    build_ok(geo)
    write(geo, {"pwd.yaml": GEO_CONFIG.replace("ngram: 8", "ngram: 9")})
    res = run_cli("build", "--check", cwd=geo)
    assert res.code == 1 and "build settings changed" in res.err


def test_check_does_not_write_anything(geo):
    build_ok(geo)
    write(geo, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A shore region.")})
    before = snapshot(geo)
    assert run_cli("build", "--check", cwd=geo).code == 1
    assert snapshot(geo) == before


def test_pre_commit_hooks_yaml_offers_build_check():
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "pwd-build-check"]
    assert hook["entry"] == "git-pwd build --check"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    for path in ("pwd.yaml", "concepts/a/b.yaml", "chains/c.yml", "patches/p.yaml", "shards/train/kb.jsonl",
                 "shards/MANIFEST.json", "sub/domain/concepts/x.yaml"):
        assert files.search(path), path
    for path in ("README.md", "docs/concepts.md", "src/shards.py"):
        assert not files.search(path), path


PRE_COMMIT_CONFIG = r"""
repos:
  - repo: local
    hooks:
      - id: pwd-build-check
        name: pwd-git shards are fresh
        entry: git-pwd build --check
        language: system
        pass_filenames: false
        files: '(^|/)(pwd\.yaml|(concepts|chains|patches)/.*\.ya?ml|shards/.*)$'
"""


@pytest.mark.slow
def test_pre_commit_rejects_a_commit_with_stale_shards(tmp_path):
    if shutil.which("pre-commit") is None or shutil.which("git-pwd") is None:
        pytest.skip("pre-commit and git-pwd must be on PATH")
    root = make_geo(tmp_path / "dom", commit=False)
    write(root, {".pre-commit-config.yaml": PRE_COMMIT_CONFIG})
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}

    def sh(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)

    assert sh("pre-commit", "install").returncode == 0
    assert run_cli("build", cwd=root).code == 0
    sh("git", "add", "-A")
    ok = sh("git", "commit", "-qm", "KB and shards")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    write(root, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A shore region.")})
    sh("git", "add", "concepts")
    rejected = sh("git", "commit", "-qm", "edit coast without rebuilding")
    assert rejected.returncode != 0
    assert "the KB changed since the shards were built" in rejected.stdout + rejected.stderr
    assert git(root, "log", "--format=%s", "-1") == "KB and shards"

    assert run_cli("build", cwd=root).code == 0
    sh("git", "add", "shards")
    accepted = sh("git", "commit", "-qm", "edit coast, rebuilt")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert git(root, "log", "--format=%s", "-1") == "edit coast, rebuilt"

    (root / "shards/train/kb.jsonl").write_text("{}\n")  # a hand edit to a shard is rejected too
    sh("git", "add", "shards")
    rejected = sh("git", "commit", "-qm", "hand-edit a shard")
    assert rejected.returncode != 0
    assert "shards/train/kb.jsonl does not match the manifest" in rejected.stdout + rejected.stderr


# --- incremental and parallel builds --------------------------------------------------------

def _clean_build(root: Path) -> dict[str, bytes]:
    """What a build from nothing (no build cache, one process) writes for the working tree."""
    shutil.rmtree(root / ".git" / "pwd" / "builds", ignore_errors=True)
    os.environ["PWD_BUILD_JOBS"] = "1"
    try:
        return shard_files(shards_mod.build(Domain.find(root), to_worktree=False).path)
    finally:
        del os.environ["PWD_BUILD_JOBS"]


def _count_renders(monkeypatch) -> list:
    calls: list = []
    real = units_mod.render

    def counting(spec):
        calls.append(spec[0])
        return real(spec)

    monkeypatch.setattr(units_mod, "render", counting)
    return calls


def test_parallel_build_is_byte_identical_to_serial(geo, monkeypatch):
    write(geo, {f"concepts/regions/r{i}.yaml": geo_concept(f"r{i}", "region") for i in range(40)})
    serial = _clean_build(geo)
    shutil.rmtree(geo / ".git" / "pwd" / "builds")
    monkeypatch.setattr(units_mod, "PARALLEL_MIN", 0)
    monkeypatch.setattr(units_mod, "CHUNK", 3)  # many tasks, results merged in order
    monkeypatch.setenv("PWD_BUILD_JOBS", "2")
    calls = _count_renders(monkeypatch)
    parallel = shard_files(shards_mod.build(Domain.find(geo), to_worktree=False).path)
    assert calls == [], "rendering ran in the worker processes"
    assert parallel == serial


def test_the_pool_is_used_only_when_there_is_much_to_render(geo, monkeypatch):
    monkeypatch.setattr(units_mod, "PARALLEL_MIN", 10)
    monkeypatch.setenv("PWD_BUILD_JOBS", "2")
    calls = _count_renders(monkeypatch)
    build_ok(geo)
    assert calls == [], "a cold build renders everything: in worker processes"
    write(geo, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A shore region.")})
    build_ok(geo)
    assert 1 <= len(calls) < 10, "a small edit renders a few units: in this process"


def test_one_concept_edit_renders_only_the_units_that_mention_it(geo, monkeypatch):
    build_ok(geo)
    write(geo, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A shore region.")})
    calls = _count_renders(monkeypatch)
    build_ok(geo)
    # coast's L1 records, and probes or false statements that offer its definition or name as a wrong answer
    assert 1 <= len(calls) <= 6, calls
    assert "L1" in calls and "B2" not in calls
    monkeypatch.undo()
    assert shard_files(geo / "shards") == {k: v for k, v in _clean_build(geo).items()}


def test_edits_that_change_benchmark_questions_still_build_what_a_clean_build_does(geo):
    build_ok(geo)
    write(geo, {"concepts/countries/beta.yaml": geo_concept("beta", "country", RELATIONS["beta"]).replace(
        "term: beta", "term: Beta Major")})  # beta's probe and the chain question change wording
    build_ok(geo)
    assert shard_files(geo / "shards") == _clean_build(geo)


def test_a_missing_or_damaged_previous_build_means_rendering_everything(geo):
    build_ok(geo)
    manifest = json.loads((geo / "shards" / "MANIFEST.json").read_text())
    builds = geo / ".git" / "pwd" / "builds"
    (builds / manifest["build_key"] / "train" / "kb.jsonl").write_bytes(b"truncated")
    write(geo, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A shore region.")})
    build_ok(geo)
    assert shard_files(geo / "shards") == _clean_build(geo)
    (builds / f"{json.loads((geo / 'shards' / 'MANIFEST.json').read_text())['build_key']}.units").write_bytes(b"junk")
    write(geo, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A sandy region.")})
    build_ok(geo)
    assert shard_files(geo / "shards") == _clean_build(geo)


def test_the_unit_cache_stays_out_of_shards(geo):
    build_ok(geo)
    assert sorted(shard_files(geo / "shards")) == [
        "MANIFEST.json", "README.md", "bench/items.jsonl", "dataset_info.json", "train/kb.jsonl", "train/patches.jsonl"]


def test_every_line_is_the_canonical_json_of_its_record(geo):
    """Lines are written by hand for speed: they must be exactly what the canonical encoder writes.
    Generated text is `flat` (no tab or line separator left), a hand-written item is as written."""
    tricky = 'Says "hi" \\ back\\slash\ttab, ünïcødé, emoji 😀, line\u2028sep, </script> & {braces}.'
    term, alias, definition = (json.dumps(t, ensure_ascii=False) for t in ('co"ast', "küste", tricky))  # YAML
    question = "Crossing one frontier out of alpha, which region can a traveller end up in?"
    write(geo, {"concepts/regions/coast.yaml": f"id: coast\nterm: {term}\ntype: region\n"
                                                f"aliases: [{alias}]\ndefinition: {definition}\n",
                "chains/alpha-region.yaml": TEST_CHAIN.replace(question, json.dumps(question.replace(" ", "\t", 1)
                                                                                    .replace(", ", ",\u2028")))})
    build_ok(geo)
    lines = [line for p in sorted((geo / "shards").rglob("*.jsonl")) for line in p.read_text().split("\n")[:-1]]
    assert any("😀" in line for line in lines) and any("\u2028" in line for line in lines)
    assert [json.loads(line)["template"] for line in lines if "\u2028" in line or "\\t" in line] == ["hand"]
    for line in lines:
        assert line == ENCODER.encode(json.loads(line)), line


def test_adding_a_concept_changes_the_distractors_of_few_others(tmp_path):
    """Distractors come from consistent-hash rings: a new member of a type moves only the draws
    that land next to it, not every item of its type."""
    root = tmp_path / "towns"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    files = {"pwd.yaml": "name: towns\npredicates:\n  near: {functional: false}\nmodel: {base: tiny}\n"}
    for i in range(120):
        files[f"concepts/t{i}.yaml"] = geo_concept(f"t{i}", "town", [("near", f"t{(i * 7 + 1) % 120}")])
    write(root, files)

    def false_records() -> dict[str, str]:
        out = generate(_load_geo_kb(root))
        return {r["traces"]["statements"][0]: r["messages"][0]["content"] for r in out.train["l2"]
                if r["template"] == "l2.false"}

    before = false_records()
    write(root, {"concepts/t999.yaml": geo_concept("t999", "town")})
    after = false_records()
    changed = [sid for sid in before if before[sid] != after[sid]]
    assert len(before) == 120 and len(changed) <= 12, changed


@pytest.mark.parametrize("seed", range(30))
def test_unit_decontamination_agrees_with_checking_each_text(seed):
    import random

    rng = random.Random(seed)
    vocab = ["alpha", "beta", "is", "a", "the", "Kind", "of", "x1", "\0", "région", "", "  ", "Quiz."]

    def text() -> str:
        return rng.choice([" ", "-", ", ", "\0", "\n"]).join(rng.choice(vocab) for _ in range(rng.randrange(0, 12)))

    questions = [text() for _ in range(8)] + ["alpha beta", "is a the kind of x1 alpha beta"]
    index = BenchIndex(questions, ngram=rng.choice([3, 5, 8]), near_duplicate=0.5)
    for _ in range(20):
        records = [tuple(text() for _ in range(rng.randrange(1, 4))) for _ in range(rng.randrange(1, 6))]
        expected = [(n, h) for n, r in enumerate(records) if (h := index.record_hits(r))]
        assert index.unit_hits(records) == expected


def test_decontamination_words_are_lowercased_alphanumeric_runs():
    from pwd_git.build.decontam import words

    texts = ["Hello, World! x1-y2_z3", "\u212a\u0130STANBUL stra\u00dfe \u00c9T\u00c9 \ud800 caf\u00e9s", "", "\0a\tb\nc",
             "Ωmega ΣΑΣ 😀 ＦＵＬＬ width", "don't stop—ever 3.14"]
    for text in texts:
        assert words(text) == [w.encode() for w in re.findall(r"[a-z0-9]+", text.lower())], text


# --- decontamination ------------------------------------------------------------------

LONG_DEFINITION = "A landlocked republic famous for its terraced vineyards and ancient mountain monasteries."


def test_hand_item_copying_a_definition_fails_naming_both_records(geo):
    write(geo, {"concepts/countries/beta.yaml": geo_concept("beta", "country", RELATIONS["beta"], LONG_DEFINITION)})
    build_ok(geo)
    before = snapshot(geo)
    leaky = TEST_CHAIN.replace(
        "Crossing one frontier out of alpha, which region can a traveller end up in?",
        "Which country is a landlocked republic famous for its terraced vineyards and ancient mountain monasteries?")
    write(geo, {"chains/alpha-region.yaml": leaky})
    res = run_cli("build", cwd=geo)
    assert res.code == 1, res.output
    assert "leakage" in res.err
    hand_line = next(line for line in res.err.splitlines() if "chains/alpha-region.yaml:8" in line)
    assert "concepts/countries/beta.yaml:1" in hand_line, "names the training record's source too"
    assert len(re.findall(r"\b[0-9a-f]{16}\b", hand_line)) == 2, "names both record ids"
    assert "Traceback" not in res.output
    assert {k: v for k, v in snapshot(geo).items() if k.startswith("shards/")} == \
        {k: v for k, v in before.items() if k.startswith("shards/")}, "a failed build leaves shards/ alone"


def test_seven_shared_words_are_not_a_leak(geo):
    write(geo, {"concepts/countries/beta.yaml": geo_concept("beta", "country", RELATIONS["beta"], LONG_DEFINITION)})
    write(geo, {"chains/alpha-region.yaml": TEST_CHAIN.replace(
        "Crossing one frontier out of alpha, which region can a traveller end up in?",
        "Tourists say its terraced vineyards and ancient mountain monasteries draw crowds; where do alpha's "
        "neighbours lie?")})
    build_ok(geo)


def test_patch_example_copying_a_benchmark_question_fails(geo):
    build_ok(geo)
    before = {k: v for k, v in snapshot(geo).items() if k.startswith("shards/")}
    (hops,) = by_template(shard_records(geo, "bench"), "chain.l3.hops")
    write(geo, {"patches/leak.yaml": textwrap.dedent(f"""
        examples:
          - traces: {{concepts: [alpha], chain: alpha-region}}
            messages:
              - role: user
                content: {json.dumps(hops["question"])}
              - {{role: assistant, content: north}}
    """)})
    res = run_cli("build", cwd=geo)
    assert res.code == 1, res.output
    leak = next(line for line in res.err.splitlines() if "patches/leak.yaml:2" in line)
    assert hops["id"] in leak and "chains/alpha-region.yaml:1" in leak
    assert {k: v for k, v in snapshot(geo).items() if k.startswith("shards/")} == before


# --- bad input ------------------------------------------------------------------------

def test_invalid_kb_is_refused_pointing_at_validate(geo):
    build_ok(geo)
    before = snapshot(geo)
    write(geo, {"concepts/countries/iota.yaml": geo_concept("iota", "country", [("lies in", "atlantis")])})
    for args in ((), ("--check",)):
        res = run_cli("build", *args, cwd=geo)
        assert res.code == 1, res.output
        assert "does not validate" in res.err and "git pwd validate" in res.err
        assert "concepts/countries/iota.yaml:6" in res.err
    after = snapshot(geo)
    assert {k: v for k, v in after.items() if k.startswith("shards/")} == \
        {k: v for k, v in before.items() if k.startswith("shards/")}


def test_unknown_rev_exits_2(geo):
    res = run_cli("build", "--rev", "no-such-branch", cwd=geo)
    assert res.code == 2
    assert "unknown revision: 'no-such-branch'" in res.err and "Traceback" not in res.output


def test_outside_a_domain_exits_2(tmp_path):
    res = run_cli("build", cwd=tmp_path)
    assert res.code == 2 and "not a git repository" in res.err


def _leftovers(root: Path) -> list[str]:
    builds = root / ".git" / "pwd" / "builds"
    temp = [p.name for p in root.iterdir() if p.name.startswith(".shards")]
    if builds.exists():
        temp += [p.name for p in builds.iterdir() if p.name.startswith(".tmp")]
    return temp


def _interrupt_after(n: int, real):
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return wrapped


def test_interrupt_while_writing_records_leaves_nothing_behind(geo, monkeypatch):
    build_ok(geo)
    before = snapshot(geo)
    builds_before = sorted(p.name for p in (geo / ".git/pwd/builds").iterdir())
    write(geo, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A shore region.")})
    before["concepts/regions/coast.yaml"] = (geo / "concepts/regions/coast.yaml").read_bytes()
    monkeypatch.setattr(shards_mod, "_append", _interrupt_after(3, shards_mod._append))
    with pytest.raises(KeyboardInterrupt):
        shards_mod.build(Domain.find(geo))
    monkeypatch.undo()
    assert snapshot(geo) == before
    assert _leftovers(geo) == []
    assert sorted(p.name for p in (geo / ".git/pwd/builds").iterdir()) == builds_before, "no half cache entry"
    build_ok(geo)
    assert run_cli("build", "--check", cwd=geo).code == 0


def test_interrupt_while_copying_into_shards_leaves_old_shards(geo, monkeypatch):
    build_ok(geo)
    write(geo, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A shore region.")})
    before = snapshot(geo)

    def copy_some(src, dst, **kwargs):
        return shutil.copytree(src, dst, **kwargs, copy_function=_interrupt_after(3, shutil.copy2))

    monkeypatch.setattr(shards_mod, "shutil", SimpleNamespace(copytree=copy_some, rmtree=shutil.rmtree))
    with pytest.raises(KeyboardInterrupt):
        shards_mod.build(Domain.find(geo))
    monkeypatch.undo()
    assert snapshot(geo) == before
    assert _leftovers(geo) == []


def test_interrupt_between_the_two_renames_restores_old_shards(geo, monkeypatch):
    build_ok(geo)
    write(geo, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A shore region.")})
    shards_mod.build(Domain.find(geo), to_worktree=False)  # compiled and cached: only the swap into shards/ is left
    before = snapshot(geo)
    renames = []

    def rename(src, dst):
        renames.append((Path(src).name, Path(dst).name))
        if len(renames) == 2:  # shards -> the scratch folder done; tmp -> shards interrupted
            raise KeyboardInterrupt
        os.rename(src, dst)

    monkeypatch.setattr(shards_mod, "os", SimpleNamespace(rename=rename, getpid=os.getpid, stat=os.stat, chmod=os.chmod))
    with pytest.raises(KeyboardInterrupt):
        shards_mod.build(Domain.find(geo))
    monkeypatch.undo()
    assert renames[0][0] == "shards" and renames[1][1] == "shards" and renames[2] == (renames[0][1], "shards")
    assert snapshot(geo) == before
    assert _leftovers(geo) == []


def untracked_outside_shards(root: Path) -> list[str]:
    """What `git add -A` would pick up besides shards/ (the KB is committed)."""
    status = git(root, "status", "--porcelain", "--untracked-files=all").splitlines()
    return [line for line in status if not line[3:].startswith("shards/")]


def test_a_build_killed_while_copying_into_shards_leaves_nothing_in_the_worktree(geo):
    """kill -9 in the middle of the copy into shards/ (made slow by thousands of files in the
    cached build): the scratch copy lives under .git/pwd, so nothing is left for `git add -A`."""
    build_ok(geo)
    cached = geo / ".git/pwd/builds" / json.loads((geo / "shards/MANIFEST.json").read_text())["build_key"]
    (cached / "padding").mkdir()
    for i in range(5000):
        (cached / "padding" / f"{i}.txt").write_text("x")
    shutil.rmtree(geo / "shards")
    proc = subprocess.Popen([sys.executable, "-m", "pwd_git", "build", "-q"], cwd=geo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    builds = geo / ".git/pwd/builds"
    try:
        while proc.poll() is None:
            if [p for p in geo.iterdir() if p.name.startswith(".shards")] or \
                    [p for p in builds.glob(".tmp-*") if (p / "padding").is_dir()]:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the copy ended before it could be killed"
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [p.name for p in geo.iterdir() if p.name.startswith(".")] == [".git"]
    assert untracked_outside_shards(geo) == []
    shutil.rmtree(cached / "padding")
    build_ok(geo)
    assert untracked_outside_shards(geo) == [] and run_cli("build", "--check", cwd=geo).code == 0


def test_scratch_folders_a_killed_build_left_next_to_shards_are_removed_by_the_next_build(geo):
    build_ok(geo)
    left = [".shards-k2j3h4g5", ".shards-old-4242", ".shards-999999999-x1"]  # owners gone (an earlier pwd-git's names too)
    live = f".shards-{os.getpid()}-a1b2"  # a build of a live process on the other-filesystem path: kept
    for name in [*left, live]:
        write(geo, {f"{name}/train/kb.jsonl": "partial\n"})
    build_ok(geo)  # shards/ is up to date: the sweep does not wait for a copy
    assert sorted(p.name for p in geo.iterdir() if p.name.startswith(".shards")) == [live]


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["022", "027"])
def test_shards_folder_mode_follows_the_umask(geo, umask):
    old = os.umask(umask)
    try:
        build_ok(geo)
    finally:
        os.umask(old)
    for folder in ("shards", "shards/train", "shards/bench"):
        assert stat.S_IMODE((geo / folder).stat().st_mode) == 0o777 & ~umask, folder
    assert stat.S_IMODE((geo / "shards/MANIFEST.json").stat().st_mode) == 0o666 & ~umask


def test_linked_worktree_whose_git_dir_is_on_another_filesystem_builds_shards(geo):
    """The renames into shards/ cannot cross filesystems: with .git/pwd on another one (a linked
    worktree on tmpfs), the scratch folder is next to shards/, and gone after the build."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or shm.stat().st_dev == geo.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the tests' temp folder")
    linked = Path(tempfile.mkdtemp(prefix="pwd-git-test-", dir=shm)) / "wt"
    try:
        git(geo, "worktree", "add", "-q", "--detach", str(linked))
        res = build_ok(linked)
        assert "Built" in res.out or "Cached" in res.out
        assert run_cli("build", "--check", cwd=linked).code == 0
        assert [p.name for p in linked.iterdir() if p.name.startswith(".")] == [".git"]
        assert untracked_outside_shards(linked) == []
    finally:
        git(geo, "worktree", "remove", "--force", str(linked))
        shutil.rmtree(linked.parent, ignore_errors=True)


def test_reading_thousands_of_blobs_for_a_rev_build_does_not_deadlock(tmp_path):
    """`git pwd build --rev` in a fresh clone reads every KB blob through Repo.read_blobs."""
    root = tmp_path / "big"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {f"concepts/c{i}.yaml": f"id: c{i}\nterm: thing {i}\ntype: thing\ndefinition: Thing {i}.\n"
                 for i in range(2500)})
    git(root, "add", "-A")
    oids = git(root, "ls-files", "-s").split()[1::4]
    assert len(oids) == 2500
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(Repo.discover(root).read_blobs(oids)), daemon=True)
    reader.start()
    reader.join(timeout=15)
    assert not reader.is_alive(), "read_blobs deadlocked"
    assert len(got) == 2500 and got[7][1].startswith(b"id: c")


def test_old_builds_are_pruned_and_rebuild_the_same_bytes(geo, monkeypatch):
    """The cache keeps the N most recently used builds (and the latest, and anything in use)."""
    monkeypatch.setenv("PWD_GIT_KEEP_BUILDS", "2")
    builds = geo / ".git" / "pwd" / "builds"
    keys = []
    for n in range(4):
        if n:
            path = geo / "concepts" / "countries" / "gamma.yaml"
            path.write_text(path.read_text().replace("definition: ", f"definition: Edit {n}. ", 1))
            git(geo, "commit", "-qam", f"edit {n}")
        build_ok(geo, "-q")
        keys.append(json.loads((geo / "shards" / "MANIFEST.json").read_text())["build_key"])
        if n == 0:
            first = shard_files(builds / keys[0])
        for manifest in builds.glob("*/MANIFEST.json"):  # all used long ago, except the one just built
            if manifest.parent.name != keys[-1]:
                os.utime(manifest, (manifest.stat().st_mtime - 7200,) * 2)
    kept = sorted(p.name for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".tmp-"))
    assert kept == sorted(keys[-2:])
    assert sorted(p.name for p in builds.glob("*.units")) == sorted(f"{k}.units" for k in keys[-2:])
    build_ok(geo, "-q", "--rev", "HEAD~3")
    assert shard_files(builds / keys[0]) == first


def test_a_build_used_within_the_hour_is_not_pruned(geo, monkeypatch):
    monkeypatch.setenv("PWD_GIT_KEEP_BUILDS", "1")
    builds = geo / ".git" / "pwd" / "builds"
    build_ok(geo, "-q")
    path = geo / "concepts" / "countries" / "gamma.yaml"
    path.write_text(path.read_text().replace("definition: ", "definition: Edited. ", 1))
    build_ok(geo, "-q")
    assert len([p for p in builds.iterdir() if (p / "MANIFEST.json").is_file()]) == 2

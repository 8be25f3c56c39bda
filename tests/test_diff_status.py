"""`git pwd diff`, the shards textconv driver, and `git pwd status`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, run_cli, write
from tests.test_build import RELATIONS, TEST_CHAIN, build_ok, geo_concept, make_geo

NEW_ALPHA_DEFINITION = "The first country listed in the test atlas."


@pytest.fixture
def geo(tmp_path) -> Path:
    return make_geo(tmp_path / "geo")


def change_geo(root: Path) -> None:
    """v2: alpha redefined, kappa added (with a statement), gamma no longer lies in west,
    the test chain retitled."""
    write(root, {
        "concepts/countries/alpha.yaml": geo_concept("alpha", "country", RELATIONS["alpha"], NEW_ALPHA_DEFINITION),
        "concepts/countries/kappa.yaml": geo_concept("kappa", "country", [("lies in", "coast")]),
        "concepts/countries/gamma.yaml": geo_concept("gamma", "country", [("lies in", "south")]),
        "chains/alpha-region.yaml": TEST_CHAIN.replace("From alpha across a border", "Out of alpha over a border"),
    })


def rev_manifest_and_bench(root: Path, rev: str) -> tuple[dict, set[str]]:
    info = json.loads(build_ok(root, "--rev", rev, "--format", "json").out)
    folder = Path(info["path"])
    bench = {json.loads(line)["id"] for p in (folder / "bench").glob("*.jsonl") for line in p.read_text().splitlines()}
    return info["manifest"], bench


# --- diff -----------------------------------------------------------------------------

def test_diff_lists_node_changes_with_field_diffs(geo):
    change_geo(geo)
    git(geo, "add", "-A")
    git(geo, "commit", "-qm", "v2")
    res = run_cli("diff", "HEAD~1", "HEAD", cwd=geo)
    assert res.code == 0, res.output
    lines = res.out.splitlines()
    heads = [line for line in lines if re.match(r"^[+~-] (concept|statement|chain) ", line)]
    assert heads == [
        "~ concept alpha  (concepts/countries/alpha.yaml:1)",
        "~ concept gamma  (concepts/countries/gamma.yaml:1)",
        "+ concept kappa  (concepts/countries/kappa.yaml:1)",
        "- statement gamma.lies-in.west  (concepts/countries/gamma.yaml:8)",
        "+ statement kappa.lies-in.coast  (concepts/countries/kappa.yaml:6)",
        "~ chain alpha-region  (chains/alpha-region.yaml:1)",
    ]
    assert "    -definition: The country filed under code ahpla in the test atlas." in lines
    assert f"    +definition: {NEW_ALPHA_DEFINITION}" in lines
    assert "    -  - gamma.lies-in.west" in lines
    assert "    -title: From alpha across a border into a region" in lines
    assert "    +title: Out of alpha over a border into a region" in lines
    assert not any("epsilon" in line or "beta" in line.split("(")[0] for line in heads), "unchanged nodes are not listed"


def test_diff_of_a_multi_line_definition_is_one_diff_line_per_line(geo):
    """A definition written as a YAML block (a docstring, a pasted paragraph) has line breaks: it
    is a `|` block in the diff with a +/- line per line of text, never one diff line whose
    text runs on unprefixed over the next lines of the terminal."""
    old = "First line of alpha.\nSecond line.\n\nThird paragraph."
    write(geo, {"concepts/countries/alpha.yaml": geo_concept("alpha", "country", RELATIONS["alpha"], json.dumps(old))})
    git(geo, "commit", "-qam", "block definition")
    write(geo, {"concepts/countries/alpha.yaml": geo_concept("alpha", "country", RELATIONS["alpha"],
                                                             json.dumps(old.replace("Second", "2nd")))})
    res = run_cli("diff", "HEAD", cwd=geo)
    assert res.code == 0, res.output
    after = res.out.split("~ concept alpha  (concepts/countries/alpha.yaml:1)\n", 1)[1].splitlines()
    body = after[:next(i for i, line in enumerate(after) if not line.startswith("    "))]
    assert all(line[4:5] in "-+ @" for line in body), body
    assert [line for line in body if line[4:5] in "-+" and line[5:7] not in ("--", "++")] == [
        "    -  Second line.", "    +  2nd line."], body
    assert "     definition: |" in body and "     " + "  Third paragraph." in body


def test_diff_of_a_source_shows_its_fields_as_the_file_writes_them(geo):
    """An extracted node's `source: {doc, quote}` was shown as a Python dict."""
    concept = geo_concept("alpha", "country", RELATIONS["alpha"])
    sourced = concept + "source: {doc: corpus/atlas.md, quote: Alpha is a country.}\n"
    write(geo, {"concepts/countries/alpha.yaml": sourced})
    git(geo, "commit", "-qam", "sourced")
    write(geo, {"concepts/countries/alpha.yaml": sourced.replace("Alpha is a country.", "Alpha is a small country.")})
    res = run_cli("diff", "HEAD", cwd=geo)
    assert res.code == 0, res.output
    lines = res.out.splitlines()
    assert "     source:" in lines and "     " + "  doc: corpus/atlas.md" in lines
    assert "    -  quote: Alpha is a country." in lines and "    +  quote: Alpha is a small country." in lines
    assert not [line for line in lines if "{'" in line]


def test_diff_training_deltas_and_benchmark_items_match_real_builds(geo):
    change_geo(geo)
    git(geo, "add", "-A")
    git(geo, "commit", "-qm", "v2")
    res = run_cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=geo)
    assert res.code == 0, res.output
    info = json.loads(res.out)
    old_manifest, old_bench = rev_manifest_and_bench(geo, "HEAD~1")
    new_manifest, new_bench = rev_manifest_and_bench(geo, "HEAD")
    old_counts = old_manifest["counts"]["train_per_concept"]
    new_counts = new_manifest["counts"]["train_per_concept"]
    expected = {c: new_counts.get(c, 0) - old_counts.get(c, 0) for c in old_counts.keys() | new_counts.keys()}
    assert info["train_deltas"] == {c: d for c, d in sorted(expected.items()) if d}
    assert info["train_deltas"]["kappa"] > 3 and info["train_deltas"]["gamma"] < 0 and info["train_deltas"]["west"] < 0
    assert "alpha" not in info["train_deltas"], "a reworded definition changes records, not their number"
    assert {i["id"] for i in info["bench_added"]} == new_bench - old_bench
    assert {i["id"] for i in info["bench_removed"]} == old_bench - new_bench
    assert "concepts/countries/alpha.yaml:1" in {i["source"] for i in info["bench_added"] if i["level"] == "L1"}
    assert {(n["kind"], n["id"], n["change"]) for n in info["nodes"]} == {
        ("concept", "alpha", "changed"), ("concept", "gamma", "changed"), ("concept", "kappa", "added"),
        ("statement", "gamma.lies-in.west", "removed"), ("statement", "kappa.lies-in.coast", "added"),
        ("chain", "alpha-region", "changed")}
    assert info["old"] == "HEAD~1" and info["new"] == "HEAD" and info["data_skipped"] is None

    text = run_cli("diff", "HEAD~1", "HEAD", cwd=geo).out
    assert f"  kappa: +{info['train_deltas']['kappa']}" in text
    assert f"benchmark: +{len(info['bench_added'])} -{len(info['bench_removed'])} items" in text


def test_diff_against_the_worktree_and_stat(geo):
    write(geo, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A shore region.")})
    res = run_cli("diff", "HEAD", cwd=geo)
    assert res.code == 0, res.output
    assert "~ concept coast  (concepts/regions/coast.yaml:1)" in res.out
    assert "+++ worktree:concepts/regions/coast.yaml" in res.out
    assert "  coast" not in res.out.split("training records per concept:")[-1], "same number of records"
    stat = run_cli("diff", "HEAD", "--stat", cwd=geo)
    assert "~ concept coast" in stat.out and "+definition" not in stat.out


def test_diff_of_identical_revisions_says_so(geo):
    res = run_cli("diff", "HEAD", "HEAD", cwd=geo)
    assert res.code == 0 and res.out.strip() == "no KB changes between HEAD and HEAD"
    assert run_cli("diff", "HEAD", cwd=geo).out.strip() == "no KB changes between HEAD and worktree"


def test_diff_of_an_invalid_kb_still_shows_node_changes(geo):
    write(geo, {"concepts/countries/iota.yaml": geo_concept("iota", "country", [("lies in", "atlantis")])})
    res = run_cli("diff", "HEAD", cwd=geo)
    assert res.code == 0, res.output
    assert "+ statement iota.lies-in.atlantis" in res.out and "- statement iota.lies-in.north" in res.out
    assert "not compared: the KB at worktree does not validate; run `git pwd validate`" in res.out
    info = json.loads(run_cli("diff", "HEAD", "--format", "json", cwd=geo).out)
    assert info["data_skipped"] and info["train_deltas"] == {} and info["bench_added"] == []


PATCH = """
examples:
  - traces: {concepts: [alpha], statements: [alpha.borders.beta]}
    messages:
      - {role: user, content: Name a neighbour of alpha.}
      - {role: assistant, content: %s}
"""


def test_diff_shows_settings_and_patch_examples(geo):
    """A change that is not a node (a pwd.yaml setting, a patch example) is still a data change:
    `diff` lists it rather than saying there is none; a patch file moved elsewhere is no change."""
    write(geo, {"patches/extra.yaml": PATCH % "Beta is one of them.",
                "pwd.yaml": (geo / "pwd.yaml").read_text() + "train: {}\n"})
    git(geo, "add", "-A")
    git(geo, "commit", "-qm", "patch")
    config = (geo / "pwd.yaml").read_text()
    write(geo, {"pwd.yaml": config.replace("seed: 0}", "seed: 0, holdout: [gamma]}").replace("train: {}", "train: {epochs: 7}"),
                "patches/more/extra.yaml": PATCH % "Beta borders alpha.", "patches/extra.yaml": ""})
    (geo / "patches/extra.yaml").unlink()
    write(geo, {"patches/moved/kept.yaml": PATCH % "Beta is one of them."})
    res = run_cli("diff", "HEAD", cwd=geo)
    assert res.code == 0, res.output
    assert '+ pwd.yaml build.holdout: (unset) -> ["gamma"]' in res.out
    assert "+ pwd.yaml train.epochs: (unset) -> 7" in res.out
    assert "patch examples: +1 -0" in res.out
    assert "  + patches/more/extra.yaml:2 example (alpha)" in res.out
    info = json.loads(run_cli("diff", "HEAD", "--format", "json", cwd=geo).out)
    assert [(c["key"], c["change"], c["new"]) for c in info["settings"]] == [
        ("build.holdout", "added", ["gamma"]), ("train.epochs", "added", 7)]
    assert [p["location"] for p in info["patches_added"]] == ["patches/more/extra.yaml:2"]
    assert info["patches_removed"] == []
    write(geo, {"pwd.yaml": config.replace("seed: 0", "seed: 3")})
    (geo / "patches/more/extra.yaml").unlink()
    changed = run_cli("diff", "HEAD", cwd=geo).out
    assert "~ pwd.yaml build.seed: 0 -> 3" in changed and "patch examples" not in changed


def test_diff_unknown_revision_exits_2(geo):
    res = run_cli("diff", "nope", cwd=geo)
    assert res.code == 2 and "unknown revision: 'nope'" in res.err


# --- textconv ---------------------------------------------------------------------------

def _commit_geo_with_shards(root: Path) -> None:
    build_ok(root)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "shards")


def _shard_diff(root: Path) -> str:
    return subprocess.run(["git", "diff", "--", "shards/train/kb.jsonl"], cwd=root, capture_output=True, text=True,
                          check=True).stdout


def test_git_diff_of_shards_is_readable_after_init(tmp_path):
    root = tmp_path / "dom"
    res = run_cli("init", str(root), cwd=tmp_path)
    assert res.code == 0, res.output
    assert git(root, "config", "diff.pwd-shards.textconv") == "git-pwd textconv"
    assert git(root, "config", "merge.pwd-extract-lock.driver") == "git-pwd merge-lock %O %A %B %P"
    assert git(root, "check-attr", "merge", "extract.lock.json").endswith(": pwd-extract-lock")
    from tests.test_build import geo_files

    write(root, geo_files())
    _commit_geo_with_shards(root)
    write(root, {"concepts/countries/zeta.yaml": geo_concept("zeta", "country", [("lies in", "island")])})
    write(root, {"chains/epsilon-region.yaml": "id: epsilon-region\ntitle: t\nsplit: train\n"
                                                "steps: [epsilon.borders.zeta, zeta.lies-in.island]\n"})
    build_ok(root)
    diff = _shard_diff(root)
    assert "-[L2 l2.fact] Tell me a fact about zeta. => zeta lies in coast.  (concepts/countries/zeta.yaml:6) #" in diff
    assert "+[L2 l2.fact] Tell me a fact about zeta. => zeta lies in island.  (concepts/countries/zeta.yaml:6) #" in diff
    assert '{"id"' not in diff and '"messages"' not in diff, "no raw JSON lines"


def test_git_diff_textconv_configured_by_hand(geo):
    write(geo, {".gitattributes": "shards/**/*.jsonl diff=pwd-shards\n"})
    _commit_geo_with_shards(geo)
    write(geo, {"concepts/countries/zeta.yaml": geo_concept("zeta", "country", [("lies in", "island")])})
    write(geo, {"chains/epsilon-region.yaml": "id: epsilon-region\ntitle: t\nsplit: train\n"
                                               "steps: [epsilon.borders.zeta, zeta.lies-in.island]\n"})
    build_ok(geo)
    raw = _shard_diff(geo)
    assert '"messages":[' in raw and "[L2 l2.fact]" not in raw, "without the driver git shows raw JSON"
    git(geo, "config", "diff.pwd-shards.textconv", "git-pwd textconv")
    readable = _shard_diff(geo)
    assert "+[L2 l2.fact] Tell me a fact about zeta. => zeta lies in island." in readable
    assert '"messages":[' not in readable


def test_textconv_renders_training_and_benchmark_records(geo):
    build_ok(geo)
    res = run_cli("textconv", "shards/bench/items.jsonl", cwd=geo)
    assert res.code == 0, res.output
    hops = next(line for line in res.out.splitlines() if line.startswith("[L3 chain.l3.hops]"))
    assert "*north" in hops and "(chains/alpha-region.yaml:1) #" in hops
    res = run_cli("textconv", "shards/train/kb.jsonl", cwd=geo)
    assert next(line for line in res.out.splitlines() if line.startswith("[L1 ")).startswith(
        "[L1 l1.define] What is alpha? => alpha is defined as ")
    assert len(res.out.splitlines()) == len((geo / "shards/train/kb.jsonl").read_text().splitlines())


# --- status ----------------------------------------------------------------------------

def test_status_reports_size_freshness_and_last_build(geo):
    res = run_cli("status", cwd=geo)
    assert res.code == 0, res.output
    assert "KB: 17 concepts, 17 statements, 2 chains (1 test), 0 patch examples" in res.out
    assert "shards/: stale" in res.out and "MANIFEST.json is missing" in res.out

    key = json.loads(build_ok(geo, "--format", "json").out)["build_key"]
    res = run_cli("status", cwd=geo)
    assert f"shards/: fresh (last build {key[:12]})" in res.out
    info = json.loads(run_cli("status", "--format", "json", cwd=geo).out)
    assert info["shards"] == "fresh" and info["build_key"] == key == info["current_key"]
    assert info["kb"] == {"concepts": 17, "statements": 17, "chains": 2, "test_chains": 1, "patch_examples": 0}
    assert info["errors"] == 0 and info["stale_reasons"] == []

    write(geo, {"concepts/regions/coast.yaml": geo_concept("coast", "region", definition="A shore region.")})
    info = json.loads(run_cli("status", "--format", "json", cwd=geo).out)
    assert info["shards"] == "stale" and info["build_key"] == key != info["current_key"]
    assert any("KB changed" in r for r in info["stale_reasons"])
    res = run_cli("status", cwd=geo)
    assert "shards/: stale (last build" in res.out and "run `git pwd build`" in res.out


def test_status_names_what_build_holdout_keeps_out_of_training(geo):
    config = (geo / "pwd.yaml").read_text()
    write(geo, {"pwd.yaml": config.replace("seed: 0}", "seed: 0, holdout: [gamma, alpha.borders.beta]}")})
    res = run_cli("status", cwd=geo)
    assert res.code == 0, res.output
    assert "held out of training (build.holdout): 1 concept(s), 1 statement(s): gamma, alpha.borders.beta" in res.out
    info = json.loads(run_cli("status", "--format", "json", cwd=geo).out)
    assert info["held_out"] == ["gamma", "alpha.borders.beta"]
    write(geo, {"pwd.yaml": config})
    assert "held out" not in run_cli("status", cwd=geo).out


def test_status_with_an_invalid_kb(geo):
    write(geo, {"concepts/countries/iota.yaml": geo_concept("iota", "country", [("lies in", "atlantis")])})
    res = run_cli("status", cwd=geo)
    assert res.code == 0, res.output
    assert "validate: 1 error(s)" in res.out and "unknown (KB does not validate)" in res.out
    info = json.loads(run_cli("status", "--format", "json", cwd=geo).out)
    assert info["errors"] == 1 and info["build_key"] is None


def test_status_lists_patch_and_repair_branches_not_merged_yet(geo):
    import random

    from pwd_git import notes
    from tests.test_report import result_line

    assert "branches not merged yet" not in run_cli("status", cwd=geo).out
    main = git(geo, "rev-parse", "--abbrev-ref", "HEAD")
    git(geo, "checkout", "-qb", "pwd/patch/abc-alpha")
    write(geo, {"patches/alpha.yaml": "examples: []\n"})
    git(geo, "add", "-A")
    git(geo, "commit", "-qm", "patch")
    patch_tip = git(geo, "rev-parse", "HEAD")
    git(geo, "branch", "pwd/repair/merged", main)  # contained in main: not a proposal
    git(geo, "checkout", "-qb", "pwd/repair/r1")
    write(geo, {"patches/beta.yaml": "examples: []\n"})
    git(geo, "add", "-A")
    git(geo, "commit", "-qm", "repair round")
    repair_tip = git(geo, "rev-parse", "HEAD")
    git(geo, "checkout", "-q", main)
    git(geo, "notes", f"--ref={notes.NOTES_REF}", "add", "-m",
        result_line(repair_tip, random.Random(1), ["alpha"], verdict="fail"), repair_tip)

    res = run_cli("status", cwd=geo)
    assert res.code == 0, res.output
    assert "branches not merged yet: 2" in res.out
    assert f"pwd/patch/abc-alpha ({patch_tip[:10]}): untested; run `git pwd run pwd/patch/abc-alpha`" in res.out
    assert f"pwd/repair/r1 ({repair_tip[:10]}): fail" in res.out and "pwd/repair/merged" not in res.out
    info = json.loads(run_cli("status", "--format", "json", cwd=geo).out)
    assert info["proposals"] == [{"branch": "pwd/patch/abc-alpha", "tip": patch_tip, "verdict": None},
                                 {"branch": "pwd/repair/r1", "tip": repair_tip, "verdict": "fail"}]

    git(geo, "merge", "-q", "--ff-only", "pwd/repair/r1")  # r1 grew from the patch branch: both land
    assert [p["branch"] for p in json.loads(run_cli("status", "--format", "json", cwd=geo).out)["proposals"]] == []

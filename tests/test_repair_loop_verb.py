"""`git pwd repair`: rounds of diagnose -> patch -> fine-tune -> test on one branch.

The domain is the bikes history's KB (a 1-layer tiny model memorises it in seconds) plus a
train chain, with two parts and their statements starved (`build.holdout`, set A) and one
more part starved (set B). The start commit's result is written the way `test` would (as in
test_repair.py): A's items fail and, so that what passed before is not at the mercy of how a
model happens to train, every other item whose id ends in 0-7 fails too (a weak model); B's
items pass. Round 1 patches A's data gaps; B has no training data, so a real model fails its
probes and round 2 has a data gap to patch: what each round finds is set through the KB.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from http.server import HTTPServer
from pathlib import Path

import pytest

from pwd_git import notes
from pwd_git.git import Repo
from tests.conftest import GIT_ENV, git, run_cli, snapshot
from tests.histories import base_files, record_results, write
from tests.test_repair import TOKEN, _Forge

STARVED_A = ["spoke", "spoke.is-part-of.wheel", "chain-ring", "chain-ring.is-part-of.drivetrain"]
STARVED_B = ["saddle", "saddle.is-part-of.seat"]
ROOT = Path(__file__).resolve().parents[1]


def _user_state(root: Path) -> tuple:
    """What the user sees: worktree files, the index, HEAD and the current branch."""
    files = {k: v for k, v in snapshot(root).items() if not k.startswith(".git/")}
    return (files, git(root, "ls-files", "-s"), git(root, "status", "--porcelain"), git(root, "rev-parse", "HEAD"),
            git(root, "symbolic-ref", "HEAD"))


def _touches(item: dict, nodes: list[str]) -> bool:
    return bool(set(nodes) & {*item["traces"]["concepts"], *item["traces"]["statements"]})


def _weak_start(commit: str, item: dict) -> bool:
    return _touches(item, STARVED_A) or (not _touches(item, STARVED_B) and item["id"][-1] in "01234567")


def _bikes(root: Path) -> str:
    """The starved bikes KB, committed with fresh shards; its HEAD."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    files = base_files()
    for cid, kind, obj in (("valve", "part", "rim"), ("rim", "assembly", "trailer"), ("trailer", "machine", None)):
        files[f"concepts/extra/{cid}.yaml"] = (f"id: {cid}\nterm: {cid}\ntype: {kind}\n"
                                               f"definition: The {cid} is used on some vehicles.\n"
                                               + (f"relations:\n  - predicate: is part of\n    object: {obj}\n" if obj else ""))
    # definitions that differ in more than the (masked) name, so describe probes can be learned
    marks = iter(["amber", "basalt", "cedar", "dune", "ember", "fjord", "glacier", "harbor", "indigo", "juniper",
                  "kelp", "lagoon", "meadow", "nectar", "orchid", "prairie", "quartz", "reef", "sierra", "tundra",
                  "umber", "velvet", "willow", "yarrow", "zephyr", "acorn", "birch", "coral", "delta", "estuary"])
    for path in sorted(files):
        if path.startswith("concepts/"):
            files[path] = re.sub(r"^definition: (.*)\.$", lambda m: f"definition: {m[1]}, marked {next(marks)}.",
                                 files[path], flags=re.M)
    files["chains/valve-to-trailer.yaml"] = ("id: valve-to-trailer\ntitle: a valve ends up in a trailer\nsplit: train\n"
                                             "steps: [valve.is-part-of.rim, rim.is-part-of.trailer]\n")
    files["pwd.yaml"] += (f"build: {{holdout: {json.dumps(STARVED_A + STARVED_B)}}}\n"
                          # The loop's mechanics, not its gate: a 1-layer model of a 55-record KB, scored
                          # against a scripted start, flips far more items than the defaults allow (B's
                          # by design). benchmarks/repair_rounds.py measures the default gate.
                          "repair: {max_broken: 0.75}\n")
    files["pwd.yaml"] = files["pwd.yaml"].replace("test: {}", "test: {alpha: 0.5}")
    write(root, files)
    assert run_cli("build", "-q", cwd=root).code == 0
    git(root, "add", "-A")
    git(root, "commit", "-qm", "bikes KB, starved")
    return git(root, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def looped(tmp_path_factory):
    """The starved domain after `repair --rounds 1 --open-pr --format json` (a loopback forge),
    with a copy of the model cache as it was right after round 1."""
    base = tmp_path_factory.mktemp("repair-loop")
    server = HTTPServer(("127.0.0.1", 0), _Forge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**GIT_ENV, "GIT_CONFIG_GLOBAL": str(base / "gitconfig"), "PWD_GIT_CACHE": str(base / "cache"),
                           "PWD_GIT_FORGE_API": f"http://127.0.0.1:{server.server_port}", "GITHUB_TOKEN": TOKEN}.items():
            mp.setenv(key, value)
        root = base / "bikes"
        start = _bikes(root)
        record_results(root, [start], _weak_start)
        origin = base / "origin.git"
        git(base, "init", "-q", "--bare", str(origin))
        git(root, "remote", "add", "origin", str(origin))
        git(root, "config", "pwd.forge.repo", "lab/bikes")
        (root / "notes.txt").write_text("uncommitted work\n")  # the user's own, never touched
        git(root, "add", "notes.txt")
        (root / "untracked.txt").write_text("mine\n")
        before = _user_state(root)
        _Forge.answers, _Forge.requests = [(201, {"html_url": "https://github.com/lab/bikes/pull/9"})], []
        result = run_cli("repair", "--rounds", "1", "--open-pr", "--format", "json", cwd=root)
        requests = list(_Forge.requests)
    server.shutdown()
    assert (base / "cache").is_dir(), f"round 1 trained nothing: {result.output}"
    shutil.copytree(base / "cache", base / "cache-after-round-1")
    return {"root": root, "start": start, "result": result, "before": before, "requests": requests, "base": base,
            "origin": origin}


def _env(looped, cache: str) -> dict:
    return {"GIT_CONFIG_GLOBAL": str(looped["base"] / "gitconfig"), "PWD_GIT_CACHE": str(looped["base"] / cache)}


def test_one_round_fixes_the_starved_items_and_commits_on_the_branch(looped):
    root, start, result = looped["root"], looped["start"], looped["result"]
    assert result.code == 0, result.output
    out = json.loads(result.out)
    branch = f"pwd/repair/{start[:10]}"
    assert out["branch"] == branch and out["start"] == start
    [round1] = out["rounds"]
    assert round1["outcome"] == "kept" and round1["base"] == start, round1
    assert {f["node"] for f in round1["patched"]} >= {"spoke", "chain-ring"}
    assert {f["kind"] for f in round1["patched"]} <= {"data-gap", "chain-break"}
    # It fixed items that traced to the starved nodes, significantly, within repair.max_broken.
    items = {i["id"]: i for i in _bench(root, start)}
    fixed_starved = [i for i in round1["fixed"] if _touches(items[i], STARVED_A)]
    assert fixed_starved and len(round1["fixed"]) > len(round1["broken"]) and round1["p_value"] < 0.5  # test.alpha of this domain
    assert round1["broken_share"] <= 0.75  # repair.max_broken of this domain
    # One commit on the branch, on the start commit: the patch, pwd.yaml in continue mode, shards.
    tip = git(root, "rev-parse", f"refs/heads/{branch}")
    assert tip == round1["commit"] == out["tip"] and git(root, "rev-parse", f"{tip}^") == start
    changed = set(git(root, "diff", "--name-only", start, tip).splitlines())
    assert round1["patch_file"] in changed and "pwd.yaml" in changed and any(p.startswith("shards/") for p in changed)
    assert "mode: continue" in git(root, "show", f"{tip}:pwd.yaml")
    message = git(root, "log", "-1", "--format=%B", tip)
    assert message.startswith("pwd repair round 1:") and "spoke" in message and "McNemar p=" in message
    assert "After:  acc" in message
    # Its result is on the commit, compared with the start.
    entry = notes.read(Repo.discover(root), tip)[-1]
    assert entry["baseline"]["commit"] == start and sorted(entry["baseline"]["fixed"]) == sorted(round1["fixed"])
    # One pull request with the table of rounds.
    [request] = looped["requests"]
    assert request["body"]["head"] == branch and request["body"]["base"] == "main"
    assert "| round |" in request["body"]["body"] and "| 1 | `" + tip[:10] in request["body"]["body"]
    assert out["pr"] == "https://github.com/lab/bikes/pull/9"
    assert git(root, "--git-dir", str(looped["origin"]), "rev-parse", f"refs/heads/{branch}") == tip


def test_the_users_checkout_index_and_branch_are_untouched(looped):
    root = looped["root"]
    assert _user_state(root) == looped["before"]
    assert git(root, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(root, "rev-parse", "HEAD") == looped["start"]
    assert git(root, "diff", "--cached", "--name-only") == "notes.txt"
    assert not list((root / ".git" / "pwd").glob("pwd-index-*"))


def test_an_existing_branch_is_refused_and_continue_resumes_from_its_tip(looped, monkeypatch):
    root, start = looped["root"], looped["start"]
    for key, value in _env(looped, "cache").items():
        monkeypatch.setenv(key, value)
    branch = f"pwd/repair/{start[:10]}"
    tip = git(root, "rev-parse", f"refs/heads/{branch}")
    refused = run_cli("repair", cwd=root)
    assert refused.code == 2 and "already exists" in refused.err and "--continue" in refused.err, refused.output
    assert git(root, "rev-parse", f"refs/heads/{branch}") == tip
    resumed = run_cli("repair", "--continue", "--rounds", "1", "--format", "json", cwd=root)
    assert resumed.code in (0, 1), resumed.output
    out = json.loads(resumed.out)
    assert out["resumed_from"] == tip
    [round2] = out["rounds"]  # saddle has no training data: a data gap to patch at the tip
    assert round2["round"] == 2 and round2["base"] == tip and set(STARVED_B) & {f["node"] for f in round2["patched"]}
    now = git(root, "rev-parse", f"refs/heads/{branch}")
    if round2["outcome"] == "kept":
        assert now == round2["commit"] and git(root, "rev-parse", f"{now}^") == tip
    else:  # a round that is not kept leaves the branch where it was
        assert now == tip and round2["commit"] is None


def test_a_round_whose_training_fails_keeps_the_earlier_rounds(looped, monkeypatch, tmp_path):
    root, start = looped["root"], looped["start"]
    clone = tmp_path / "clone"
    branch = f"pwd/repair/{start[:10]}"
    git(tmp_path, "clone", "-q", "--no-local", str(root), str(clone))
    git(clone, "fetch", "-q", "origin", "refs/notes/*:refs/notes/*", f"refs/heads/{branch}:refs/heads/{branch}")
    tip = git(clone, "rev-parse", f"refs/heads/{branch}")
    broken_cache = tmp_path / "cache-is-a-file"
    broken_cache.write_text("not a folder\n")  # the model of round 2 cannot be saved
    monkeypatch.setenv("PWD_GIT_CACHE", str(broken_cache))
    before, refs = _user_state(clone), git(clone, "for-each-ref")
    # not-learned nodes too: after two rounds the tip may have no data gap or chain break left
    result = run_cli("repair", "--continue", "--include", "not-learned", cwd=clone)
    done = int(git(clone, "rev-list", "--count", "--first-parent", f"{start}..{tip}"))  # 1, or 2 after --continue
    assert result.code == 2 and f"round {done + 1} failed" in result.err and "Traceback" not in result.output, \
        result.output
    assert git(clone, "rev-parse", f"refs/heads/{branch}") == tip  # the kept rounds stay, nothing else was added
    assert git(clone, "for-each-ref") == refs and _user_state(clone) == before


_FIRST_STEP = "test: first training step done"
# The real CLI, with training held after its first real step until the signal comes: a round on a
# fast machine trains in well under a second, so a signal timed by a sleep could land after it.
_HELD_AFTER_FIRST_STEP = f"""
import subprocess, sys, time
import pwd_git.train.loop as loop
real = loop.train_model
def held(*args, on_step=None, **kwargs):
    def step(n, total, loss):
        if on_step:
            on_step(n, total, loss)
        if n == 1 and kept_a_round():  # round 1, should it train here, is not held
            print({_FIRST_STEP!r}, file=sys.stderr, flush=True)
            for _ in range(1200):
                time.sleep(0.05)
    return real(*args, on_step=step, **kwargs)
def kept_a_round():
    return bool(subprocess.run(["git", "for-each-ref", "refs/heads/pwd/repair/"], capture_output=True).stdout)
loop.train_model = held
sys.argv = ["git-pwd", *sys.argv[1:]]
from pwd_git.cli import main
main()
"""


def test_ctrl_c_leaves_completed_rounds_and_nothing_half_written(looped, tmp_path):
    """A real SIGINT to a real `git pwd repair` while round 2 trains."""
    root, start = looped["root"], looped["start"]
    clone = tmp_path / "clone"
    branch = f"pwd/repair/{start[:10]}"
    git(tmp_path, "clone", "-q", "--no-local", str(root), str(clone))
    git(clone, "fetch", "-q", "origin", "refs/notes/*:refs/notes/*")
    before = _user_state(clone)
    env = {**os.environ, **GIT_ENV, **_env(looped, "cache-after-round-1"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _HELD_AFTER_FIRST_STEP, "repair", "--rounds", "3"], cwd=clone,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(_FIRST_STEP) and any(x.startswith("round 2:") for x in lines):  # round 2 is training
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.communicate(timeout=120)
    err = "".join(lines) + rest[1]
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    tip = git(clone, "rev-parse", f"refs/heads/{branch}")
    assert git(clone, "rev-parse", f"{tip}^") == start  # round 1, complete, and nothing after it
    assert notes.read(Repo.discover(clone), tip)[-1]["baseline"]["commit"] == start
    assert "1 round(s) of this run kept" in err
    assert _user_state(clone) == before
    assert not list((clone / ".git" / "pwd").glob("pwd-index-*"))
    models = looped["base"] / "cache-after-round-1" / "models"
    assert not [p for p in models.iterdir() if p.name.startswith(".tmp-")]


def test_thresholds_already_met_is_nothing_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "d"
    start = _bikes(root)
    record_results(root, [start], lambda c, i: False)
    result = run_cli("repair", "--format", "json", cwd=root)
    assert result.code == 0, result.output
    out = json.loads(result.out)
    assert out["reason"] == "nothing-to-do" and out["rounds"] == [] and out["tip"] is None
    assert git(root, "branch", "--list", "pwd/repair/*") == ""
    text = run_cli("repair", cwd=root)
    assert text.code == 0 and "nothing to do" in text.out


def test_a_rev_without_a_result_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "d"
    start = _bikes(root)
    before, refs = snapshot(root), git(root, "for-each-ref")
    result = run_cli("repair", "HEAD", cwd=root)
    assert result.code == 2 and f"git pwd test --rev {start[:10]}" in result.err, result.output
    assert "Traceback" not in result.output and snapshot(root) == before and git(root, "for-each-ref") == refs
    bad = run_cli("repair", "--branch", "no..dots", cwd=root)
    assert bad.code == 2 and "invalid branch name" in bad.err


def _bench(root: Path, rev: str) -> list[dict]:
    from pwd_git.kb.loader import Domain
    from pwd_git.train.pipeline import shards_for

    return shards_for(Domain.find(root), rev).records("bench")


def test_include_not_learned_patches_the_nodes_the_default_loop_leaves(tmp_path, monkeypatch):
    """Only a well-covered concept's probes fail: no data gap, so the default loop has nothing to
    patch and says how to include it; `--include not-learned` (or repair.include) runs a round
    that patches that concept."""
    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "d"
    start = _bikes(root)
    starved = set(STARVED_A + STARVED_B)
    probes = [i for i in _bench(root, start) if i["level"] == "L1" and not starved & set(i["traces"]["concepts"])]
    target = probes[0]["traces"]["concepts"][0]
    record_results(root, [start], lambda c, i: i["level"] == "L1" and i["traces"]["concepts"] == [target])
    (root / "pwd.yaml").write_text((root / "pwd.yaml").read_text().replace("test: {alpha: 0.5}",
                                                                           "test: {alpha: 0.5, thresholds: {L1: 1.0}}"))
    git(root, "commit", "-qam", "L1 must pass")
    record_results(root, [git(root, "rev-parse", "HEAD")],
                   lambda c, i: i["level"] == "L1" and i["traces"]["concepts"] == [target])

    default = run_cli("repair", "--format", "json", cwd=root)
    out = json.loads(default.out)
    assert default.code == 1 and out["reason"] == "nothing-to-patch" and out["rounds"] == [], default.output
    assert "--include not-learned" in out["stop"]

    included = run_cli("repair", "--rounds", "1", "--include", "not-learned", "--format", "json", cwd=root)
    out = json.loads(included.out)
    [round1] = out["rounds"]
    assert [(f["node"], f["kind"]) for f in round1["patched"]] == [(target, "not-learned")], included.output
    assert round1["examples"] > 0 and round1["outcome"] in ("kept", "no-improvement", "regressed")

    (root / "pwd.yaml").write_text((root / "pwd.yaml").read_text().replace(
        "repair: {max_broken: 0.75}", "repair: {max_broken: 0.75, include: [not-learned]}"))
    git(root, "commit", "-qam", "repair not-learned nodes too")
    record_results(root, [git(root, "rev-parse", "HEAD")],
                   lambda c, i: i["level"] == "L1" and i["traces"]["concepts"] == [target])
    configured = json.loads(run_cli("repair", "--rounds", "1", "--format", "json", cwd=root).out)
    assert [f["node"] for f in configured["rounds"][0]["patched"]] == [target]


def test_a_ctrl_c_that_another_thread_receives_waits_for_the_round_to_be_recorded():
    """The note-then-ref block of a kept round is not cut short by SIGINT, whichever thread the
    kernel hands it to (here a thread started before the block, as torch's pool is), and the
    interrupt is raised after it."""
    from pwd_git.repair.loop import _uninterrupted

    go = threading.Event()
    sender = threading.Thread(target=lambda: go.wait() and os.kill(os.getpid(), signal.SIGINT))
    sender.start()
    steps = []
    with pytest.raises(KeyboardInterrupt), _uninterrupted():
        go.set()
        sender.join()
        for n in range(200_000):  # bytecodes enough for a pending interrupt to be raised
            steps.append(n)
    assert len(steps) == 200_000
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

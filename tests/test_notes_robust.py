"""Result notes from any clone never crash a reader, and a killed writer never blocks the next.

Notes merge in from every clone (cat_sort_uniq), so one mistyped line must cost a warning,
not `git pwd log`, `show` or `diagnose` (DESIGN.md, "Errors and bad input").
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from pwd_git import notes
from pwd_git.git import Repo
from pwd_git.kb.loader import Domain
from pwd_git.model.settings import run_key, train_settings
from pwd_git.train.pipeline import shards_for
from tests.conftest import GIT_ENV, git, run_cli, small_domain


@pytest.fixture(scope="module")
def bikes(tmp_path_factory):
    """A committed small domain (fresh shards) and the run key its pwd.yaml trains with; built
    once for the module (the tests only change its notes)."""
    base = tmp_path_factory.mktemp("notes")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {**GIT_ENV, "GIT_CONFIG_GLOBAL": str(base / "gitconfig")}.items():
            mp.setenv(name, value)
        root = small_domain(base / "d")
        return root, run_key(train_settings(shards_for(Domain.find(root), "HEAD").config, root))


@pytest.fixture
def domain_key(bikes):
    root, key = bikes
    git(root, "notes", "--ref", notes.NOTES_REF, "remove", "--ignore-missing", "HEAD")
    return root, key


def put_note(root, lines: list[str]) -> str:
    """Replace the results note on HEAD with exactly these lines; the commit."""
    commit = git(root, "rev-parse", "HEAD")
    subprocess.run(["git", "notes", "--ref", notes.NOTES_REF, "add", "-f", "-F", "-", commit], cwd=root, check=True,
                   input="\n".join(lines) + "\n", text=True, capture_output=True)
    return commit


# (case id, the bad line; KEY stands for the domain's run key, so the line claims to be its result)
BAD_LINES = [
    ("acc-not-a-number", '{"run_key": "KEY", "metrics": {"acc": "high"}, "failed": []}'),
    ("metrics-null", '{"run_key": "KEY", "metrics": null, "failed": []}'),
    ("failed-not-a-list", '{"run_key": "KEY", "metrics": {"acc": 0.5}, "failed": 5}'),
    ("level-without-n", '{"run_key": "KEY", "metrics": {"acc": 0.5, "levels": {"L1": {"acc": 0.5}}}, "failed": []}'),
    ("control-not-an-object", '{"run_key": "KEY", "metrics": {"acc": 0.5, "control": 3}, "failed": []}'),
    ("schema-not-a-number", '{"schema": "two", "run_key": "KEY", "metrics": {"acc": 0.5}, "failed": []}'),
    ("not-an-object", '["KEY", 1, 2]'),
    ("bad-json", '{"run_key": "KEY", "metrics": {'),
]
VERBS = [("log",), ("show",), ("diagnose", "--no-run"), ("report", "--format", "json")]


def warnings_of(res) -> list[str]:
    return [line for line in res.err.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: v[0])
@pytest.mark.parametrize(("case", "line"), BAD_LINES, ids=[c for c, _ in BAD_LINES])
def test_a_bad_note_line_is_skipped_with_one_warning(domain_key, verb, case, line):
    root, key = domain_key
    commit = put_note(root, [line.replace("KEY", key)])
    res = run_cli(*verb, cwd=root)
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    found = warnings_of(res)
    assert len(found) == 1, res.err
    assert commit[:10] in found[0] and "skipping line 1" in found[0], found[0]
    if verb[0] == "log":  # as for a commit without results: a row with no numbers
        assert res.code == 0
        row = next(r for r in res.out.splitlines() if r.startswith(commit[:10]))
        assert row.split()[2] == "-", row
    elif verb[0] == "show":
        assert res.code == 0 and "no results recorded" in res.out
    elif verb[0] == "report":  # the empty page: no result to draw
        assert res.code == 0 and json.loads(res.out)["results"] == 0
    else:
        assert res.code == 2 and "no results recorded" in res.err


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: v[0])
@pytest.mark.parametrize(("case", "line"), BAD_LINES, ids=[c for c, _ in BAD_LINES])
def test_a_good_line_next_to_a_bad_one_is_still_used(domain_key, verb, case, line):
    root, key = domain_key
    good = json.dumps({"run_key": key, "metrics": {"acc": 0.75, "levels": {"L3": {"acc": 0.5, "n": 2}}},
                       "failed": [], "verdict": "pass"})
    put_note(root, [good, line.replace("KEY", key)])  # the bad line is the latest
    res = run_cli(*verb, cwd=root)
    assert "Traceback" not in res.output and len(warnings_of(res)) == 1, res.output
    assert res.code == 0, res.output
    if verb[0] == "log":
        assert "0.75" in res.out and "pass" in res.out
    elif verb[0] == "show":
        assert "acc 0.750" in res.out and "L3: 0.500 (n=2)" in res.out
    elif verb[0] == "report":
        summary = json.loads(res.out)
        assert summary["results"] == 1 and summary["points"] == 1
    else:
        assert "0 failed item(s)" in res.out


def test_json_output_holds_only_the_valid_lines(domain_key):
    root, key = domain_key
    good = {"run_key": key, "metrics": {"acc": 0.75}, "failed": []}
    put_note(root, [json.dumps(good), '{"run_key": "x", "metrics": {"acc": "high"}}'])
    res = run_cli("show", "--format", "json", cwd=root)
    assert res.code == 0 and json.loads(res.out)["results"] == [good]


def test_an_incomplete_line_is_never_reused_as_a_test_result(domain_key):
    """A line that fits the schema but lacks what a full run writes (here: the levels and the
    failed items) matches the KB state and run key, yet must not stand in for running the tests."""
    from pwd_git.results import reusable_result
    from pwd_git.revision import at

    root, key = domain_key
    domain = Domain.find(root)
    shards = shards_for(domain, "HEAD")
    partial = {"run_key": key, "kb_tree": shards.manifest["kb_tree"], "shards_hash": shards.manifest["shards_hash"],
               "build_key": shards.manifest["build_key"], "metrics": {"acc": 1.0}}
    put_note(root, [json.dumps(partial)])
    assert notes.read(domain.repo, "HEAD") == [partial]
    assert reusable_result(at(domain, "HEAD")) is None


# --- the notes lock ------------------------------------------------------------------------------

HOLD = """
import sys, time
from pathlib import Path
from pwd_git.lock import PidLock
PidLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold_notes_lock(root, seconds: float) -> subprocess.Popen:
    """Another process holding this repo's notes lock (the same lock pwd-git itself takes)."""
    lock = Repo.discover(root).pwd_dir() / "notes.lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_lock_left_by_a_killed_writer_does_not_block_appending(domain_key):
    root, _ = domain_key
    holder = hold_notes_lock(root, 60)
    holder.kill()  # SIGKILL: no cleanup runs, the lock file stays behind
    holder.wait()
    repo = Repo.discover(root)
    assert (repo.pwd_dir() / "notes.lock").exists()
    start = time.monotonic()
    notes.append(repo, "HEAD", {"run_key": "after-kill", "metrics": {"acc": 1.0}})
    assert time.monotonic() - start < 5
    assert [e["run_key"] for e in notes.read(repo, "HEAD")] == ["after-kill"]


def test_a_live_writer_is_waited_for(domain_key):
    root, _ = domain_key
    holder = hold_notes_lock(root, 0.5)
    repo = Repo.discover(root)
    notes.append(repo, "HEAD", {"run_key": "waited", "metrics": {"acc": 1.0}})
    assert holder.wait(timeout=10) == 0  # it held the lock until it exited; the append waited
    assert [e["run_key"] for e in notes.read(repo, "HEAD")] == ["waited"]


# --- sharing: every shared ref travels --------------------------------------------------------------

def test_setup_pull_and_push_carry_the_bisect_conclusions(tmp_path):
    """`notes setup|push|pull` carry refs/notes/pwd/bisect beside the results, both ways, merged
    line by line; the fetch refspec setup writes (a glob, replacing the results-only one) never
    makes a plain `git fetch` fail on a remote that has none of them yet."""
    from pwd_git.bisect import record

    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(tmp_path, "init", "-q", "-b", "main", str(tmp_path / "seed"))
    git(tmp_path / "seed", "commit", "-q", "--allow-empty", "-m", "seed")
    git(tmp_path / "seed", "push", "-q", str(origin), "main")
    repos = []
    for name in ("a", "b"):
        git(tmp_path, "clone", "-q", str(origin), str(tmp_path / name))
        git(tmp_path / name, "config", "--add", "remote.origin.fetch", notes._LEGACY_FETCH_SPEC)  # an older setup
        repos.append(Repo.discover(tmp_path / name))
    a, b = repos
    done = notes.setup(a)
    assert "notes.pwd/bisect.mergeStrategy=cat_sort_uniq" in done and f"remote.origin.fetch-={notes._LEGACY_FETCH_SPEC}" in done
    assert subprocess.run(["git", "fetch", "-q"], cwd=a.top, capture_output=True).returncode == 0  # origin has no notes
    assert notes.setup(a) == ["notes.pwd/results.mergeStrategy=cat_sort_uniq", "notes.pwd/bisect.mergeStrategy=cat_sort_uniq"]
    commit = git(a.top, "rev-parse", "HEAD")
    ours = {"schema": 1, "time": "2026-01-01T00:00:00+00:00", "good": commit, "bad": commit, "metric": "acc",
            "outcome": "only-skipped", "first_bad": None, "candidates": []}
    notes.append(a, commit, ours, ref=notes.BISECT_REF)
    notes.append(a, commit, {"run_key": "a", "metrics": {"acc": 1.0}})
    notes.push(a)
    for ref in notes.SHARED_REFS:
        assert git(tmp_path, "--git-dir", str(origin), "notes", "--ref", ref, "show", commit)
    assert notes.pull(b) == [notes.NOTES_REF, notes.BISECT_REF]
    assert record.read(b, commit) == [ours]
    theirs = {**ours, "time": "2026-01-02T00:00:00+00:00", "metric": "L3"}
    notes.append(b, commit, theirs, ref=notes.BISECT_REF)
    notes.push(b)
    assert notes.pull(a) == [notes.NOTES_REF, notes.BISECT_REF]
    assert sorted(line["metric"] for line in record.read(a, commit)) == ["L3", "acc"]
    assert [e["run_key"] for e in notes.read(a, commit)] == ["a"]

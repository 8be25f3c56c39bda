"""`git pwd bisect`: real `git bisect run` over a scripted history with one regression.

The expensive part (real training) happens once per module: a 30-commit history whose
commit 20 cuts the training budget, bisected with no notes and an empty model cache, then
again with the notes it left. Everything else uses results written straight into notes
(tests.histories.record_results), which exercises the same code without training.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pwd_git import __version__
from pwd_git.git import Repo
from pwd_git.lock import PidLock
from tests.conftest import git, run_cli
from tests.histories import BAD_EPOCHS, GOOD_EPOCHS, config, make_history, record_results

N_COMMITS, REGRESSION_AT, MERGE_AT = 30, 20, 10
BISECT_REF = "refs/notes/pwd/bisect"


def repo_state(root: Path) -> dict:
    """What a bisect must leave exactly as it was (notes and .git/pwd caches aside)."""
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
             if p.is_file() and ".git" not in p.relative_to(root).parts}
    refs = [r for r in git(root, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
            if not r.startswith("refs/notes/")]
    return {"files": files, "status": git(root, "status", "--porcelain", "--untracked-files=all"),
            "head": git(root, "rev-parse", "HEAD"), "branch": git(root, "symbolic-ref", "-q", "HEAD"), "refs": refs,
            "worktrees": git(root, "worktree", "list", "--porcelain"),
            "admin": sorted(p.name for p in (root / ".git" / "worktrees").glob("*")),
            "bisecting": (root / ".git" / "BISECT_START").exists() or (root / ".git" / "BISECT_LOG").exists()}


def assert_clean(root: Path, before: dict) -> None:
    assert repo_state(root) == before
    assert not list((root / ".git" / "pwd" / "bisect").glob("run-*"))  # no run's worktree or state


def conclusions(root: Path, commit: str) -> list[dict]:
    """The raw lines of the bisect note on `commit` (none when there is no note)."""
    proc = subprocess.run(["git", "notes", "--ref", BISECT_REF, "show", commit], cwd=root, capture_output=True, text=True)
    return [json.loads(line) for line in proc.stdout.splitlines()] if proc.returncode == 0 else []


def has_ref(root: Path, ref: str) -> bool:
    return subprocess.run(["git", "rev-parse", "--verify", "--quiet", ref], cwd=root, capture_output=True).returncode == 0


def assert_one_error(res, code: int, *fragments: str) -> None:
    assert res.code == code, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.err
    for fragment in fragments:
        assert fragment in res.err, res.err


def _env(base: Path) -> dict[str, str]:
    return {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com", "GIT_CONFIG_GLOBAL": str(base / "gitconfig"),
            "GIT_CONFIG_NOSYSTEM": "1", "PWD_GIT_CACHE": str(base / "cache")}


# --- real training, once per module ------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The 30-commit history bisected with no notes and an empty model cache."""
    base = tmp_path_factory.mktemp("bisect")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _env(base).items():
            mp.setenv(key, value)
        history = make_history(base / "bikes", N_COMMITS, REGRESSION_AT, merge_at=MERGE_AT)
        before = repo_state(history.root)
        start = time.monotonic()
        res = run_cli("bisect", history.good, "main", "--format", "json", cwd=history.root)
        seconds = time.monotonic() - start
    return history, res, before, seconds, base


@pytest.mark.slow
def test_bisect_names_the_commit_that_cut_the_training_budget(trained):
    history, res, _before, seconds, _ = trained
    assert res.code == 0, res.output
    report = json.loads(res.out)
    first = report["first_bad"]
    assert first["commit"] == history.regression
    assert first["subject"] == f"Cut the training budget to {BAD_EPOCHS} epoch"
    assert first["author"] == "Test <test@example.com>" and first["date"]
    assert report["config_changes"] == [f"train.epochs: {GOOD_EPOCHS} -> {BAD_EPOCHS}"]
    assert report["kb_diff"]["nodes"] == []  # the KB itself did not change
    flipped = report["flipped"]
    assert len(flipped["regressed"]) >= 8 and len(flipped["regressed"]) > 2 * len(flipped["fixed"])
    assert {"spoke", "wheel"} & set(flipped["concepts"])
    assert report["verdict"]["verdict"] == "bad" and report["verdict"]["p_value"] < 0.05
    assert f"# first bad commit: [{history.regression}]" in report["bisect_log"]
    assert report["stored"] == {"ref": BISECT_REF, "commit": history.regression}
    [line] = conclusions(history.root, history.regression)
    assert line["first_bad"] == history.regression and line["trained"] == report["trained"] > 0
    print(f"\nbisect with no notes: {report['trained']} trainings, {seconds:.0f}s, counts {report['counts']}")


@pytest.mark.slow
def test_bisect_trains_at_most_log2_of_the_kb_states_plus_two(trained):
    _history, res, *_ = trained
    report = json.loads(res.out)
    assert report["commits_in_range"] == N_COMMITS - 1
    distinct = report["kb_states"]
    assert distinct < N_COMMITS  # README-only commits and the merge share KB states
    assert report["trained"] <= math.ceil(math.log2(distinct)) + 2, report["steps"]  # GOOD, BAD, then the steps
    assert report["unchanged"] > 0  # commits with their parent's KB state were never tested


@pytest.mark.slow
def test_bisect_follows_first_parents_and_leaves_the_repo_as_it_was(trained):
    history, res, before, *_ = trained
    report = json.loads(res.out)
    visited = {s["commit"] for s in report["steps"]}
    assert visited <= set(history.commits)
    for side in history.side:
        assert side not in report["bisect_log"]
    assert_clean(history.root, before)
    assert Repo.discover(history.root).resolve("main") == history.bad


@pytest.mark.slow
def test_bisect_with_notes_present_trains_nothing(trained, monkeypatch, tmp_path):
    history, _first_res, before, *_ = trained
    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "empty-cache"))
    res = run_cli("bisect", history.good, "main", "--format", "json", cwd=history.root)
    assert res.code == 0, res.output
    report = json.loads(res.out)
    assert report["first_bad"]["commit"] == history.regression
    assert report["trained"] == 0 and report["counts"].get("model-cache", 0) == 0
    assert not (tmp_path / "empty-cache" / "models").exists() or not any((tmp_path / "empty-cache" / "models").iterdir())
    text = run_cli("bisect", history.good, "main", "--no-train", cwd=history.root)
    assert text.code == 0 and f"first bad commit: {history.regression}" in text.out
    assert re.search(r"^cost: .*; 0 trained, \d+ answered from notes", text.out, re.M), text.out  # each count once
    assert "git bisect log:" in text.out
    assert f"train.epochs: {GOOD_EPOCHS} -> {BAD_EPOCHS}" in text.out
    assert_clean(history.root, before)


@pytest.mark.slow
def test_ctrl_c_during_a_training_step_restores_everything(trained, tmp_path):
    """SIGINT while `git bisect run`'s step trains: exit 130, no bisect, no worktree, no lock."""
    history, *_, base = trained
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(history.root), str(clone))  # no notes: everything must train
    git(clone, "checkout", "-q", "-b", "work")
    (clone / "README.md").write_text("uncommitted work\n")
    before = repo_state(clone)
    env = {**os.environ, **_env(base), "PWD_GIT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "pwd_git", "bisect", history.good, "origin/main"], cwd=clone,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    session = clone / ".git" / "pwd" / "bisect"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        state = next(session.glob("run-*/state.json"), None)
        if state and json.loads(state.read_text())["good_items"] and (clone / ".git/worktrees").exists():
            break
        time.sleep(0.2)
    time.sleep(2)  # the first step is training now
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err and "Traceback" not in err
    assert_clean(clone, before)
    assert not has_ref(clone, BISECT_REF)  # no conclusion, so none stored
    models = tmp_path / "cache" / "models"
    assert not [p for p in models.iterdir() if p.name.startswith(".tmp-")], "a partial model was left behind"
    assert PidLock(clone / ".git/pwd/bisect/lock").acquire()  # the lock is free again


def processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process (`ps`, Linux and macOS)."""
    out = subprocess.run(["ps", "-A", "-ww", "-o", "pid=,ppid=,stat=,command="], capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        pid, ppid, stat, *command = line.split(None, 3)
        table[int(pid)] = (int(ppid), stat, command[0] if command else "")
    return table


def descendants(pid: int) -> set[int]:
    table, found, todo = processes(), set(), [pid]
    while todo:
        parent = todo.pop()
        children = {p for p, (ppid, *_rest) in table.items() if ppid == parent} - found
        found |= children
        todo += children
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (an orphan that died may stay a zombie until reaped)."""
    table = processes()
    return {p for p in pids if p in table and not table[p][1].startswith("Z")}


@pytest.mark.slow
def test_kill_9_during_a_training_step_cannot_poison_the_next_bisect(trained, tmp_path, monkeypatch):
    """kill -9 of `git pwd bisect` while its step trains: `git bisect run` and the step die
    with it (else the step finishes, and git marks its verdict on whatever commit the next
    run's bisect is at), and the next run, started at once, names the right first bad commit."""
    history, *_, base = trained
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(history.root), str(clone))  # no notes: everything must train
    before = repo_state(clone)
    env = {**os.environ, **_env(base), "PWD_GIT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "pwd_git", "bisect", history.good, "origin/main"], cwd=clone,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    models = tmp_path / "cache" / "models"

    def cached(prefix: bool) -> list[Path]:
        return [m for m in models.iterdir() if m.name.startswith(".tmp-") == prefix] if models.is_dir() else []

    children: set[int] = set()
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            children = descendants(proc.pid)
            stepping = any("bisect-step" in processes().get(p, (0, "", ""))[2] for p in children)
            if stepping and cached(False) and cached(True):
                break  # GOOD's and BAD's models are in the cache and the step is training the next one
            time.sleep(0.2)
        time.sleep(1)
        assert proc.poll() is None, "the bisect ended before its first step trained"
        children = descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        monkeypatch.setenv("PWD_GIT_CACHE", str(base / "cache"))  # the module's models: the rerun trains nothing
        res = run_cli("bisect", history.good, "origin/main", "--format", "json", cwd=clone)
        assert res.code == 0, res.output
        report = json.loads(res.out)
        assert report["first_bad"]["commit"] == history.regression
        for step in report["steps"]:
            index = history.commits.index(step["commit"])
            assert step["verdict"] == ("bad" if index >= REGRESSION_AT else "good"), step
        assert_clean(clone, before)

        deadline = time.monotonic() + 60
        while alive(children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(children), "git bisect run or its step outlived the killed session"
    finally:
        for pid in alive(children):
            os.kill(pid, signal.SIGKILL)
    assert len(cached(False)) == 2, "the step of the killed session went on training"  # GOOD's and BAD's only
    assert not cached(True), "the step left a partial model behind"


# --- results from notes: no training ---------------------------------------------------------------

@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "model-cache"
    monkeypatch.setenv("PWD_GIT_CACHE", str(path))
    return path


def hand_items_fail_from(history, first_bad_index: int):
    """A `fails` rule for record_results: hand-written items fail from that commit on."""
    bad = set(history.commits[first_bad_index:])
    return lambda commit, item: commit in bad and item["template"] == "hand"


def no_models(cache: Path) -> bool:
    return not (cache / "models").exists() or not any((cache / "models").iterdir())


def test_regression_merged_from_a_branch_names_the_merge(tmp_path, cache):
    history = make_history(tmp_path / "d", 12, None, merge_at=6, side_regression=True)
    record_results(history.root, history.commits, hand_items_fail_from(history, 6))
    before = repo_state(history.root)
    res = run_cli("bisect", history.good, "main", "--format", "json", cwd=history.root)
    assert res.code == 0, res.output
    report = json.loads(res.out)
    assert report["first_bad"]["commit"] == history.commits[6] == history.regression
    assert report["first_bad"]["subject"] == "Merge branch 'side'"
    assert report["config_changes"] == [f"train.epochs: {GOOD_EPOCHS} -> {BAD_EPOCHS}"]
    assert not {s["commit"] for s in report["steps"]} & set(history.side)
    assert report["trained"] == 0 and no_models(cache)
    assert_clean(history.root, before)


def test_the_conclusion_is_a_note_on_the_first_bad_commit_that_the_report_lists(tmp_path, cache):
    """A bisect's conclusion lands in the user's repository (not its temporary worktree) as one
    JSON line on the first bad commit; nothing else changes; `git pwd report` lists it, linked."""
    from pwd_git.kb.loader import Domain
    from pwd_git.report.collect import Links, stored_bisects

    history = make_history(tmp_path / "d", 8, 5)
    record_results(history.root, history.commits, hand_items_fail_from(history, 5))
    git(history.root, "remote", "add", "origin", "git@github.com:acme/bikes.git")
    before, results = repo_state(history.root), git(history.root, "rev-parse", "refs/notes/pwd/results")
    res = run_cli("bisect", history.good, "main", "--format", "json", cwd=history.root)
    assert res.code == 0, res.output
    report = json.loads(res.out)
    assert report["stored"] == {"ref": BISECT_REF, "commit": history.regression}
    assert git(history.root, "notes", "--ref", BISECT_REF, "list").split()[1::2] == [history.regression]
    [line] = conclusions(history.root, history.regression)
    assert line["schema"] == 1 and line["tool"] == __version__ and line["time"].endswith("+00:00")
    assert (line["good"], line["bad"], line["first_bad"]) == (history.good, history.bad, history.regression)
    assert line["metric"] == "acc" and line["threshold"] is None and line["outcome"] == "first-bad"
    assert line["subject"] == report["first_bad"]["subject"] and line["candidates"] == []
    assert line["steps"] == [{k: s[k] for k in ("commit", "verdict", "value", "source")} for s in report["steps"]]
    assert {s["verdict"] for s in line["steps"]} == {"good", "bad"} and all(s["value"] is not None for s in line["steps"])
    assert line["trained"] == 0 and line["counts"] == report["counts"] and line["verdict"]["p_value"] < 0.05
    assert_clean(history.root, before)  # HEAD, branch, files, worktrees: no bisect left
    assert git(history.root, "rev-parse", "refs/notes/pwd/results") == results  # every step answered from notes

    text = run_cli("bisect", history.good, "main", "--metric", "L3", "--no-train", cwd=history.root)
    assert text.code == 0 and f"conclusion stored: {BISECT_REF} on {history.regression[:10]}" in text.out
    assert [c["metric"] for c in conclusions(history.root, history.regression)] == ["acc", "L3"]
    domain = Domain.find(history.root)
    shown = stored_bisects(domain, Links(domain, tmp_path / "site"))
    assert {(b.first_bad, b.metric, b.outcome) for b in shown} == {(history.regression, m, "first-bad") for m in ("acc", "L3")}
    assert shown[0].link == f"https://github.com/acme/bikes/commit/{history.regression}"
    site = tmp_path / "site"
    summary = json.loads(run_cli("report", "-o", str(site), "--format", "json", cwd=history.root).out)
    assert summary["bisects"] == 2
    page = (site / "index.html").read_text()
    assert f'href="https://github.com/acme/bikes/commit/{history.regression}"><code>{history.regression[:10]}' in page
    assert_clean(history.root, before)


def test_ctrl_c_while_the_conclusion_waits_to_be_stored_restores_everything(tmp_path, cache):
    """The conclusion is written after the search, inside the session: SIGINT while it waits
    for the notes lock (another writer holds it) exits 130, stores nothing, leaves no bisect."""
    history = make_history(tmp_path / "d", 8, 5)
    record_results(history.root, history.commits, hand_items_fail_from(history, 5))
    before = repo_state(history.root)
    with PidLock(Repo.discover(history.root).pwd_dir() / "notes.lock"):
        proc = subprocess.Popen([sys.executable, "-m", "pwd_git", "bisect", history.good, "main"], cwd=history.root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        session = history.root / ".git" / "pwd" / "bisect"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            worktree = next((w for w in session.glob("run-*/run-*") if (w / ".git").is_file()), None)
            if worktree and "# first bad commit" in subprocess.run(["git", "bisect", "log"], cwd=worktree,
                                                                   capture_output=True, text=True).stdout:
                break
            time.sleep(0.1)
        time.sleep(2)  # the first bad commit is described, then its note waits for the lock
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "first bad commit" not in out
    assert_clean(history.root, before)
    assert not has_ref(history.root, BISECT_REF)


def test_first_bad_after_skipped_unchanged_commits_is_still_pinned(tmp_path, cache):
    """The budget cut follows README-only commits git was told to skip: they share a judged
    KB state, so the session marks them and git names the cut, not "one of these"."""
    history = make_history(tmp_path / "d", 10, 7, pattern=["accessory", "readme", "readme", "readme"])
    record_results(history.root, history.commits, hand_items_fail_from(history, 7))
    res = run_cli("bisect", history.good, "main", "--format", "json", "--metric", "L3", cwd=history.root)
    assert res.code == 0, res.output
    report = json.loads(res.out)
    assert report["first_bad"]["commit"] == history.regression and report["candidates"] == []
    assert report["unchanged"] >= 4


def test_metric_item_and_concept(tmp_path, cache):
    history = make_history(tmp_path / "d", 8, 5)
    record_results(history.root, history.commits, hand_items_fail_from(history, 5))
    from pwd_git.kb.loader import Domain
    from pwd_git.train.pipeline import shards_for

    items = shards_for(Domain.find(history.root), history.good).records("bench")
    hand = next(i for i in items if i["template"] == "hand" and "spoke" in i["traces"]["concepts"])
    res = run_cli("bisect", history.good, "main", "--metric", f"item:{hand['id'][:10]}", "--format", "json",
                  cwd=history.root)
    assert res.code == 0, res.output
    assert json.loads(res.out)["first_bad"]["commit"] == history.regression
    res = run_cli("bisect", history.good, "main", "--metric", "concept:saddle", "--threshold", "0.8", cwd=history.root)
    assert res.code == 0 and history.regression in res.out, res.output


def test_invalid_kb_commit_is_skipped_with_the_reason(tmp_path, cache):
    """Commit 4 breaks a chain and the budget cut (5) also fixes it: git cannot tell which of
    the two went bad, and says so, with the validation error as the reason for the skip."""
    history = make_history(tmp_path / "d", 7, 5, kinds={4: "invalid"})
    record_results(history.root, [c for i, c in enumerate(history.commits) if i != 4],
                   hand_items_fail_from(history, 5))
    before = repo_state(history.root)
    res = run_cli("bisect", history.good, "main", "--format", "json", cwd=history.root)
    assert res.code == 1, res.output
    report = json.loads(res.out)
    assert report["first_bad"] is None
    assert set(report["candidates"]) == {history.commits[4], history.commits[5]}
    skipped = [s for s in report["steps"] if s["commit"] == history.commits[4]]
    assert skipped and skipped[0]["verdict"] == "skip"
    assert "does not validate" in skipped[0]["reason"] and "chains/spoke-to-bicycle.yaml:" in skipped[0]["reason"]
    assert report["stored"] == {"ref": BISECT_REF, "commit": history.bad}  # no first bad commit: on BAD
    [line] = conclusions(history.root, history.bad)
    assert line["outcome"] == "only-skipped" and line["first_bad"] is None and line["subject"] is None
    assert set(line["candidates"]) == set(report["candidates"])
    text = run_cli("bisect", history.good, "main", cwd=history.root)
    assert text.code == 1 and "could not pin down" in text.out and "does not validate" in text.out
    assert "Traceback" not in text.output
    assert_clean(history.root, before)


def test_no_train_skips_commits_without_notes(tmp_path, cache):
    history = make_history(tmp_path / "d", 8, 5)
    record_results(history.root, [c for i, c in enumerate(history.commits) if i not in (4,)],
                   hand_items_fail_from(history, 5))
    res = run_cli("bisect", history.good, "main", "--no-train", "--format", "json", cwd=history.root)
    report = json.loads(res.out)
    if res.code == 0:  # git did not need commit 4
        assert report["first_bad"]["commit"] == history.regression
    else:
        assert history.commits[4] in report["candidates"]
    for step in report["steps"]:
        if step["commit"] == history.commits[4]:
            assert step["verdict"] == "skip" and "--no-train" in step["reason"]
    assert report["trained"] == 0 and no_models(cache)


def test_leftovers_of_a_killed_bisect_are_cleaned_up(tmp_path, cache):
    """kill -9 leaves the worktree and state behind; the next run removes them first."""
    from pwd_git.git import bisect_start, worktree_add

    history = make_history(tmp_path / "d", 8, 5)
    record_results(history.root, history.commits, hand_items_fail_from(history, 5))
    before = repo_state(history.root)
    run = history.root / ".git" / "pwd" / "bisect" / "run-killed"
    run.mkdir(parents=True)
    worktree_add(Repo.discover(history.root), run / run.name, history.good)
    bisect_start(run / run.name, history.bad, history.good)
    (run / "state.json").write_text("{}")
    (run.parent / "run-killed-early").mkdir()  # killed before its worktree was added
    res = run_cli("bisect", history.good, "main", cwd=history.root)
    assert res.code == 0, res.output
    assert "cleaning up a `git pwd bisect` that was killed" in res.err
    assert_clean(history.root, before)


def switch_to_continue_mode(root: Path, n_readme: int) -> list[str]:
    """Commit `train.mode: continue`, then README-only commits; returns those commits. They
    all have the same KB state, yet each model is a fine-tune of its parent commit's."""
    (root / "pwd.yaml").write_text(config().replace("train: {", "train: {mode: continue, "))
    git(root, "commit", "-qam", "Train in continue mode")
    commits = [git(root, "rev-parse", "HEAD")]
    for i in range(n_readme):
        (root / "README.md").write_text(f"# bikes\nContinued {i}.\n")
        git(root, "commit", "-qam", f"README: continued {i}")
        commits.append(git(root, "rev-parse", "HEAD"))
    return commits


def test_continue_mode_commits_never_share_a_kb_state(tmp_path, cache):
    """Equal KB trees give equal models in scratch mode only: in continue mode the model also
    depends on the parent chain, so neither the step's identity nor kb_states may equate two
    commits there (else bisect reuses one commit's verdict for another, or skips it)."""
    from pwd_git.bisect import kb_states
    from pwd_git.bisect.step import _identity
    from pwd_git.kb.loader import Domain

    history = make_history(tmp_path / "d", 2, None, pattern=["readme"])
    continued = switch_to_continue_mode(history.root, 2)
    domain = Domain.find(history.root)
    scratch_pair, continue_pair = history.commits[:2], continued[1:]
    assert _identity(domain, scratch_pair[0])[0] == _identity(domain, scratch_pair[1])[0]
    first, second = kb_states(domain, scratch_pair)
    assert first == second
    assert _identity(domain, continue_pair[0])[1] == _identity(domain, continue_pair[1])[1]  # same run key
    assert _identity(domain, continue_pair[0])[0] != _identity(domain, continue_pair[1])[0]
    first, second = kb_states(domain, continue_pair)
    assert first != second
    assert no_models(cache)


def test_continue_mode_readme_commit_can_be_the_first_bad(tmp_path, cache):
    """In continue mode a README-only commit fine-tunes its parent's model again and can
    regress: bisect tests it rather than refusing a range "with no KB change" or skipping it."""
    history = make_history(tmp_path / "d", 1, None)
    commits = switch_to_continue_mode(history.root, 5)
    bad = set(commits[3:])
    record_results(history.root, commits, lambda commit, item: commit in bad and item["template"] == "hand")
    before = repo_state(history.root)
    res = run_cli("bisect", commits[0], "main", "--format", "json", cwd=history.root)
    assert res.code == 0, res.output
    report = json.loads(res.out)
    assert report["first_bad"]["commit"] == commits[3]
    assert report["unchanged"] == 0 and report["kb_states"] == len(commits)
    assert report["trained"] == 0 and no_models(cache)
    assert_clean(history.root, before)


# --- bad input: one clear error, non-zero exit, no traceback, repo unchanged ------------------------

@pytest.fixture
def noted(tmp_path, cache):
    history = make_history(tmp_path / "d", 8, 5)
    hand = hand_items_fail_from(history, 5)
    record_results(history.root, history.commits, lambda c, item: item["level"] == "L1" or hand(c, item))
    return history


def test_good_not_an_ancestor_of_bad(noted):
    root = noted.root
    git(root, "checkout", "-q", "-b", "other", noted.commits[2])
    (root / "README.md").write_text("elsewhere\n")
    git(root, "commit", "-qam", "elsewhere")
    before = repo_state(root)
    res = run_cli("bisect", "other", "main", cwd=root)
    assert_one_error(res, 2, "is not an ancestor of BAD")
    swapped = run_cli("bisect", "main", noted.good, cwd=root)
    assert_one_error(swapped, 2, "not an ancestor", "swap them")
    assert_clean(root, before)


def test_good_already_failing_the_metric(noted):
    before = repo_state(noted.root)
    res = run_cli("bisect", noted.good, "main", "--metric", "L1", "--threshold", "0.99", cwd=noted.root)
    assert_one_error(res, 2, "already fails the metric", "L1 =", "--threshold")
    missing = run_cli("bisect", noted.good, "main", "--metric", "concept:no-such-concept", cwd=noted.root)
    assert_one_error(missing, 2, "covers no benchmark item at GOOD")
    unknown = run_cli("bisect", noted.good, "main", "--metric", "accuracy", cwd=noted.root)
    assert_one_error(unknown, 2, "unknown metric 'accuracy'", "concept:ID")
    assert_clean(noted.root, before)
    assert not has_ref(noted.root, BISECT_REF)


def test_range_with_no_kb_change(tmp_path, cache):
    history = make_history(tmp_path / "d", 5, None, pattern=["readme"])
    before = repo_state(history.root)
    res = run_cli("bisect", history.good, "main", cwd=history.root)
    assert_one_error(res, 2, "no KB change between", "identical in all 4 commit(s)")
    assert_clean(history.root, before)
    assert no_models(cache)


def test_bad_that_is_not_worse_than_good(tmp_path, cache):
    history = make_history(tmp_path / "d", 6, None)
    record_results(history.root, history.commits, lambda commit, item: False)
    before = repo_state(history.root)
    res = run_cli("bisect", history.good, "main", cwd=history.root)
    assert_one_error(res, 1, "is not worse than GOOD", "try another --metric")
    assert_clean(history.root, before)
    assert not has_ref(history.root, BISECT_REF)  # an error stores no conclusion


def test_bad_is_judged_before_any_commit_in_between(tmp_path, cache):
    """GOOD and BAD have notes, the commits between them none: a BAD that is not worse than GOOD
    (or only inconclusively) is found from its note before git tests, let alone trains, any
    commit in between."""
    history = make_history(tmp_path / "d", 8, None)
    record_results(history.root, [history.good, history.bad], lambda commit, item: False)
    before = repo_state(history.root)
    res = run_cli("bisect", history.good, "main", cwd=history.root)
    assert_one_error(res, 1, "is not worse than GOOD", f"judging BAD {history.bad[:10]}")
    assert "Bisecting:" not in res.err and no_models(cache), res.err  # no step ran, nothing was trained
    assert_clean(history.root, before)
    assert not has_ref(history.root, BISECT_REF)

    from pwd_git.kb.loader import Domain
    from pwd_git.train.pipeline import shards_for

    hand = sorted(i["id"] for i in shards_for(Domain.find(history.root), history.bad).records("bench")
                  if i["template"] == "hand")
    record_results(history.root, [history.bad], lambda commit, item: item["id"] in hand[:4])  # p = 1/16
    res = run_cli("bisect", history.good, "main", cwd=history.root)
    assert_one_error(res, 1, "is inconclusive on acc", "4 regressed, 0 fixed vs GOOD")
    assert "Bisecting:" not in res.err and no_models(cache), res.err


def test_a_bad_without_a_result_is_taken_on_trust_unless_it_is_the_answer(tmp_path, cache):
    """--no-train and no note on BAD: it cannot be judged, so git takes it on trust and the
    commits in between decide; when every one of them is good, BAD itself would be the answer,
    and that is an error naming why BAD could not be judged."""
    history = make_history(tmp_path / "d", 8, 5)
    record_results(history.root, history.commits[:-1], hand_items_fail_from(history, 5))
    res = run_cli("bisect", history.good, "main", "--no-train", "--format", "json", cwd=history.root)
    assert res.code == 0, res.output
    report = json.loads(res.out)
    assert report["first_bad"]["commit"] == history.regression
    assert report["steps"][1]["commit"] == history.bad and report["steps"][1]["verdict"] == "skip"
    assert "taken on trust" in run_cli("bisect", history.good, "main", "--no-train", cwd=history.root).err
    late = make_history(tmp_path / "late", 8, 7)
    record_results(late.root, late.commits[:-1], lambda commit, item: False)
    before = repo_state(late.root)
    res = run_cli("bisect", late.good, "main", "--no-train", cwd=late.root)
    assert_one_error(res, 1, "every commit before BAD", "cannot be judged", "--no-train")
    assert_clean(late.root, before)


def test_the_verdict_and_the_flipped_items_say_what_each_counts(tmp_path, cache):
    """The QA sweep's puzzle: the verdict said 6 regressed, the flipped items 11. The verdict
    pairs the first bad commit with GOOD, on the items both have; the flips pair it with its
    parent. An accessory commit after GOOD gives L1 items new ids, so the counts differ, and
    the report says what each one counts and how many flips GOOD's benchmark lacks."""
    from pwd_git.kb.loader import Domain
    from pwd_git.train.pipeline import shards_for

    history = make_history(tmp_path / "d", 8, 5)
    bad = set(history.commits[5:])
    record_results(history.root, history.commits, lambda commit, item: commit in bad and item["level"] == "L1")
    domain = Domain.find(history.root)

    def l1(commit: str) -> set[str]:
        return {i["id"] for i in shards_for(domain, commit).records("bench") if i["level"] == "L1"}

    at_good, at_bad, at_parent = l1(history.good), l1(history.regression), l1(history.commits[4])
    assert at_bad - at_good and at_bad == at_parent  # the reproduction: new ids since GOOD, none since the parent
    res = run_cli("bisect", history.good, "main", "--metric", "L1", "--threshold", "0.95", cwd=history.root)
    assert res.code == 0 and f"first bad commit: {history.regression}" in res.out, res.output
    both = len(at_good & at_bad)
    assert (f"L1 = 0.000 ({len(at_bad)} of {len(at_bad)} failing) is below 0.950; {both} regressed, 0 fixed vs GOOD, "
            f"of the {both} L1 item(s) both have") in res.out, res.out
    assert (f"L1 items that flipped at {history.regression[:10]}, against its parent {history.commits[4][:10]} "
            f"({len(at_bad)} item(s) both have): {len(at_bad)} pass -> fail, 0 fail -> pass") in res.out, res.out
    assert f"{len(at_bad - at_good)} of the pass -> fail items are not in GOOD's benchmark" in res.out
    report = json.loads(run_cli("bisect", history.good, "main", "--metric", "L1", "--threshold", "0.95",
                                "--format", "json", cwd=history.root).out)
    assert report["verdict"]["regressed"] == report["verdict"]["common"] == both
    assert len(report["flipped"]["regressed"]) == report["flipped"]["common"] == len(at_bad)
    assert report["verdict"]["regressed"] + report["flipped"]["not_at_good"] == len(report["flipped"]["regressed"])
    assert conclusions(history.root, history.regression)[-1]["verdict"]["common"] == both


def test_a_bisect_already_running(noted):
    root = noted.root
    git(root, "bisect", "start", "main", noted.good)
    user_bisect = git(root, "bisect", "log")
    res = run_cli("bisect", noted.good, "main", cwd=root)
    assert_one_error(res, 2, "already in progress", "git bisect reset")
    assert git(root, "bisect", "log") == user_bisect  # the user's own bisect is untouched
    git(root, "bisect", "reset")
    before = repo_state(root)
    with PidLock(root / ".git" / "pwd" / "bisect" / "lock"):
        res = run_cli("bisect", noted.good, "main", cwd=root)
    assert_one_error(res, 2, "another `git pwd bisect` is running", f"pid {os.getpid()}")
    assert repo_state(root) == before


def test_good_without_a_result_under_no_train(tmp_path, cache):
    history = make_history(tmp_path / "d", 6, 4)
    before = repo_state(history.root)
    res = run_cli("bisect", history.good, "main", "--no-train", cwd=history.root)
    assert_one_error(res, 2, "cannot be judged", "no recorded result", "--no-train")
    assert_clean(history.root, before)
    assert no_models(cache)


def test_verdict_rule_good_bad_and_inconclusive():
    """The `test` rule against GOOD; a suggestive but not significant drop is a skip."""
    from pwd_git.bisect import Metric, judge_against

    good = {f"i{k}": True for k in range(20)}
    acc = Metric.parse("acc")
    assert judge_against(acc, None, 0.05, good, {**good, "i0": False}).verdict == "good"  # one wobble: noise
    four = judge_against(acc, None, 0.05, good, {**good, **{f"i{k}": False for k in range(4)}})
    assert four.verdict == "skip" and "inconclusive" in four.reason and four.p_value == 1 / 16
    six = judge_against(acc, None, 0.05, good, {**good, **{f"i{k}": False for k in range(6)}})
    assert six.verdict == "bad" and six.regressed == 6 and six.exit_code == 1
    below = judge_against(acc, 0.99, 0.05, good, {**good, "i0": False})
    assert below.verdict == "bad" and "below 0.990" in below.reason
    one = Metric.parse("item:i3")
    assert judge_against(one, None, 0.05, {"i3": True}, {"i3": False}).verdict == "bad"  # item:ID = must pass
    assert judge_against(one, None, 0.05, {"i3": True}, {"i3": True}).verdict == "good"
    assert judge_against(acc, None, 0.05, good, {}).verdict == "skip"
    with pytest.raises(Exception, match="unknown metric"):
        Metric.parse("L4")

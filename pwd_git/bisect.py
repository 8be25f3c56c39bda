"""`git pwd bisect`: find the data commit that made the model regress, with real `git bisect`.

How it works (docs/bisect.md has the user-facing version):

- GOOD is judged first; its per-item results are the baseline of every verdict.
- `git bisect start --no-checkout --first-parent BAD GOOD` then `git bisect run` run in a
  temporary linked worktree under .git/pwd/bisect/, so the user's checkout, branch, index
  and uncommitted changes are never touched (with --no-checkout git only moves BISECT_HEAD
  there; no files are written). The worktree is removed afterwards, on success, error,
  Ctrl-C or SIGTERM; a run killed with -9 is cleaned up by the next one.
- The step command (`git pwd bisect-step`) answers, in order of cost: the judgment of a
  commit with the same KB state already judged in this session (same build key and run
  key); a result recorded in git notes for that KB state (no training); otherwise it builds,
  trains and tests the commit from the object store and records a note.
- Verdicts use the `test` rule (verdict.judge: thresholds plus the one-sided exact McNemar
  test against GOOD's items). A regression that is suggestive but not significant
  (alpha <= p < 2 alpha) is inconclusive and skipped (exit 125), never guessed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pwd_git.errors import DataError, PwdError
from pwd_git.git import (
    Repo,
    bisect_log,
    bisect_mark,
    bisect_reset,
    bisect_start,
    commit_info,
    first_parent_range,
    git_text,
    is_ancestor,
    is_bisecting,
    object_ids,
    worktree_add,
    worktree_remove,
)
from pwd_git.kb.loader import CONFIG_FILE, KB_DIRS, Domain
from pwd_git.lock import LockHeld, PidLock

STATE_VERSION = 1
GOOD, BAD, SKIP, ABORT = 0, 1, 125, 128  # `git bisect run` exit codes
INCONCLUSIVE_FACTOR = 2.0  # alpha <= p < 2 alpha with more regressed than fixed items: skip
STEP_PREFIX = "pwd-bisect: "
METRIC_SYNTAX = "acc, L1, L2, L3, concept:ID, chain:ID or item:ID"
_METRIC = re.compile(r"\A(acc|L1|L2|L3|(concept|chain|item):[A-Za-z0-9][A-Za-z0-9._-]*)\Z")


# --- metrics -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """What "good" means: a set of benchmark items (all, a level, a concept's, a chain's, one)."""

    name: str

    @classmethod
    def parse(cls, name: str) -> Metric:
        if not _METRIC.match(name):
            raise PwdError(f"unknown metric {name!r}", hint=f"use {METRIC_SYNTAX}")
        return cls(name)

    @property
    def kind(self) -> str:
        return self.name.split(":", 1)[0] if ":" in self.name else self.name

    @property
    def arg(self) -> str:
        return self.name.split(":", 1)[1] if ":" in self.name else ""

    def covers(self, item: dict) -> bool:
        kind, arg = self.kind, self.arg
        if kind == "acc":
            return True
        if kind in ("L1", "L2", "L3"):
            return item["level"] == kind
        if kind == "concept":
            return arg in item["traces"]["concepts"]
        if kind == "chain":
            return item["traces"].get("chain") == arg
        return item["id"] == arg or (len(arg) >= 6 and item["id"].startswith(arg))

    def default_threshold(self) -> float | None:
        """One item cannot be significant under McNemar: item:ID means "this item passes"."""
        return 1.0 if self.kind == "item" else None


# --- results of one commit ---------------------------------------------------------------

@dataclass
class Result:
    """A commit's benchmark outcome, wherever it came from."""

    commit: str
    identity: str  # build key + run key: equal identity => equal model => equal result
    items: list[dict]  # the commit's benchmark items
    per_item: dict[str, bool]
    metrics: dict
    source: str  # trained | model-cache | notes | reused
    note_from: str | None = None  # the commit whose note answered


class Skip(Exception):
    """This commit cannot be judged (invalid KB, no result with --no-train, metric undefined)."""


def _identity(domain: Domain, commit: str) -> tuple[str, str, dict]:
    """(identity, run key, config) of a commit, from its KB alone (no build, no training)."""
    from pwd_git.build.shards import BuildKey
    from pwd_git.kb.loader import load_revision
    from pwd_git.model.settings import run_key, train_settings

    kb, diags = load_revision(domain, commit)
    errors = [d for d in diags if d.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Skip(f"the KB does not validate: {errors[0].render()}{more}")
    key = run_key(train_settings(kb.config))
    return f"{BuildKey.of(kb).key}:{key}", key, kb.config


def result_for(domain: Domain, commit: str, *, allow_train: bool,
               on_step: Callable[[int, int, float], None] | None = None,
               log: Callable[[str], None] = lambda _m: None) -> Result:
    """The commit's result from notes if any note matches its KB state and run key, else
    (when allowed) build + train + test from the object store, recording a note."""
    from pwd_git.evaluate.run import find_reusable
    from pwd_git.train.pipeline import shards_for

    identity, _key, _config = _identity(domain, commit)
    try:
        shards = shards_for(domain, commit)
    except DataError as exc:
        raise Skip(f"the KB does not build: {exc.message.splitlines()[0]}") from None
    items = shards.records("bench")
    found = find_reusable(domain, commit, shards, commit)
    if found:
        note_commit, entry = found
        failed = set(entry.get("failed", []))
        return Result(commit, identity, items, {i["id"]: i["id"] not in failed for i in items}, entry["metrics"],
                      "notes", note_commit)
    if not allow_train:
        raise Skip("no recorded result for this KB state (--no-train)")
    from pwd_git.evaluate.run import evaluate
    from pwd_git.train.pipeline import train

    try:
        trained = train(domain, commit, on_step=on_step, log=log)
        report = evaluate(domain, commit, compare=False, record=True, log=log)
    except DataError as exc:  # the data of this commit (empty benchmark, bad control set): skip it
        raise Skip(exc.message.splitlines()[0] + (f" ({exc.location})" if exc.location else "")) from None
    return Result(commit, identity, items, report.per_item, report.entry["metrics"],
                  "model-cache" if trained.cached else "trained")


# --- verdicts ------------------------------------------------------------------------------

@dataclass
class Judgment:
    verdict: str  # good | bad | skip
    reason: str
    value: float | None = None
    regressed: int = 0  # items passing at GOOD and failing here
    fixed: int = 0
    p_value: float | None = None

    @property
    def exit_code(self) -> int:
        return {"good": GOOD, "bad": BAD}.get(self.verdict, SKIP)

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "reason": self.reason, "value": self.value,
                "regressed": self.regressed, "fixed": self.fixed, "p_value": self.p_value}


def selected(metric: Metric, result_items: list[dict], per_item: dict[str, bool]) -> dict[str, bool]:
    return {i["id"]: per_item[i["id"]] for i in result_items if metric.covers(i) and i["id"] in per_item}


def judge_against(metric: Metric, threshold: float | None, alpha: float, good: dict[str, bool],
                  now: dict[str, bool]) -> Judgment:
    """Good, bad or inconclusive, by the `test` rule: threshold on the metric plus a one-sided
    exact McNemar test on the items the two commits share."""
    from pwd_git.evaluate.verdict import judge

    if not now:
        return Judgment("skip", f"the metric {metric.name} covers no benchmark item here")
    value = sum(now.values()) / len(now)
    threshold = metric.default_threshold() if threshold is None else threshold
    thresholds = {"acc": threshold} if threshold is not None else {}
    v = judge({"acc": value}, thresholds, passed_now=now, passed_before=good, alpha=alpha)
    j = Judgment("good", "", round(value, 4), len(v.regressed_items), len(v.fixed_items), v.p_value)
    summary = f"{len(v.regressed_items)} regressed, {len(v.fixed_items)} fixed (p={v.p_value:.4g})"
    if v.threshold_failures:
        j.verdict, j.reason = "bad", f"{metric.name} = {value:.3f} is below {threshold:.3f}; {summary}"
    elif not v.ok:
        j.verdict, j.reason = "bad", f"{summary} vs GOOD"
    elif len(v.regressed_items) > len(v.fixed_items) and v.p_value < INCONCLUSIVE_FACTOR * alpha:
        j.verdict, j.reason = "skip", f"inconclusive: {summary} vs GOOD (significant only below {alpha:g})"
    elif not (now.keys() & good.keys()) and threshold is None:
        j.verdict, j.reason = "skip", f"no {metric.name} item in common with GOOD to compare"
    else:
        j.reason = f"{metric.name} = {value:.3f}; {summary} vs GOOD"
    return j


# --- the session state shared with the step command -----------------------------------------

class State:
    """JSON file under .git/pwd/bisect/: written by the session, updated by each step."""

    def __init__(self, path: Path, data: dict):
        self.path, self.data = path, data

    @classmethod
    def load(cls, path: Path) -> State:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise PwdError(f"cannot read the bisect state {path}: {exc}") from None
        if data.get("version") != STATE_VERSION:
            raise PwdError(f"bisect state {path} was written by another pwd-git version")
        return cls(path, data)

    def save(self, *, create: bool = False) -> None:
        if not create and not self.path.exists():
            return  # the session is over (cleaned up): a late step must not bring it back
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def domain(self) -> Domain:
        repo = Repo(Path(self.data["repo_top"]), Path(self.data["git_dir"]))
        return Domain(repo, Path(self.data["domain_root"]))


def _counted(state: dict, source: str) -> None:
    state["counts"][source] = state["counts"].get(source, 0) + 1


def assess(domain: Domain, commit: str, state: dict, *, log: Callable[[str], None] = lambda _m: None,
           on_step: Callable[[int, int, float], None] | None = None) -> tuple[Judgment, str]:
    """Judge one commit (updating `state`): the cached judgment of its KB state, else a result
    from notes, else (unless --no-train) a fresh build + train + test."""
    metric = Metric(state["metric"])
    try:
        identity, _key, _ = _identity(domain, commit)
    except Skip as exc:
        return Judgment("skip", str(exc)), "skipped"
    known = state["judged"].get(identity)
    if known is not None:
        fields = {k: known.get(k) for k in ("value", "regressed", "fixed", "p_value")}
        return Judgment(known["verdict"], f"same KB state as {known['commit'][:10]}: {known['reason']}", **fields), \
            "reused"
    try:
        result = result_for(domain, commit, allow_train=not state["no_train"], on_step=on_step, log=log)
    except Skip as exc:
        return Judgment("skip", str(exc)), "skipped"
    judgment = judge_against(metric, state["threshold"], state["alpha"], state["good_items"],
                             selected(metric, result.items, result.per_item))
    state["judged"][identity] = {**judgment.as_dict(), "commit": commit}
    return judgment, result.source


def run_step(state_path: Path) -> int:
    """The body of `git pwd bisect-step` (run by `git bisect run` in the session's worktree):
    judge BISECT_HEAD and answer git with an exit code."""
    state = State.load(state_path)
    commit = git_text(["rev-parse", "--verify", "BISECT_HEAD"], Path.cwd())
    domain = state.domain()
    short = commit[:10]
    try:
        judgment, source = assess(domain, commit, state.data)
        code = judgment.exit_code
    except KeyboardInterrupt:
        raise
    except PwdError as exc:
        state.data["abort"] = f"while testing {short}: {exc.render()}"
        state.save()
        print(f"{STEP_PREFIX}{short} aborted: {exc.message}", flush=True)
        return ABORT
    except Exception as exc:
        state.data["abort"] = f"internal error while testing {short}: {type(exc).__name__}: {exc}"
        state.save()
        print(f"{STEP_PREFIX}{short} aborted: {type(exc).__name__}: {exc}", flush=True)
        return ABORT
    _counted(state.data, source)
    state.data["steps"].append({"commit": commit, "source": source, **judgment.as_dict()})
    state.save()
    print(f"{STEP_PREFIX}{short} {judgment.verdict:4} ({source}): {judgment.reason}", flush=True)
    return code


# --- the session ---------------------------------------------------------------------------

@dataclass
class BisectReport:
    good: str
    bad: str
    metric: str
    threshold: float | None
    first_bad: dict | None  # commit info
    candidates: list[str]  # when only skipped commits are left
    steps: list[dict]
    counts: dict[str, int]
    commits_in_range: int
    kb_states: int  # distinct KB states (KB folders + pwd.yaml) among GOOD and the range
    bisect_log: str
    unchanged: int = 0  # commits with their parent's KB state: never tested (git bisect skip)
    verdict: dict | None = None  # first bad commit vs GOOD
    kb_diff: dict | None = None
    config_changes: list[str] = field(default_factory=list)
    flipped: dict = field(default_factory=dict)

    @property
    def trained(self) -> int:
        return self.counts.get("trained", 0)

    def as_dict(self) -> dict:
        return {"good": self.good, "bad": self.bad, "metric": self.metric, "threshold": self.threshold,
                "first_bad": self.first_bad, "candidates": self.candidates, "verdict": self.verdict,
                "kb_diff": self.kb_diff, "config_changes": self.config_changes, "flipped": self.flipped,
                "steps": self.steps, "counts": self.counts, "trained": self.trained,
                "commits_in_range": self.commits_in_range, "kb_states": self.kb_states, "unchanged": self.unchanged,
                "bisect_log": self.bisect_log}


def session_dir(repo: Repo) -> Path:
    return repo.pwd_dir() / "bisect"


def kb_states(domain: Domain, commits: list[str]) -> list[tuple[str | None, ...]]:
    """A cheap fingerprint of each commit's KB: the OIDs of concepts/, chains/, patches/ and
    pwd.yaml (one cat-file process). Equal fingerprints => equal KB and config."""
    prefix = f"{domain.prefix}/" if domain.prefix else ""
    names = [*KB_DIRS, CONFIG_FILE]
    oids = object_ids(domain.repo, [f"{c}:{prefix}{name}" for c in commits for name in names])
    return [tuple(oids[i * len(names):(i + 1) * len(names)]) for i in range(len(commits))]


@contextlib.contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM/SIGHUP become KeyboardInterrupt, so the cleanup in `finally` runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """A second Ctrl-C must not cut the cleanup short and leave a bisect behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _cleanup(repo: Repo, worktree: Path) -> None:
    if worktree.exists():
        bisect_reset(worktree)
    worktree_remove(repo, worktree)


def _check_range(domain: Domain, good_rev: str, bad_rev: str) -> tuple[str, str, list[str]]:
    repo = domain.repo
    good, bad = repo.resolve(good_rev), repo.resolve(bad_rev)
    if good == bad:
        raise PwdError(f"GOOD and BAD are the same commit ({good[:10]})", hint="give an older GOOD commit")
    if not is_ancestor(repo, good, bad):
        hint = ("swap them: GOOD comes first (`git pwd bisect GOOD BAD`)" if is_ancestor(repo, bad, good)
                else "GOOD must be an ancestor of BAD (see `git log --graph`)")
        raise PwdError(f"GOOD {good_rev} ({good[:10]}) is not an ancestor of BAD {bad_rev} ({bad[:10]})", hint=hint)
    commits = first_parent_range(repo, good, bad)
    if not commits:
        raise PwdError(f"{good_rev} is not on the first-parent history of {bad_rev}",
                       hint="bisect follows first parents (merges count as one step); pick GOOD on that line")
    return good, bad, commits


def bisect(domain: Domain, good_rev: str, bad_rev: str, *, metric: str = "acc", threshold: float | None = None,
           no_train: bool = False, log: Callable[[str], None] = lambda _m: None,
           on_step: Callable[[int, int, float], None] | None = None) -> BisectReport:
    """Find the first commit on BAD's first-parent line whose model regressed against GOOD."""
    metric_ = Metric.parse(metric)
    repo = domain.repo
    good, bad, commits = _check_range(domain, good_rev, bad_rev)
    if is_bisecting(repo):
        raise PwdError(f"a `git bisect` is already in progress in {repo.top}",
                       hint="finish it, or end it with `git bisect reset`, then run `git pwd bisect` again")
    parent_of_first = repo.resolve(f"{commits[0]}^")
    states = kb_states(domain, [parent_of_first, good, *commits])
    parent_state, states = states[0], states[1:]
    if all(s == states[0] for s in states[1:]):
        raise PwdError(f"no KB change between {good_rev} and {bad_rev}: the KB and pwd.yaml are identical in all "
                       f"{len(commits)} commit(s), so the model cannot differ",
                       hint="the regression is elsewhere (code, environment); check `git pwd log`")
    root = session_dir(repo)
    lock = PidLock(root / "lock")
    try:
        lock.acquire()
    except LockHeld as held:
        raise PwdError(f"another `git pwd bisect` is running in this repository (pid {held.pid})",
                       hint="wait for it to finish, or stop it with Ctrl-C (it resets its bisect itself)") from None
    worktree = root / "worktree"
    try:
        with _terminate_on_sigterm():
            if worktree.exists() or (root / "state.json").exists():
                log("cleaning up a `git pwd bisect` that was killed before it could (git bisect reset, worktree removed)")
                _cleanup(repo, worktree)
            # A commit whose KB state equals its first parent's has the parent's verdict: only
            # the first commit of each run of equal states can be the first bad one. git is
            # told to skip the others, so it bisects over KB changes, not over commits.
            before = [parent_state, *states[1:-1]]
            unchanged = [c for c, now, prev in zip(commits, states[1:], before, strict=True) if now == prev and c != bad]
            return _session(domain, metric_, threshold, no_train, good, bad, good_rev, bad_rev, commits,
                            len(set(states)), unchanged, worktree, log, on_step)
    finally:
        with _sigint_ignored():
            _cleanup(repo, worktree)
            (root / "state.json").unlink(missing_ok=True)
            lock.release()


def _session(domain: Domain, metric: Metric, threshold: float | None, no_train: bool, good: str, bad: str,
             good_rev: str, bad_rev: str, commits: list[str], n_states: int, unchanged: list[str], worktree: Path,
             log: Callable[[str], None], on_step) -> BisectReport:
    from pwd_git.kb.loader import load_revision
    from pwd_git.model.settings import test_settings

    repo = domain.repo
    good_kb, _ = load_revision(domain, good)
    alpha = test_settings(good_kb.config).alpha
    state = State(session_dir(repo) / "state.json", {
        "version": STATE_VERSION, "pid": os.getpid(), "repo_top": str(repo.top), "git_dir": str(repo.git_dir),
        "domain_root": str(domain.root), "good": good, "bad": bad, "metric": metric.name, "threshold": threshold,
        "alpha": alpha, "no_train": no_train, "judged": {}, "steps": [], "counts": {}, "good_items": {}})
    log(f"judging GOOD {good[:10]} ({metric.name}) ...")
    try:
        good_result = result_for(domain, good, allow_train=not no_train, on_step=on_step, log=log)
    except Skip as exc:
        hint = ("run without --no-train, or record it with `git pwd test --rev GOOD`" if no_train
                else "pick a GOOD commit whose KB validates and builds")
        raise PwdError(f"GOOD {good_rev} ({good[:10]}) cannot be judged: {exc}", hint=hint) from None
    _counted(state.data, good_result.source)
    good_items = selected(metric, good_result.items, good_result.per_item)
    if not good_items:
        raise PwdError(f"the metric {metric.name} covers no benchmark item at GOOD {good_rev}",
                       hint="check the concept, chain or item id (`git pwd show GOOD`), or pick another metric")
    value = sum(good_items.values()) / len(good_items)
    limit = metric.default_threshold() if threshold is None else threshold
    if limit is not None and value < limit:
        raise PwdError(f"GOOD {good_rev} ({good[:10]}) already fails the metric: {metric.name} = {value:.3f}, "
                       f"below {limit:.3f}", hint="pick an older GOOD commit, or a lower --threshold")
    state.data["good_items"] = good_items
    state.data["judged"][good_result.identity] = {"verdict": "good", "reason": "GOOD", "value": round(value, 4),
                                                  "regressed": 0, "fixed": 0, "p_value": None, "commit": good}
    state.data["steps"].append({"commit": good, "source": good_result.source, "verdict": "good",
                                "reason": f"GOOD: {metric.name} = {value:.3f}", "value": round(value, 4),
                                "regressed": 0, "fixed": 0, "p_value": None})
    state.save(create=True)

    worktree_add(repo, worktree, good)
    bisect_start(worktree, bad, good)
    if unchanged:
        bisect_mark(worktree, "skip", unchanged)
    code, output = _run_git_bisect(worktree, state.path, log)
    state = State.load(state.path)
    if state.data.get("abort"):
        raise PwdError(f"bisect stopped: {state.data['abort']}", hint="fix the problem and run `git pwd bisect` again")
    log_text = bisect_log(worktree)
    first_bad = _parse_log(log_text, "# first bad commit: [")
    candidates = _parse_log_all(log_text, "# possible first bad commit: [")
    if first_bad is None and candidates:
        first_bad, candidates, log_text = _resolve_unchanged(domain, worktree, state.data, candidates, set(unchanged))
    elif code != 0:
        raise PwdError(f"git bisect run failed (exit {code}): {output.strip().splitlines()[-1] if output.strip() else ''}")
    report = BisectReport(good, bad, metric.name, threshold, None, candidates, state.data["steps"],
                          state.data["counts"], len(commits), n_states, log_text)
    report.unchanged = len(unchanged)
    if first_bad is None:
        return report
    if first_bad == bad and not any(s["commit"] == bad and s["verdict"] == "bad" for s in state.data["steps"]):
        _verify_bad(domain, state, bad, bad_rev, metric, log, on_step)
    _describe(domain, report, first_bad, metric, state.data, log)
    return report


def _resolve_unchanged(domain: Domain, worktree: Path, state: dict, candidates: list[str],
                       unchanged: set[str]) -> tuple[str | None, list[str], str]:
    """git stops with "only skipped commits left" when the first bad commit follows commits we
    told it to skip; those share a judged KB state, so mark them with that state's verdict."""
    for commit in candidates:
        if commit not in unchanged:
            continue
        try:
            identity, _, _ = _identity(domain, commit)
        except Skip:
            continue
        verdict = (state["judged"].get(identity) or {}).get("verdict")
        if verdict in ("good", "bad"):
            bisect_mark(worktree, verdict, [commit])
    log_text = bisect_log(worktree)
    first_bad = _parse_log(log_text, "# first bad commit: [")
    return first_bad, ([] if first_bad else _parse_log_all(log_text, "# possible first bad commit: [")), log_text


def _verify_bad(domain: Domain, state: State, bad: str, bad_rev: str, metric: Metric, log, on_step) -> None:
    """git takes BAD's badness on trust; we check it when the answer is BAD itself."""
    log(f"checking BAD {bad[:10]} itself ...")
    judgment, source = assess(domain, bad, state.data, log=log, on_step=on_step)
    _counted(state.data, source)
    state.data["steps"].append({"commit": bad, "source": source, **judgment.as_dict()})
    if judgment.verdict != "bad":
        what = "inconclusive" if judgment.verdict == "skip" else "not worse than GOOD"
        raise DataError(f"BAD {bad_rev} ({bad[:10]}) is {what} on {metric.name}: {judgment.reason}",
                        hint="nothing regressed between GOOD and BAD by this metric; try another --metric")


def _run_git_bisect(worktree: Path, state_path: Path, log: Callable[[str], None]) -> tuple[int, str]:
    """`git bisect run <step>` in its own process group, progress lines forwarded to `log`.
    On Ctrl-C/SIGTERM the whole group is terminated before the caller cleans up."""
    step = [sys.executable, "-m", "pwd_git", "bisect-step", "--state", str(state_path)]
    proc = subprocess.Popen(["git", "bisect", "run", *step], cwd=worktree, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    lines = []
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            if line.startswith(STEP_PREFIX):
                log("  " + line[len(STEP_PREFIX):])
            elif line.startswith("Bisecting:"):
                log(line)
        return proc.wait(), "\n".join(lines)
    except BaseException:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Terminate `git bisect run` and its step (its own process group) and wait until every
    process of the group is gone: a step still running could otherwise write into the
    session after it was cleaned up."""
    def alive() -> bool:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        while alive() and time.monotonic() < deadline + 5:
            time.sleep(0.05)
    proc.wait()


def _parse_log(text: str, marker: str) -> str | None:
    found = _parse_log_all(text, marker)
    return found[0] if found else None


def _parse_log_all(text: str, marker: str) -> list[str]:
    """Commits on `marker` lines of the last conclusion git wrote (it writes one per attempt)."""
    tail = text.rsplit("# only skipped commits left to test", 1)[-1]
    return [line[len(marker):].split("]", 1)[0] for line in tail.splitlines() if line.startswith(marker)]


def _describe(domain: Domain, report: BisectReport, first_bad: str, metric: Metric, state: dict,
              log: Callable[[str], None]) -> None:
    """Who, what changed (KB diff, pwd.yaml), and which items and concepts flipped."""
    from pwd_git.kb.loader import load_revision
    from pwd_git.kbdiff import diff_revisions

    repo = domain.repo
    report.first_bad = commit_info(repo, first_bad).as_dict()
    parent = repo.resolve(f"{first_bad}^")
    report.first_bad["parent"] = parent
    report.verdict = next((s for s in reversed(state["steps"]) if s["commit"] == first_bad), None)
    if report.verdict is None:  # judged through another commit with the same KB state
        ident, _, _ = _identity(domain, first_bad)
        report.verdict = state["judged"].get(ident)
    report.kb_diff = diff_revisions(domain, parent, first_bad).as_dict()
    old_kb, _ = load_revision(domain, parent)
    new_kb, _ = load_revision(domain, first_bad)
    report.config_changes = config_changes(old_kb.config, new_kb.config)
    try:
        before = result_for(domain, parent, allow_train=False)
        after = result_for(domain, first_bad, allow_train=False)
    except Skip as exc:
        report.flipped = {"skipped": str(exc)}
        return
    items = {i["id"]: i for i in after.items}
    now = selected(metric, after.items, after.per_item)
    old = selected(metric, before.items, before.per_item)
    common = now.keys() & old.keys()
    regressed = sorted(i for i in common if old[i] and not now[i])
    fixed = sorted(i for i in common if not old[i] and now[i])
    concepts: dict[str, dict] = {}
    for cid in sorted({c for i in regressed + fixed for c in items[i]["traces"]["concepts"]}):
        a = before.metrics.get("concepts", {}).get(cid, {}).get("acc")
        b = after.metrics.get("concepts", {}).get(cid, {}).get("acc")
        if a != b:
            concepts[cid] = {"before": a, "after": b}
    report.flipped = {"parent": parent, "regressed": [_brief(items[i]) for i in regressed],
                      "fixed": [_brief(items[i]) for i in fixed], "concepts": concepts}


def _brief(item: dict) -> dict:
    return {"id": item["id"], "level": item["level"], "question": item["question"],
            "answer": item["choices"][item["answer"]], "source": item["source"],
            "concepts": item["traces"]["concepts"], "chain": item["traces"].get("chain")}


def config_changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """pwd.yaml differences as `key.path: old -> new` lines (a budget cut is a data change too)."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(config_changes(a, b, name + "."))
        elif a != b:
            out.append(f"{name}: {_show(a)} -> {_show(b)}")
    return out


def _show(value: object) -> str:
    return "(unset)" if value is None else json.dumps(value, sort_keys=True, default=str)


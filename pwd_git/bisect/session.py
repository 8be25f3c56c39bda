"""The session: checks, then real `git bisect run` in a temporary worktree, and cleanup.

Everything that touches the repository's bisect state lives here, so the guarantee that the
user's checkout is never touched and always restored can be checked in one file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pwd_git import tool
from pwd_git.bisect import record
from pwd_git.bisect.metric import Metric, selected
from pwd_git.bisect.report import BisectReport, _describe
from pwd_git.bisect.step import (
    LIFELINE_ENV,
    STATE_VERSION,
    STEP_PREFIX,
    Skip,
    State,
    _counted,
    _identity,
    assess,
    continues,
    result_for,
)
from pwd_git.errors import DataError, PwdError
from pwd_git.git import (
    Repo,
    bisect_log,
    bisect_mark,
    bisect_reset,
    bisect_start,
    first_parent_range,
    is_ancestor,
    is_bisecting,
    object_ids,
    worktree_add,
    worktree_remove,
)
from pwd_git.kb.loader import CONFIG_FILE, KB_DIRS, Domain
from pwd_git.kb.parse import parse
from pwd_git.lock import LockHeld, PidLock

RUN_PREFIX = "run-"

logger = logging.getLogger(__name__)


def session_dir(repo: Repo) -> Path:
    """Where sessions keep their lock and runs: inside .git, never in the checkout. Each run
    gets a fresh folder `run-XXXX/` with its state (state.json) and its worktree (named like the
    folder, so git's admin folder .git/worktrees/run-XXXX is never one an earlier run used)."""
    return repo.pwd_dir() / "bisect"


def _new_run(root: Path) -> tuple[Path, Path]:
    """(state path, worktree path) of a fresh run folder."""
    run = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=root))
    return run / "state.json", run / run.name


def _remove_run(repo: Repo, run: Path) -> None:
    """The run's bisect and worktree (its admin files included), then its folder."""
    _cleanup(repo, run / run.name)
    shutil.rmtree(run, ignore_errors=True)


def kb_states(domain: Domain, commits: list[str]) -> list[tuple[str | None, ...]]:
    """A cheap fingerprint of each commit's KB: the OIDs of concepts/, chains/, patches/ and
    pwd.yaml (one cat-file process). Equal fingerprints => equal KB and config => equal model,
    except in continue mode, where the commit is part of the fingerprint (as in _identity)."""
    prefix = f"{domain.prefix}/" if domain.prefix else ""
    names = [*KB_DIRS, CONFIG_FILE]
    oids = object_ids(domain.repo, [f"{c}:{prefix}{name}" for c in commits for name in names])
    states = [tuple(oids[i * len(names):(i + 1) * len(names)]) for i in range(len(commits))]
    configs = domain.repo.read_blobs(sorted({s[-1] for s in states if s[-1]}))
    continuing = {oid for oid, raw in configs if continues(parse("config", raw)["data"])}
    return [(*s, c) if s[-1] in continuing else s for c, s in zip(commits, states, strict=True)]


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
    if (worktree / ".git").is_file():  # a linked worktree (not yet one: git would look further up)
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
    run: Path | None = None
    try:
        with _terminate_on_sigterm():
            # We hold the lock, so every run folder left is a dead session's; its git bisect run
            # died with it (see _run_git_bisect), but its bisect and worktree are still there.
            stale = sorted(root.glob(RUN_PREFIX + "*"))
            if stale:
                log("cleaning up a `git pwd bisect` that was killed before it could (git bisect reset, worktree removed)")
                for old in stale:
                    _remove_run(repo, old)
            state_path, worktree = _new_run(root)
            run = worktree.parent
            # A commit whose KB state equals its first parent's (never in continue mode, see
            # kb_states) has the parent's verdict: only the first commit of each run of equal
            # states can be the first bad one. git is told to skip the others, so it bisects
            # over KB changes, not over commits.
            before = [parent_state, *states[1:-1]]
            unchanged = [c for c, now, prev in zip(commits, states[1:], before, strict=True) if now == prev and c != bad]
            report = _session(domain, metric_, threshold, no_train, good, bad, good_rev, bad_rev, commits,
                              len(set(states)), unchanged, state_path, worktree, log, on_step)
            _store(repo, report)
            return report
    finally:
        with _sigint_ignored():
            if run is not None:
                _remove_run(repo, run)
            lock.release()


def _store(repo: Repo, report: BisectReport) -> None:
    """Keep the conclusion as a note in the user's repository (record.py): one ref update,
    so Ctrl-C leaves the old note or the new one. A note that cannot be written (the notes
    lock held for too long) costs a warning, never the conclusion already reached."""
    try:
        report.stored = record.store(repo, report)
    except PwdError as exc:
        logger.warning("the bisect conclusion was not stored in %s: %s", record.REF, exc.message)


def _session(domain: Domain, metric: Metric, threshold: float | None, no_train: bool, good: str, bad: str,
             good_rev: str, bad_rev: str, commits: list[str], n_states: int, unchanged: list[str], state_path: Path,
             worktree: Path, log: Callable[[str], None], on_step) -> BisectReport:
    from pwd_git.kb.loader import load_revision
    from pwd_git.model.settings import test_settings

    repo = domain.repo
    good_kb, _ = load_revision(domain, good)
    alpha = test_settings(good_kb.config).alpha
    state = State(state_path, {
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
    good_items = selected(metric, good_result)
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
                                                  "regressed": 0, "fixed": 0, "p_value": None,
                                                  "common": len(good_items), "commit": good}
    state.data["steps"].append({"commit": good, "source": good_result.source, "verdict": "good",
                                "reason": f"GOOD: {metric.name} = {value:.3f}", "value": round(value, 4),
                                "regressed": 0, "fixed": 0, "p_value": None, "common": len(good_items)})
    _judge_bad(domain, state, bad, bad_rev, metric, log, on_step)
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
    bad_step = next(s for s in state.data["steps"] if s["commit"] == bad)
    if first_bad == bad and bad_step["verdict"] != "bad":  # taken on trust (_judge_bad), and it is the answer
        raise DataError(f"every commit before BAD {bad_rev} ({bad[:10]}) is good, and BAD itself cannot be judged on "
                        f"{metric.name}: {bad_step['reason']}",
                        hint="make BAD testable (fix its KB, or run without --no-train), or pick another BAD")
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


def _judge_bad(domain: Domain, state: State, bad: str, bad_rev: str, metric: Metric, log, on_step) -> None:
    """BAD is judged right after GOOD, before git tests (and trains) any commit in between: a
    BAD that is not worse than GOOD, or only inconclusively, ends the session there (exit 1).
    One that cannot be judged (its KB does not build, --no-train without a note) is taken on
    trust, as git does; it may then not be the answer (see _session)."""
    log(f"judging BAD {bad[:10]} ({metric.name}) ...")
    judgment, source = assess(domain, bad, state.data, log=log, on_step=on_step)
    _counted(state.data, source)
    state.data["steps"].append({"commit": bad, "source": source, **judgment.as_dict()})
    log(f"  {bad[:10]} {judgment.verdict:4} ({source}): {judgment.reason}")
    if judgment.verdict == "good" or judgment.inconclusive:
        what = "inconclusive" if judgment.inconclusive else "not worse than GOOD"
        raise DataError(f"BAD {bad_rev} ({bad[:10]}) is {what} on {metric.name}: {judgment.reason}",
                        hint="nothing regressed between GOOD and BAD by this metric; try another --metric")
    if judgment.verdict == "skip":
        log(f"  BAD cannot be judged ({judgment.reason}): taken on trust, as git does")


def _run_git_bisect(worktree: Path, state_path: Path, log: Callable[[str], None]) -> tuple[int, str]:
    """`git bisect run <step>` in its own process group, progress lines forwarded to `log`.
    On Ctrl-C/SIGTERM the whole group is terminated before the caller cleans up. If this
    process dies without cleaning up (kill -9), the group dies with it: each step holds the
    read end of a pipe whose only write end is ours, and stops the group when it closes
    (step.watch_lifeline), rather than go on judging commits for a session that is gone."""
    step = [*tool.command(), "bisect-step", "--state", str(state_path)]
    lifeline, ours = os.pipe()  # both close-on-exec: only the read end is passed on, below
    try:
        proc = subprocess.Popen(["git", "bisect", "run", *step], cwd=worktree, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                pass_fds=(lifeline,),
                                env={**os.environ, "GIT_TERMINAL_PROMPT": "0", LIFELINE_ENV: str(lifeline)})
    except BaseException:
        os.close(ours)
        raise
    finally:
        os.close(lifeline)
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
    finally:
        os.close(ours)


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

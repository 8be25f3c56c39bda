"""One commit's result, and the hidden step verb `git pwd bisect-step` that `git bisect run` calls.

The step runs in another process than the session: they share a State file under
.git/pwd/bisect/, which carries GOOD's items and the judgments made so far.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pwd_git.bisect.metric import ABORT, Judgment, Metric, judge_against, selected
from pwd_git.errors import DataError, PwdError
from pwd_git.git import Repo, git_text
from pwd_git.kb.loader import Domain
from pwd_git.metrics import Flags
from pwd_git.revision import at

STATE_VERSION = 1
STEP_PREFIX = "pwd-bisect: "
LIFELINE_ENV = "PWD_GIT_BISECT_LIFELINE"  # fd of the pipe that closes when the session dies


@dataclass
class Result:
    """A commit's benchmark outcome, wherever it came from."""

    commit: str
    identity: str  # build key + run key (+ commit in continue mode): equal identity => equal model => equal result
    items: list[dict]  # the commit's benchmark items
    flags: Flags  # per-item pass/fail (acc, acc_norm, control)
    metrics: dict
    source: str  # trained | model-cache | notes | reused
    note_from: str | None = None  # the commit whose note answered

    @property
    def per_item(self) -> dict[str, bool]:
        return dict(self.flags.acc)


class Skip(Exception):
    """This commit cannot be judged (invalid KB, no result with --no-train, metric undefined)."""


def continues(config: object) -> bool:
    """`train.mode: continue`: the commit's model is a fine-tune of its parent commit's model."""
    train = config.get("train") if isinstance(config, dict) else None
    return isinstance(train, dict) and train.get("mode") == "continue"


def _identity(domain: Domain, commit: str) -> tuple[str, str, dict]:
    """(identity, run key, config) of a commit, from its KB alone (no build, no training).

    Equal identities must mean equal models. From scratch, the model depends on the KB state
    alone (build key + run key). In continue mode it also depends on the whole parent chain,
    and on which parent models were cached when it was trained (none: it starts from scratch),
    which no identity of the parent's KB captures; so the commit itself is part of the identity
    and such commits never share a judgment. Notes still answer them when the recorded model
    key is the one training would produce (pwd_git.results)."""
    revision = at(domain, commit)
    errors = revision.errors
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Skip(f"the KB does not validate: {errors[0].render()}{more}")
    identity = f"{revision.build_key.key}:{revision.run_key}"
    return (f"{identity}:{commit}" if continues(revision.config) else identity), revision.run_key, revision.config


def result_for(domain: Domain, commit: str, *, allow_train: bool,
               on_step: Callable[[int, int, float], None] | None = None,
               log: Callable[[str], None] = lambda _m: None) -> Result:
    """The commit's result from notes if any note matches its KB state and run key, else
    (when allowed) build + train + test from the object store, recording a note."""
    from pwd_git.evaluate.run import flags_of
    from pwd_git.results import reusable_result

    identity, _key, _config = _identity(domain, commit)
    revision = at(domain, commit)
    try:
        items = revision.shards.records("bench")
    except DataError as exc:
        raise Skip(f"the KB does not build: {exc.message.splitlines()[0]}") from None
    found = reusable_result(revision, commit)
    if found:
        note_commit, entry = found
        return Result(commit, identity, items, flags_of(entry, items), entry["metrics"], "notes", note_commit)
    if not allow_train:
        raise Skip("no recorded result for this KB state (--no-train)")
    from pwd_git.evaluate.run import evaluate
    from pwd_git.train.pipeline import train

    try:
        trained = train(domain, commit, on_step=on_step, log=log)
        report = evaluate(domain, commit, compare=False, record=True, log=log)
    except DataError as exc:  # the data of this commit (empty benchmark, bad control set): skip it
        raise Skip(exc.message.splitlines()[0] + (f" ({exc.location})" if exc.location else "")) from None
    return Result(commit, identity, items, report.flags, report.entry["metrics"],
                  "model-cache" if trained.cached else "trained")


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
        fields = {k: known.get(k) for k in ("value", "regressed", "fixed", "p_value", "common")}
        return Judgment(known["verdict"], f"same KB state as {known['commit'][:10]}: {known['reason']}", **fields), \
            "reused"
    try:
        result = result_for(domain, commit, allow_train=not state["no_train"], on_step=on_step, log=log)
    except Skip as exc:
        return Judgment("skip", str(exc)), "skipped"
    judgment = judge_against(metric, state["threshold"], state["alpha"], state["good_items"],
                             selected(metric, result))
    state["judged"][identity] = {**judgment.as_dict(), "commit": commit}
    return judgment, result.source


def watch_lifeline() -> None:
    """Stop this step and its `git bisect run` (our process group) as soon as the session that
    started them is gone: its write end of the lifeline pipe closes, even on kill -9. Else the
    step would go on training and git would mark its verdict on whatever commit a later
    session's bisect is at. SIGTERM, so the step cleans up its partial model as on Ctrl-C."""
    fd = os.environ.get(LIFELINE_ENV, "")
    if not fd.isdigit():
        return

    def watch() -> None:
        try:
            while os.read(int(fd), 1):  # the session never writes: b"" means it is gone
                pass
        except OSError:  # not our pipe (no session started this step): nothing to watch
            return
        os.killpg(os.getpgrp(), signal.SIGTERM)

    threading.Thread(target=watch, name="pwd-bisect-lifeline", daemon=True).start()


def run_step(state_path: Path) -> tuple[int, str]:
    """The body of `git pwd bisect-step` (run by `git bisect run` in the session's worktree):
    judge BISECT_HEAD; returns the exit code for git and the line the session reads (it starts
    with STEP_PREFIX)."""
    watch_lifeline()
    state = State.load(state_path)
    commit = git_text(["rev-parse", "--verify", "BISECT_HEAD"], Path.cwd())
    domain = state.domain()
    short = commit[:10]
    try:
        judgment, source = assess(domain, commit, state.data)
    except KeyboardInterrupt:
        raise
    except PwdError as exc:
        state.data["abort"] = f"while testing {short}: {exc.render()}"
        state.save()
        return ABORT, f"{STEP_PREFIX}{short} aborted: {exc.message}"
    except Exception as exc:
        state.data["abort"] = f"internal error while testing {short}: {type(exc).__name__}: {exc}"
        state.save()
        return ABORT, f"{STEP_PREFIX}{short} aborted: {type(exc).__name__}: {exc}"
    _counted(state.data, source)
    state.data["steps"].append({"commit": commit, "source": source, **judgment.as_dict()})
    state.save()
    return judgment.exit_code, f"{STEP_PREFIX}{short} {judgment.verdict:4} ({source}): {judgment.reason}"

"""`repair` as a library call: the self-improving loop on one branch.

From a commit with a result, each round diagnoses the latest kept commit, writes the data
patch `patch` would (data gaps and chain breaks: `Diagnosis.patchable()`), commits it with
`train.mode: continue` (fine-tune the previous model on the new examples plus replay), trains
and tests that commit and compares it item by item with the previous round (paired exact
McNemar). A round is kept only when it is significantly better and breaks no more than
`repair.max_broken` of the items (and of the control items) that passed before; then, and
only then, its commit gets its result note and the branch `pwd/repair/<rev>` moves to it.

The loop stops when the thresholds hold and nothing is left to fix, when a round is not
significantly better or breaks too much (that round is not kept), when nothing more can be
patched, when a round's training fails (earlier rounds stay), or after `repair.rounds`.
Commits are made with plumbing in a temporary index (`pwd_git.repair.patch.commit_files`):
the user's checkout, index and current branch are never touched. Ctrl-C leaves the branch
at the last complete round: a round's note and ref move are one uninterruptible step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from pwd_git import notes
from pwd_git.errors import DataError, PwdError, quote
from pwd_git.evaluate.run import evaluate, flags_of
from pwd_git.evaluate.verdict import judge, mcnemar_p
from pwd_git.git import TempIndex, branch_exists, check_branch_name, create_branch, first_parent_range, is_ancestor, move_branch
from pwd_git.kb.loader import Domain
from pwd_git.metrics import Flags
from pwd_git.repair import REPAIR_BRANCH_PREFIX
from pwd_git.repair.diagnose import NOT_LEARNED, PATCHED_BY_DEFAULT, Diagnosis, Finding, diagnose
from pwd_git.repair.patch import commit_files, patch_files, write_patch
from pwd_git.results import ResultsStore
from pwd_git.revision import at

DEFAULT_ROUNDS = 3
#: A round may break this share of the items (and control items) that passed before. The tiny
#: model's fine-tunes flip 5-7% of them (mostly near-chance items) while fixing more, significantly
#: (benchmarks/repair_rounds.py); 0.02 would keep no round of it.
DEFAULT_MAX_BROKEN = 0.1

KEPT, NO_IMPROVEMENT, REGRESSED, FAILED = "kept", "no-improvement", "regressed", "failed"


@dataclass(frozen=True)
class RepairSettings:
    """pwd.yaml's `repair` section: how many rounds, and how much a round may break."""

    rounds: int = DEFAULT_ROUNDS
    max_broken: float = DEFAULT_MAX_BROKEN  # share of passing items (and of control items) a kept round may break
    include: tuple[str, ...] = ()  # finding kinds patched besides data gaps and chain breaks (not-learned)


def repair_settings(config: dict) -> RepairSettings:
    section = config.get("repair") or {}
    return RepairSettings(int(section.get("rounds", DEFAULT_ROUNDS)),
                          float(section.get("max_broken", DEFAULT_MAX_BROKEN)),
                          tuple(section.get("include") or ()))


@dataclass
class Round:
    number: int
    base: str  # the commit the round started from
    patched: list[Finding]
    examples: int
    patch_file: str
    outcome: str = FAILED  # kept | no-improvement | regressed | failed
    commit: str | None = None  # the kept commit on the branch (None when not kept)
    metrics: dict | None = None  # the round's result (None when it failed)
    fixed: list[str] = field(default_factory=list)  # items failing at `base` that pass now
    broken: list[str] = field(default_factory=list)  # items passing at `base` that fail now
    passing_before: int = 0
    p_value: float | None = None  # one-sided exact McNemar: P(this many fixed or more by chance)
    control_fixed: list[str] = field(default_factory=list)
    control_broken: list[str] = field(default_factory=list)
    control_n: int = 0
    seconds: float = 0.0

    @property
    def broken_share(self) -> float:
        return len(self.broken) / self.passing_before if self.passing_before else 0.0

    @property
    def control_drop(self) -> float:
        """Net share of the control set lost (broken less fixed)."""
        return (len(self.control_broken) - len(self.control_fixed)) / self.control_n if self.control_n else 0.0

    def as_dict(self) -> dict:
        return {"round": self.number, "base": self.base, "commit": self.commit, "outcome": self.outcome,
                "patched": [f.as_dict() for f in self.patched], "examples": self.examples,
                "patch_file": self.patch_file, "metrics": self.metrics, "fixed": self.fixed, "broken": self.broken,
                "passing_before": self.passing_before, "broken_share": round(self.broken_share, 4),
                "p_value": self.p_value, "control_fixed": self.control_fixed, "control_broken": self.control_broken,
                "control_drop": round(self.control_drop, 4), "seconds": round(self.seconds, 1)}


@dataclass
class RepairResult:
    start: str  # REV's commit
    branch: str
    start_metrics: dict
    rounds: list[Round]  # this run's rounds, kept or not
    stop: str = ""  # why the loop stopped, for people
    reason: str = ""  # nothing-to-do | done | nothing-to-patch | no-improvement | regressed | rounds | failed
    tip: str | None = None  # the branch's tip (None: no branch was made)
    thresholds_ok: bool = False  # at the tip (or at REV without a branch)
    error: PwdError | None = None  # the failure that stopped a round (earlier rounds are kept)
    resumed_from: str | None = None  # --continue: the tip this run started from

    @property
    def kept(self) -> list[Round]:
        return [r for r in self.rounds if r.outcome == KEPT]

    def as_dict(self) -> dict:
        return {"start": self.start, "branch": self.branch if self.tip else None, "tip": self.tip,
                "resumed_from": self.resumed_from, "start_metrics": self.start_metrics,
                "rounds": [r.as_dict() for r in self.rounds], "stop": self.stop, "reason": self.reason,
                "thresholds_ok": self.thresholds_ok, "error": self.error.message if self.error else None}


def repair(domain: Domain, rev: str = "HEAD", *, rounds: int | None = None, branch: str | None = None,
           resume: bool = False, include: tuple[str, ...] | None = None,
           log: Callable[[str], None] = lambda _m: None) -> RepairResult:
    """Run up to `rounds` repair rounds from `rev` on `branch` (default pwd/repair/<rev>); with
    `resume`, an existing branch is continued from its tip (else it is refused). `include`
    (default: repair.include) adds not-learned nodes to what each round patches."""
    repo = domain.repo
    start = repo.resolve(rev)
    name = check_branch_name(repo, branch or f"{REPAIR_BRANCH_PREFIX}{start[:10]}")
    tip = None
    if branch_exists(repo, name):
        if not resume:
            raise PwdError(f"branch {quote(name)} already exists",
                           hint="pass --continue to resume it from its tip, or --branch NEW-NAME")
        tip = repo.resolve(f"refs/heads/{name}")
        if not is_ancestor(repo, start, tip):
            raise PwdError(f"branch {quote(name)} does not grow from {start[:10]}",
                           hint="continue a branch made by `git pwd repair` from this revision, or pass --branch")
    base = tip or start
    entry = _result_of(domain, base)
    settings = repair_settings(at(domain, base).config)
    if include is not None:
        settings = replace(settings, include=include)
    kinds = (*PATCHED_BY_DEFAULT, *settings.include)
    todo = settings.rounds if rounds is None else rounds
    done = len(first_parent_range(repo, start, tip)) if tip else 0
    result = RepairResult(start, name, entry["metrics"], [], tip=tip, resumed_from=tip)
    if tip:
        log(f"continuing {name} from its tip {tip[:10]} ({done} round(s) on it)")
    try:
        for number in range(done + 1, done + todo + 1):
            diagnosis = diagnose(domain, base, key=entry["run_key"], run_if_missing=False, log=log)
            thresholds = judge(entry["metrics"], at(domain, base).settings.test.thresholds,
                               passed_now=_flags(domain, base, entry).acc)
            result.thresholds_ok = thresholds.ok
            findings = diagnosis.patchable(kinds) if diagnosis.model_learned else []
            if not findings:
                _stop_clean(result, diagnosis, thresholds.ok, kinds, first=number == done + 1 and not tip)
                return result
            step = _round(domain, number, base, entry, diagnosis, settings, result, log)
            if step is None:
                return result
            base, entry = step
        result.reason, result.stop = "rounds", f"stopped after {todo} round(s) (--rounds / repair.rounds)"
        result.thresholds_ok = judge(entry["metrics"], at(domain, base).settings.test.thresholds,
                                     passed_now=_flags(domain, base, entry).acc).ok
        return result
    except KeyboardInterrupt:
        kept = len(result.kept)
        log(f"interrupted: {kept} round(s) of this run kept" + (f" on {name} (tip {result.tip[:10]})" if result.tip else
                                                                  "; no branch was made"))
        raise


def _result_of(domain: Domain, commit: str) -> dict:
    """The latest complete result recorded on `commit` for its own run key."""
    revision = at(domain, commit)
    lines = [e for e in revision.results(revision.run_key) if notes.is_complete(e)]
    if not lines:
        raise PwdError(f"no result recorded on {commit[:10]} for its pwd.yaml (run key {revision.run_key})",
                       hint=f"run `git pwd test --rev {commit[:10]}` first; repair starts from a tested commit")
    return lines[-1]


def _flags(domain: Domain, commit: str, entry: dict) -> Flags:
    return flags_of(entry, at(domain, commit).shards.records("bench"))


def _stop_clean(result: RepairResult, diagnosis: Diagnosis, thresholds_ok: bool, kinds: tuple[str, ...],
                first: bool) -> None:
    """Nothing patchable is left: done when the thresholds hold, else say why nothing can be patched."""
    names = [{NOT_LEARNED: "not-learned node"}.get(k, k.replace("-", " ")) for k in kinds]
    wanted = " or ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " or " + names[-1]
    if thresholds_ok and diagnosis.model_learned:
        result.reason = "nothing-to-do" if first else "done"
        result.stop = f"nothing to do: the thresholds hold on {diagnosis.commit[:10]} and no {wanted} is left to fix"
        return
    result.reason = "nothing-to-patch"
    if not diagnosis.model_learned:
        why = (f"the model of {diagnosis.commit[:10]} fails {diagnosis.base_failure:.0%} of the well-covered probes, "
               "no better than guessing: fix training first")
    else:
        counts = ", ".join(f"{n} {k}" for k, n in diagnosis.counts().items() if n) or "no findings"
        why = f"no {wanted} beats the model's noise on {diagnosis.commit[:10]} ({counts})"
        if NOT_LEARNED not in kinds and diagnosis.counts().get(NOT_LEARNED):
            why += "; --include not-learned (repair.include) patches the nodes that are not learned"
    result.stop = f"the thresholds do not hold, and {why}" if not thresholds_ok else f"nothing to patch: {why}"


def _round(domain: Domain, number: int, base: str, entry: dict, diagnosis: Diagnosis, settings: RepairSettings,
           result: RepairResult, log: Callable[[str], None]) -> tuple[str, dict] | None:
    """One round from `base`; (the kept commit, its result), or None when the loop stops."""
    began = time.perf_counter()
    try:
        patch = write_patch(domain, diagnosis, include=settings.include)
    except DataError as exc:
        result.reason, result.stop = "nothing-to-patch", exc.message
        return None
    step = Round(number, base, patch.patched, patch.examples, patch.path)
    result.rounds.append(step)
    log(f"round {number}: {patch.examples} example(s) for {len(patch.patched)} node(s) ({patch.path}); training")
    draft = commit_files(domain, base, patch_files(domain, patch, "continue"), f"pwd repair round {number}",
                         _findings_text(patch.patched))
    try:
        report = evaluate(domain, draft, compare=False, record=False, log=log)
    except PwdError as exc:
        result.error = type(exc)(f"round {number} failed: {exc.message}", location=exc.location, hint=exc.hint)
    except OSError as exc:  # e.g. a model cache that cannot be written
        result.error = PwdError(f"round {number} failed: {exc}", hint="fix the cause and resume with --continue")
    if result.error is not None:
        step.seconds = time.perf_counter() - began
        result.reason = FAILED
        result.stop = result.error.message + (f"; the {len(result.kept)} earlier round(s) of this run are kept"
                                               if result.kept else "")
        return None
    tsettings = at(domain, draft).settings.test
    before, now = _flags(domain, base, entry), report.flags
    verdict = judge(report.entry["metrics"], tsettings.thresholds, passed_now=now.acc, passed_before=before.acc,
                    alpha=tsettings.alpha, baseline=base)
    step.metrics, step.fixed, step.broken = report.entry["metrics"], verdict.fixed_items, verdict.regressed_items
    step.passing_before = sum(ok for i, ok in before.acc.items() if i in now.acc)
    step.p_value = round(mcnemar_p(len(step.fixed), len(step.broken)), 6)
    if before.control is not None and now.control is not None:
        common = before.control.keys() & now.control.keys()
        step.control_n = len(common)
        step.control_fixed = sorted(i for i in common if now.control[i] and not before.control[i])
        step.control_broken = sorted(i for i in common if before.control[i] and not now.control[i])
    step.seconds = time.perf_counter() - began
    summary = (f"round {number}: {len(step.fixed)} fixed, {len(step.broken)} broken of {step.passing_before} passing "
               f"({step.broken_share:.1%}), p={step.p_value:.4f}")
    if step.broken_share > settings.max_broken or step.control_drop > settings.max_broken:
        what = (f"broke {step.broken_share:.1%} of the passing items" if step.broken_share > settings.max_broken
                else f"lost {step.control_drop:.1%} of the control set")
        step.outcome, result.reason = REGRESSED, REGRESSED
        result.stop = f"round {number} {what}, more than repair.max_broken {settings.max_broken:.1%}: not kept"
        log(summary + ": not kept")
        return None
    if not (len(step.fixed) > len(step.broken) and step.p_value < tsettings.alpha):
        step.outcome, result.reason = NO_IMPROVEMENT, NO_IMPROVEMENT
        result.stop = (f"round {number} is not significantly better than {base[:10]} ({len(step.fixed)} fixed, "
                       f"{len(step.broken)} broken, p={step.p_value:.4f} >= test.alpha {tsettings.alpha:g}): not kept")
        log(summary + ": not kept")
        return None
    new_entry = {**report.entry, "verdict": "pass" if verdict.ok else "fail",
                 "baseline": {"commit": base, "regressed": verdict.regressed_items, "fixed": verdict.fixed_items,
                              "p_value": round(verdict.p_value or 1.0, 6)}}
    with TempIndex(domain.repo, draft) as index:  # the draft's tree, with the round's metrics in its message
        commit = index.commit(base, _message(step, entry["metrics"]))
    new_entry["commit"] = commit
    with _uninterrupted():  # the note, then the ref: the branch never points at a round without its result
        ResultsStore(domain.repo).record(commit, new_entry)
        if result.tip is None:
            create_branch(domain.repo, result.branch, commit)
        else:
            move_branch(domain.repo, result.branch, commit, result.tip)
        step.commit, step.outcome, result.tip = commit, KEPT, commit
    result.thresholds_ok = verdict.ok
    log(summary + f": kept as {commit[:10]} on {result.branch}")
    return commit, new_entry


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ctrl-C held back until the block is done, then raised. A Python handler rather than a
    thread's signal mask: the kernel may hand SIGINT to any thread (torch's pool among them),
    and Python then raises it in the main thread wherever that is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt


def _findings_text(patched: list[Finding]) -> str:
    return "\n".join(f"- {f.kind} {f.node_kind} {f.node} ({f.location})" for f in patched)


def levels_text(metrics: dict) -> str:
    """acc, per level and control, as one line."""
    parts = [f"acc {metrics.get('acc', 0):.3f}"]
    parts += [f"{k} {v['acc']:.3f}" for k, v in sorted((metrics.get("levels") or {}).items())]
    if metrics.get("control"):
        parts.append(f"control {metrics['control']['acc']:.3f}")
    return ", ".join(parts)


def _message(step: Round, before: dict) -> str:
    subject = (f"pwd repair round {step.number}: {len(step.patched)} node(s), {len(step.fixed)} item(s) fixed, "
               f"{len(step.broken)} broken")
    body = [f"Findings patched (diagnosis of {step.base[:10]}):", _findings_text(step.patched), "",
            f"Examples added: {step.examples} ({step.patch_file}); train.mode: continue (fine-tune with replay)", "",
            f"Before: {levels_text(before)}", f"After:  {levels_text(step.metrics or {})}",
            f"Items: {len(step.fixed)} fixed, {len(step.broken)} broken of {step.passing_before} passing "
            f"({step.broken_share:.1%}); paired exact McNemar p={step.p_value:.4g}"]
    if step.control_n:
        body.append(f"Control: {len(step.control_fixed)} fixed, {len(step.control_broken)} broken of {step.control_n}")
    return subject + "\n\n" + "\n".join(body) + "\n"

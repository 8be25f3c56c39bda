"""`test` as a library call: score the benchmark of a revision, judge it, record a note."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pwd_git import __version__
from pwd_git.build.shards import warn_about
from pwd_git.errors import DataError
from pwd_git.evaluate.verdict import Verdict, judge
from pwd_git.kb.loader import Domain
from pwd_git.metrics import Flags
from pwd_git.model.settings import TINY, changed_settings, run_key, test_settings, train_settings
from pwd_git.model.text import rendering as text_rendering
from pwd_git.results import ResultsStore, nearest_result, reusable_result
from pwd_git.revision import Revision, at
from pwd_git.train.pipeline import Shards, device, load_model, shards_for, train


@dataclass
class TestReport:
    commit: str | None  # the commit the result is recorded on (None: working tree differs)
    entry: dict  # the note line
    verdict: Verdict
    per_item: dict[str, bool] = field(default_factory=dict)
    items: dict[str, dict] = field(default_factory=dict)  # the benchmark items, by id
    reused_from: str | None = None
    recorded: bool = False  # a note line holds this result on `commit`
    flags: Flags | None = None  # per-item acc, acc_norm and control flags (what metrics count)
    differs: str | None = None  # why the working tree's result belongs to no commit
    was: dict | None = None  # the judgment the note held before, when this one differs from it
    alpha: float = 0.05  # test.alpha: the level of every test the report makes


def _accuracy(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def summarize(items: list[dict], correct: dict[str, bool], correct_norm: dict[str, bool]) -> dict:
    levels, concepts, chains = defaultdict(list), defaultdict(list), defaultdict(list)
    for item in items:
        ok = correct[item["id"]]
        levels[item["level"]].append(ok)
        for cid in item["traces"]["concepts"]:
            concepts[cid].append(ok)
        if item["traces"].get("chain"):
            chains[item["traces"]["chain"]].append(ok)

    def table(groups):
        return {k: {"acc": _accuracy(v), "n": len(v)} for k, v in sorted(groups.items())}

    return {"acc": _accuracy([correct[i["id"]] for i in items]),
            "acc_norm": _accuracy([correct_norm[i["id"]] for i in items]), "n": len(items),
            "levels": table(levels), "concepts": table(concepts), "chains": table(chains)}


def flags_of(entry: dict, items: list[dict]) -> Flags:
    """Per-item flags of a recorded result: its failed-id lists against the benchmark items (and
    the control ids it recorded). acc_norm and control flags exist only in lines that kept them."""
    failed, ids = set(entry.get("failed", [])), [i["id"] for i in items]
    norm = set(entry["failed_norm"]) if isinstance(entry.get("failed_norm"), list) else None
    control = entry.get("control_items")
    control_failed = set(entry.get("control_failed") or [])
    return Flags({i: i not in failed for i in ids},
                 None if norm is None else {i: i not in norm for i in ids},
                 {i: i not in control_failed for i in control} if isinstance(control, list) else None)


def load_control(domain: Domain, path: str | None) -> list[dict]:
    """Optional out-of-domain items (JSONL: question, choices, answer) to watch forgetting."""
    if not path:
        return []
    full = domain.root / path
    items = []
    try:
        lines = full.read_text(encoding="utf-8").splitlines()
    except OSError:
        raise DataError(f"control set {path} cannot be read", location="pwd.yaml",
                        hint="fix test.control in pwd.yaml (a JSONL path relative to the domain)") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            assert isinstance(item["choices"], list) and 0 <= int(item["answer"]) < len(item["choices"])
            items.append({"id": item.get("id", f"control-{n}"), "question": str(item["question"]),
                          "choices": [str(c) for c in item["choices"]], "answer": int(item["answer"])})
        except (ValueError, KeyError, TypeError, AssertionError):
            raise DataError("control item needs question, choices (list) and answer (index)",
                            location=f"{path}:{n}") from None
    return items


AUTO, NO_BASELINE = "auto", "none"  # test.baseline: the nearest ancestor with a result (default), or no gate


def _nearest_baseline(domain: Domain, commit: str | None, run_key: str, base: str,
                      log: Callable[[str], None]) -> tuple[str | None, dict[str, bool] | None]:
    """The default regression gate: the nearest first-parent ancestor with a result of the same
    base model (for the working tree: HEAD itself, when the worktree is not HEAD's state), and its
    per-item flags. None when there is none: the first result of a history has nothing to gate."""
    if commit is None and domain.repo.tree_oid("HEAD") is None:
        return None, None
    found = nearest_result(domain, commit or "HEAD", run_key, base, skip_start=commit is not None)
    if found is None:
        return None, None
    ancestor, entry = found
    other = "" if entry.get("run_key") == run_key else ", trained with other settings"
    log(f"comparing with {ancestor[:10]}, the nearest ancestor with a result{other} (test.baseline: none switches it off)")
    return ancestor, dict(flags_of(entry, at(domain, ancestor).shards.records("bench")).acc)


def commit_for(domain: Domain, rev: str | None, shards: Shards) -> tuple[str | None, str | None]:
    """(where the result is recorded, why nowhere): REV's commit; for the working tree HEAD,
    only when the whole run key equals HEAD's (KB tree, build config, train and model settings,
    base identity), so a note never claims a result HEAD's own pwd.yaml would not produce."""
    if rev is not None:
        return domain.repo.resolve(rev), None
    if domain.repo.tree_oid("HEAD") is None:
        return None, "there is no commit yet"
    head = shards_for(domain, "HEAD")
    if head.manifest["kb_tree"] != shards.manifest["kb_tree"]:
        return None, "the working tree KB differs from HEAD"
    if head.manifest["build_key"] != shards.manifest["build_key"]:
        return None, "the working tree differs from HEAD in pwd.yaml (build)"
    changed = changed_settings(train_settings(head.config, domain.root), train_settings(shards.config, domain.root))
    if changed:
        return None, f"the working tree differs from HEAD in pwd.yaml ({', '.join(changed)})"
    return domain.repo.resolve("HEAD"), None


def evaluate(domain: Domain, rev: str | None = None, *, baseline: str | None = None, compare: bool = True,
             record: bool = True,
             log: Callable[[str], None] = lambda _m: None,
             on_step: Callable[[int, int, float], None] | None = None) -> TestReport:
    if baseline is not None and baseline not in (AUTO, NO_BASELINE):
        domain.repo.resolve(baseline)  # a mistyped --baseline fails before anything is trained
    shards = shards_for(domain, rev)
    warn_about(shards.manifest)
    settings, tsettings = train_settings(shards.config, domain.root), test_settings(shards.config)
    key = run_key(settings)
    commit, differs = commit_for(domain, rev, shards)
    items = shards.records("bench")
    if not items:
        raise DataError("the benchmark is empty: no test-split chains", hint="add a chain with `split: test`")
    stored = None  # the line on `commit` this result was read from
    revision = at(domain, rev)
    reused = reusable_result(revision, commit)
    if reused:
        source_commit, entry = reused
        log(f"reusing the result recorded on {source_commit[:10]} (same build and run key)")
        flags = flags_of(entry, items)
        per_item = dict(flags.acc)
        stored = entry if source_commit == commit else None
        entry = {k: v for k, v in entry.items() if k != "baseline"}  # judged again below, against today's baseline
        if stored is None:
            entry.update(commit=commit, reused_from=entry.get("reused_from") or source_commit)
    else:
        trained = train(domain, rev, on_step=on_step, log=log)
        log(f"scoring {len(items)} benchmark items with model {trained.key[:12]}")
        model, tokenizer = load_model(trained.path, trained.meta, domain)
        from pwd_git.evaluate.score import score_items

        rendering = text_rendering(tokenizer, tiny=trained.meta["base"] == TINY)  # the format it was trained in
        scores = score_items(model, tokenizer, items, batch_size=tsettings.batch_size, device=device(), rendering=rendering)
        per_item = {s.id: s.correct for s in scores}
        metrics = summarize(items, per_item, {s.id: s.correct_norm for s in scores})
        control = load_control(domain, tsettings.control)
        control_flags = None
        if control:
            cscores = score_items(model, tokenizer, control, batch_size=tsettings.batch_size, device=device(),
                                  rendering=rendering)
            metrics["control"] = {"acc": _accuracy([s.correct for s in cscores]),
                                  "acc_norm": _accuracy([s.correct_norm for s in cscores]), "n": len(cscores)}
            control_flags = {s.id: s.correct for s in cscores}
        flags = Flags(per_item, {s.id: s.correct_norm for s in scores}, control_flags)
        entry = {"time": _now(), "tool": __version__,
                 "run_key": key, "model_key": trained.key, "base": settings.base, "commit": commit,
                 "kb_tree": shards.manifest["kb_tree"], "shards_hash": shards.manifest["shards_hash"],
                 "build_key": shards.manifest["build_key"], "metrics": metrics,
                 "failed": sorted(i for i, ok in per_item.items() if not ok),
                 "failed_norm": sorted(i for i, ok in flags.acc_norm.items() if not ok)}
        if control_flags is not None:
            entry["control_items"] = sorted(control_flags)
            entry["control_failed"] = sorted(i for i, ok in control_flags.items() if not ok)
    baseline = (baseline or tsettings.baseline or AUTO) if compare else NO_BASELINE
    before = None
    if baseline == AUTO:
        baseline, before = _nearest_baseline(domain, commit, key, settings.base, log)
    elif baseline != NO_BASELINE:
        base_report = evaluate(domain, baseline, compare=False, record=record, log=lambda m: log(f"baseline: {m}"),
                               on_step=on_step)
        before = base_report.per_item
        baseline = base_report.commit or baseline
    else:
        baseline = None
    verdict = judge(entry["metrics"], tsettings.thresholds, passed_now=per_item, passed_before=before,
                    alpha=tsettings.alpha, baseline=baseline)
    entry["verdict"] = "pass" if verdict.ok else "fail"
    if verdict.p_value is not None:
        entry["baseline"] = {"commit": baseline, "regressed": verdict.regressed_items, "fixed": verdict.fixed_items,
                             "p_value": round(verdict.p_value, 6)}
        targeted = _patch_targets(domain, revision, baseline, before, per_item)
        if targeted:
            entry["baseline"]["targeted"] = targeted
    # A result judged again (compare) against another baseline than its note's, with another
    # outcome, gets a line of its own: the note, `log` and `report` then say what `test` said.
    was = _judgment(stored) if stored is not None and compare and _judgment(stored) != _judgment(entry) else None
    write = bool(record and commit and (stored is None or was is not None))
    if write:
        entry["time"] = _now()  # when this line's verdict was given
        ResultsStore(domain.repo).record(commit, entry)
    return TestReport(commit, entry, verdict, per_item, {i["id"]: i for i in items}, entry.get("reused_from"),
                      recorded=write or (stored is not None and was is None), flags=flags, differs=differs,
                      was=was, alpha=tsettings.alpha)


def _patch_targets(domain: Domain, revision: Revision, baseline: str, before: dict[str, bool], now: dict[str, bool],
                   ) -> list[str]:
    """The items that failed on the baseline and that patches added since were written to fix
    (their `targets`): what tells a patch's effect from the retraining's noise."""
    new = revision.kb.patch_targets - at(domain, baseline).kb.patch_targets
    return sorted(i for i in new if i in now and before.get(i) is False)


def _now() -> str:
    """A line's `time`, to the millisecond: the latest line on a commit is the one with the
    latest time (a merge sorts lines as text), and two verdicts can come within a second."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _judgment(entry: dict) -> dict:
    """What a line concludes: its verdict and the baseline comparison behind it (if any)."""
    return {"verdict": entry.get("verdict"), "baseline": entry.get("baseline")}


"""`patch` as a library call: diagnosis -> patches/*.yaml -> rebuilt shards -> a commit on a
new branch, made with plumbing in a temporary index so the user's checkout, index and
uncommitted work are never touched."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from pwd_git.build.decontam import find_leaks
from pwd_git.build.render import content_id
from pwd_git.build.shards import MANIFEST, SHARDS_DIR, build
from pwd_git.errors import DataError, quote
from pwd_git.git import TempIndex, branch_exists, check_branch_name, create_branch
from pwd_git.kb.loader import Domain
from pwd_git.kb.model import slug
from pwd_git.repair import PATCH_BRANCH_PREFIX
from pwd_git.repair.diagnose import NOT_LEARNED, PATCHED_BY_DEFAULT, Diagnosis, Finding, diagnose
from pwd_git.repair.examples import ExampleWriter, Skipped
from pwd_git.revision import at
from pwd_git.train.pipeline import shards_for

MAX_DIFF_LINES = 400


@dataclass
class PatchResult:
    diagnosis: Diagnosis
    branch: str
    path: str  # the patch file, relative to the KB root
    content: str  # the patch file's YAML
    patched: list[Finding]
    skipped: list[Skipped]
    examples: int
    expected_flips: list[dict]
    commit: str | None = None  # None for --dry-run
    dropped_leaks: list[str] = field(default_factory=list)

    def unified_diff(self) -> str:
        lines = list(difflib.unified_diff([], self.content.splitlines(), "/dev/null", f"b/{self.path}", lineterm=""))
        if len(lines) > MAX_DIFF_LINES:
            cut = len(lines) - MAX_DIFF_LINES
            lines = [*lines[:MAX_DIFF_LINES], f"... {cut} more lines ({self.examples} examples in {self.path})"]
        return "\n".join(lines)


def make_patch(domain: Domain, rev: str = "HEAD", *, limit: int | None = None, branch: str | None = None,
               train_mode: str | None = None, dry_run: bool = False, include: tuple[str, ...] = (),
               log: Callable[[str], None] = lambda _m: None,
               on_step: Callable[[int, int, float], None] | None = None) -> PatchResult:
    """Patch what the data is at fault for: data gaps and chain breaks that beat the model's
    noise, plus the kinds in `include` (not-learned). Contradictions are never patched.
    `train_mode` also sets `train.mode` in the patch commit's pwd.yaml: `continue` makes the
    fix a fine-tune of REV's model on the new examples plus replay, so what REV's model
    already knew is kept instead of re-rolled by a from-scratch run. `log` and `on_step`
    report the tests the diagnosis runs when REV has no result yet (see `diagnose`)."""
    if branch is not None:
        check_branch_name(domain.repo, branch)  # before the diagnosis, which may train
    diagnosis = diagnose(domain, rev, log=log, on_step=on_step)
    result = write_patch(domain, diagnosis, limit=limit, include=include)
    name = branch or _branch_name(diagnosis.commit, result.patched)
    if not dry_run and branch_exists(domain.repo, name):
        raise DataError(f"branch {quote(name)} already exists", hint="pass --branch NEW-NAME, or delete the old branch")
    result.branch = name
    if not dry_run:
        subject, body = patch_message(diagnosis.commit, result.patched)
        result.commit = commit_on_branch(domain, diagnosis.commit, patch_files(domain, result, train_mode), name,
                                         subject, body)
    return result


def write_patch(domain: Domain, diagnosis: Diagnosis, *, limit: int | None = None,
                include: tuple[str, ...] = ()) -> PatchResult:
    """The data patch for a diagnosis (examples for its patchable findings, decontaminated),
    committed nowhere yet: what `patch` and each round of `repair` write. A DataError says why
    there is nothing to patch."""
    if diagnosis.clean:
        raise DataError(f"nothing to patch: {diagnosis.commit[:10]} has no failed items that trace to the KB")
    if not diagnosis.model_learned:
        raise DataError(f"nothing to patch: the model of {diagnosis.commit[:10]} fails {diagnosis.base_failure:.0%} of "
                        "the probes of nodes with adequate data, no better than guessing",
                        hint="fix training first (train.epochs, train.lr, the model size), then diagnose again")
    kinds = (*PATCHED_BY_DEFAULT, *include)
    findings = diagnosis.patchable(kinds)
    if not findings:
        counts = ", ".join(f"{n} {k}" for k, n in diagnosis.counts().items() if n)
        raise DataError(f"nothing to patch on {diagnosis.commit[:10]}: no {' or '.join(kinds)} finding beats the "
                        f"model's noise ({counts})",
                        hint="`git pwd diagnose` explains each finding; `--include not-learned` patches the rest")
    kb = at(domain, diagnosis.commit).kb
    writer = ExampleWriter(kb)
    findings = findings[:limit] if limit else findings
    examples, patched, skipped = [], [], []
    for finding in findings:
        new, reason = writer.for_finding(finding)
        if new or reason is None:  # no new examples and no reason: covered by an earlier finding's
            examples.extend(new)
            patched.append(finding)
        else:
            skipped.append(Skipped(finding, reason or "no example could be written"))
    if not examples:
        raise DataError("no data patch can be written for this diagnosis:\n  "
                        + "\n  ".join(f"{s.finding.location}: {s.reason}" for s in skipped))
    if not any(f.kind == NOT_LEARNED for f in patched):  # see ExampleWriter.anchors
        examples += writer.anchors(examples)
    examples, dropped = decontaminate(domain, diagnosis.commit, examples)
    rel = f"patches/{diagnosis.commit[:10]}-{_short_slug(patched[0].node)}.yaml"
    bench = {i["id"]: i for i in shards_for(domain, diagnosis.commit).records("bench")}
    flips = sorted({i for f in patched for i in f.items})
    content = _render(diagnosis, patched, examples, flips)
    return PatchResult(diagnosis, "", rel, content, patched, skipped, len(examples),
                       [bench[i] for i in flips if i in bench], dropped_leaks=dropped)


def patch_files(domain: Domain, result: PatchResult, train_mode: str | None = None) -> dict[str, bytes]:
    """The files a patch commit writes (relative to the KB root): the patch file and, when
    `train_mode` differs from the base commit's, pwd.yaml with `train.mode` set to it."""
    commit = result.diagnosis.commit
    files = {result.path: result.content.encode()}
    if train_mode and train_mode != (at(domain, commit).config.get("train") or {}).get("mode", "scratch"):
        files["pwd.yaml"] = with_train_settings(domain, commit, {"mode": train_mode})
    return files


def decontaminate(domain: Domain, commit: str, examples: list[dict]) -> tuple[list[dict], list[str]]:
    """Drop any example that would leak into the benchmark (build would refuse it anyway)."""
    bench = shards_for(domain, commit).records("bench")
    records = [{"id": content_id(ex), "source": "patch", "messages": ex["messages"], "traces": ex["traces"]}
               for ex in examples]
    leaking = {leak.train_id for leak in find_leaks(bench, records, limit=len(records) + 1)}
    kept = [ex for ex, rec in zip(examples, records, strict=True) if rec["id"] not in leaking]
    return kept, sorted(leaking)


def _branch_name(commit: str, patched: list[Finding]) -> str:
    more = f"-and-{len(patched) - 1}-more" if len(patched) > 1 else ""
    return f"{PATCH_BRANCH_PREFIX}{commit[:10]}-{_short_slug(patched[0].node)}{more}"


def _short_slug(node: str, limit: int = 32) -> str:
    """The node id's slug cut to `limit` characters at a word boundary ("test-build-essential",
    never "...-patch-sect"): branch and file names people read and paste."""
    text = slug(node)
    if len(text) <= limit:
        return text
    cut = text[:limit + 1].rsplit("-", 1)[0]
    return cut if len(cut) >= limit // 2 else text[:limit]


def _render(diagnosis: Diagnosis, patched: list[Finding], examples: list[dict], targets: list[str]) -> str:
    header = (f"# Data patch written by `git pwd patch` for {diagnosis.commit[:10]} (run {diagnosis.run_key}).\n"
              "# Generated from KB nodes only, never from benchmark items. Edit or delete freely.\n"
              "# targets: the failed benchmark items it was written to fix (ids only; `git pwd test` counts them).\n")
    doc = {"description": "Targeted examples for: " + ", ".join(f"{f.kind} {f.node}" for f in patched),
           "generated_by": "git pwd patch", "targets": targets, "examples": examples}
    return header + yaml.dump(doc, Dumper=PlainDumper, sort_keys=False, allow_unicode=True, width=100)


class PlainDumper(yaml.SafeDumper):
    """No anchors/aliases: KB files forbid them (shared dicts are written out in full)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def with_train_settings(domain: Domain, commit: str, settings: dict) -> bytes:
    """REV's pwd.yaml with `train` fields set, comments and layout kept (ruamel round trip)."""
    import io

    from ruamel.yaml import YAML

    prefix = f"{domain.prefix}/" if domain.prefix else ""
    text = domain.repo.git("show", f"{commit}:{prefix}pwd.yaml")
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 1 << 16  # never re-wrap the user's long lines (ruamel's default folds at 80 columns)
    config = rt.load(text)
    if config.get("train") is None:
        config["train"] = {}
    config["train"].update(settings)
    out = io.StringIO()
    rt.dump(config, out)
    return out.getvalue().encode()


def patch_message(base: str, patched: list[Finding]) -> tuple[str, str]:
    """(subject, body) of a patch commit: the nodes patched, with their locations."""
    subject = f"pwd patch: {len(patched)} node(s) from the diagnosis of {base[:10]}"
    return subject, "\n".join(f"- {f.kind} {f.node_kind} {f.node} ({f.location})" for f in patched)


def commit_on_branch(domain: Domain, base: str, files: dict[str, bytes], branch: str, subject: str, body: str, *,
                     removed: tuple[str, ...] = (), rebuild_shards: bool = True) -> str:
    """`commit_files` on a new branch (an existing one is refused, never moved)."""
    commit = commit_files(domain, base, files, subject, body, removed=removed, rebuild_shards=rebuild_shards)
    create_branch(domain.repo, branch, commit)
    return commit


def commit_files(domain: Domain, base: str, files: dict[str, bytes], subject: str, body: str, *,
                 removed: tuple[str, ...] = (), rebuild_shards: bool = True) -> str:
    """A commit on `base` with `files` written and `removed` deleted (paths relative to the KB
    root) and, with `rebuild_shards`, shards/ rebuilt for the new KB; no ref points at it yet.
    Made with plumbing in a temporary index, so the checkout, index and uncommitted work stay
    as they are."""
    prefix = f"{domain.prefix}/" if domain.prefix else ""
    with TempIndex(domain.repo, base) as index:
        for rel in removed:
            index.remove_tree(prefix + rel)
        index.add_blobs({prefix + rel: data for rel, data in files.items()})
        if rebuild_shards:
            kb_only = index.commit(base, subject)  # a dangling commit: the new KB, old shards
            built = build(domain, kb_only, to_worktree=False)
            index.remove_tree(prefix + SHARDS_DIR)
            shard_files = {f"{prefix}{SHARDS_DIR}/{p.relative_to(built.path).as_posix()}": p.read_bytes()
                           for p in sorted(built.path.rglob("*")) if p.is_file()}
            assert f"{prefix}{SHARDS_DIR}/{MANIFEST}" in shard_files
            index.add_blobs(shard_files)
        return index.commit(base, f"{subject}\n\n{body}\n")

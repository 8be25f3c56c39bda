"""`extract` as a library call: corpus at a commit -> candidates per document (cached) -> merged
concept files -> one commit on `pwd/extract/...`, made beside the user's checkout.

A document's candidates are cached under .git/pwd/extract/docs by (its sha256, the backend's
key), so a re-run reads every document but extracts only new or changed ones; the merge over
all documents is deterministic, so an unchanged corpus writes byte-identical files (and then
no commit at all). The entry also maps each chunk's content hash to its candidates, so a
changed document re-extracts only the chunks whose text changed (a one-line edit in a 100 MB
document: one or two chunks).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pwd_git.errors import DataError, PwdError, quote
from pwd_git.extract import patterns
from pwd_git.extract.candidates import DocCache, extract_documents
from pwd_git.extract.chunks import CHUNKING_VERSION
from pwd_git.extract.corpus import Document, list_sources, named, read_documents
from pwd_git.extract.manifest import MANIFEST, read_manifest
from pwd_git.extract.merge import Plan, plan
from pwd_git.extract.settings import ExtractSettings
from pwd_git.git import branch_exists, check_branch_name, object_ids, uncommitted
from pwd_git.kb.loader import Domain, revision_records

BACKENDS = ("patterns", "llm")


@dataclass
class DocReport:
    path: str
    status: str  # extracted (new or changed since extract.lock.json) | unchanged | skipped | kept | not-named
    reason: str | None = None
    chunks: int = 0
    candidates: int = 0

    def as_dict(self) -> dict:
        return {"doc": self.path, "status": self.status, "reason": self.reason, "chunks": self.chunks,
                "candidates": self.candidates}


@dataclass
class ExtractResult:
    base: str
    backend: str
    documents: list[DocReport]
    plan: Plan
    branch: str | None = None
    commit: str | None = None
    existing_branch: bool = False  # the same extraction is already on `branch`
    uncommitted: list[str] = field(default_factory=list)
    manifest_changed: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.plan.files or self.plan.removed or self.manifest_changed)

    @property
    def yields_nothing(self) -> bool:
        """A change whose commit would hold extract.lock.json and nothing else (no concept file added,
        changed, removed, or kept for a chain that steps through it): never committed."""
        return self.changed and not (self.plan.files or self.plan.removed or self.plan.kept)

    @property
    def found_nothing(self) -> bool:
        """No document gave a single node: no concept, proposal or statement the KB already has,
        nothing kept from an earlier extraction."""
        p = self.plan
        return not (p.concepts or p.proposals or p.known or p.kept)

    def nothing(self) -> str:
        """What an extraction that found nothing says of its documents."""
        skipped = sum(d.status == "skipped" for d in self.documents)
        return (f"the corpus at {self.base[:10]} yields no concept or statement ({len(self.documents)} document(s)"
                + (f", {skipped} skipped" if skipped else "")
                + (f"; {len(self.plan.dropped)} candidate(s) dropped" if self.plan.dropped else "") + ")")

    def drop_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(d.reason for d in self.plan.dropped).items()))

    def as_dict(self) -> dict:
        p = self.plan
        return {
            "base": self.base, "backend": self.backend, "branch": self.branch, "commit": self.commit,
            "changed": self.changed, "yields_nothing": self.yields_nothing, "existing_branch": self.existing_branch,
            "documents": [d.as_dict() for d in self.documents], "uncommitted": self.uncommitted,
            "files": {"added_or_changed": sorted(p.files), "removed": p.removed, "unchanged": p.unchanged,
                      "kept": p.kept, "released": p.released},
            "concepts": p.concepts, "statements": p.statements, "chains": p.chains, "known": p.known,
            "dropped": [d.as_dict() for d in p.dropped], "dropped_counts": self.drop_counts(),
            "proposals": [x.as_dict() for x in p.proposals],
        }


def extract(domain: Domain, paths: tuple[str, ...] = (), *, rev: str = "HEAD", branch: str | None = None,
            dry_run: bool = False, log: Callable[[str], None] = lambda _m: None) -> ExtractResult:
    """Extract the corpus committed at `rev` into concept files, committed on a new branch
    (nothing written with `dry_run`, nor when the KB already holds exactly this extraction, nor
    when only extract.lock.json would change: then a DataError if no document gave a single
    candidate). A named path that is not in the commit is a PwdError naming it."""
    if branch is not None:
        check_branch_name(domain.repo, branch)
    if not domain.repo.has_commits():
        raise PwdError("no commits yet: extract reads the corpus and the KB from a commit",
                       hint="commit pwd.yaml and corpus/ first (`git add -A && git commit`)")
    base = domain.repo.resolve(rev)
    records = revision_records(domain, base)
    from pwd_git.kb.assemble import assemble

    kb, diags = assemble(records)
    config_errors = [d for d in diags if d.path == "pwd.yaml" and d.severity == "error"]
    if config_errors:
        d = config_errors[0]
        raise DataError(d.message, location=f"pwd.yaml:{d.line}", hint="fix pwd.yaml (`git pwd validate`) and commit it")
    settings = ExtractSettings.from_config(kb.config)
    if settings.backend not in BACKENDS:
        raise PwdError(f"extract.backend {quote(settings.backend)} is not available", hint="use patterns or llm")
    prefix = f"{domain.prefix}/" if domain.prefix else ""
    sources = list_sources(domain, base, settings.corpus)
    chosen = named(sources, settings.corpus, paths)
    not_in_commit = uncommitted(domain.repo, [prefix + root for root in settings.corpus])
    for path in (p.strip("/") for p in paths):
        if not any(s.path == path or s.path.startswith(path + "/") for s in sources):
            pending = any(u[len(prefix):] == path or u[len(prefix):].startswith(path + "/") for u in not_in_commit)
            raise PwdError(f"{quote(path)} is not in the corpus at {base[:10]}" + (" (not committed yet)" if pending else ""),
                           hint="extract reads documents from a commit: `git add` and commit them first" if pending
                           else "name a document or folder committed under the corpus")
    if not sources:
        where = ", ".join(f"{root}/" for root in settings.corpus)
        raise DataError(f"the corpus is empty: {rev} has no documents in {where}" + (
            f" ({len(not_in_commit)} not committed yet)" if not_in_commit else ""),
            hint="add txt, md, html or pdf files there and commit them (or set extract.corpus in pwd.yaml)")
    log(f"reading {len(sources)} corpus file(s) at {base[:10]}")
    docs = read_documents(domain, sources, int(settings.max_document_mb * 1e6))
    manifest_raw = _read_at(domain, base, MANIFEST)
    manifest = read_manifest(manifest_raw)
    cache = DocCache(domain.repo.pwd_dir() / "extract" / "docs")
    client = None
    if settings.backend == "llm":
        from pwd_git.extract import llm

        client = llm.Client(llm.LlmSettings(settings.llm), domain.repo.pwd_dir() / "extract" / "llm", settings.predicates)
        key = settings.backend_key({"prompt": llm.PROMPT_VERSION, "chunking": CHUNKING_VERSION, **client.s.key_parts()})
    else:
        key = settings.backend_key({"patterns": patterns.VERSION, "chunking": CHUNKING_VERSION})
    results, reports, documents = [], [], {}
    fresh: list[tuple[Document, int, dict | None]] = []  # to extract now: (doc, index in results, its last result)
    for doc in docs:
        before = manifest["documents"].get(doc.path)
        before = before if isinstance(before, dict) and isinstance(before.get("sha256"), str) else None
        old = cache.get(key, before["sha256"]) if before else None
        if doc.path not in chosen and (before is None or before["sha256"] != doc.sha256):
            # not named: stays as last extracted (when that is known), else is left for a later run
            if old is None:
                reports.append(DocReport(doc.path, "not-named", "not named on the command line; not extracted yet"))
                continue
            results.append(_candidates(old, doc.path))
            reports.append(DocReport(doc.path, "kept", "not named: its last extraction stays", old["chunks"],
                                     _count(old)))
            documents[doc.path] = before
            continue
        if doc.skipped:
            reports.append(DocReport(doc.path, "skipped", doc.reason))
            documents[doc.path] = {"status": "skipped", "reason": doc.reason}
            continue
        result = old if before and before["sha256"] == doc.sha256 and old is not None else cache.get(key, doc.sha256)
        if result is None:
            fresh.append((doc, len(results), old))
            result = {"chunks": 0, "concepts": [], "aliases": [], "statements": [], "dropped": []}
        # the status is against the lock (what the KB was extracted from), not the cache: a
        # document first read by a --dry-run is served from the cache, and is still new here
        status = "unchanged" if before and before["sha256"] == doc.sha256 else "extracted"
        reports.append(DocReport(doc.path, status, None, result["chunks"], _count(result)))
        results.append(_candidates(result, doc.path))
        documents[doc.path] = {"status": "extracted", "sha256": doc.sha256, "chunks": result["chunks"]}
    if fresh:
        log(f"extracting {len(fresh)} document(s) with {settings.backend}")
        done = extract_documents([doc for doc, _, _ in fresh], settings, client, [old for _, _, old in fresh])
        for (doc, at, _), result in zip(fresh, done, strict=True):
            cache.put(key, doc.sha256, result)
            results[at] = _candidates(result, doc.path)
            documents[doc.path]["chunks"] = result["chunks"]
            report = next(r for r in reports if r.path == doc.path)
            report.chunks, report.candidates = result["chunks"], _count(result)
    manifest_raw = _read_at(domain, base, MANIFEST)
    the_plan = plan(kb, manifest, results, settings.functional, documents, settings.chains)
    the_plan.dropped = [d for r in results for d in _drops(r)] + the_plan.dropped
    out = ExtractResult(base, settings.backend, reports, the_plan,
                        uncommitted=[p[len(prefix):] for p in not_in_commit])
    out.manifest_changed = (manifest_raw or b"") != the_plan.manifest
    if not out.changed:
        return out
    if out.yields_nothing:  # never a branch holding only the lock file
        if out.found_nothing and not (dry_run or the_plan.dropped):  # (dropped candidates are the report: exit 0)
            shapes = "; the patterns backend reads only the sentence shapes docs/extract.md lists" if \
                settings.backend == "patterns" else ""
            raise DataError(f"nothing to extract: {out.nothing()}",
                            hint=f"`git pwd extract --dry-run` lists each document and why it gave nothing{shapes}")
        return out
    files = {**the_plan.files, MANIFEST: the_plan.manifest}
    _check_valid(records, files, the_plan)
    digest = hashlib.sha256(json.dumps({"base": base, "files": {p: hashlib.sha256(d).hexdigest() for p, d in files.items()},
                                        "removed": the_plan.removed}, sort_keys=True).encode()).hexdigest()
    out.branch = branch or f"pwd/extract/{base[:10]}-{digest[:8]}"
    if branch is None and branch_exists(domain.repo, out.branch):
        out.existing_branch = True
        out.commit = domain.repo.resolve(f"refs/heads/{out.branch}")
        return out
    if dry_run:
        return out
    if branch_exists(domain.repo, out.branch):
        raise DataError(f"branch {quote(out.branch)} already exists", hint="pass --branch NEW-NAME, or delete the old branch")
    from pwd_git.gitconfig import configure_lock_merge_driver
    from pwd_git.repair.patch import commit_on_branch

    configure_lock_merge_driver(domain.repo)  # the branch is merged later, maybe next to another extraction

    shards = object_ids(domain.repo, [f"{base}:{prefix}shards/MANIFEST.json"])[0] is not None
    log("committing" + (" (rebuilding shards/)" if shards else ""))
    out.commit = commit_on_branch(domain, base, files, out.branch, _subject(out), _body(out),
                                  removed=tuple(the_plan.removed), rebuild_shards=shards)
    return out


def _candidates(result: dict, doc: str) -> dict:
    """A cached result as the merge reads it: without its per-chunk map."""
    return {**{k: v for k, v in result.items() if k != "by_chunk"}, "doc": doc}


def _count(result: dict) -> int:
    return sum(len(result[k]) for k in ("concepts", "aliases", "statements"))


def _drops(result: dict):
    from pwd_git.extract.merge import Drop

    for d in result.get("dropped", []):
        where = f"line {d['line']}: " if "line" in d else ""  # the chunk's first line
        yield Drop(d["reason"], result["doc"], where + d["detail"], d.get("quote", ""))


def _read_at(domain: Domain, commit: str, rel: str) -> bytes | None:
    prefix = f"{domain.prefix}/" if domain.prefix else ""
    oid = object_ids(domain.repo, [f"{commit}:{prefix}{rel}"])[0]
    return dict(domain.repo.read_blobs([oid]))[oid] if oid else None


def _check_valid(records: dict, files: dict[str, bytes], the_plan: Plan) -> None:
    """The new KB must validate wherever extraction wrote: a guard, never reached by design."""
    from pwd_git.git import hash_blob
    from pwd_git.kb.assemble import assemble
    from pwd_git.kb.parse import classify, parse

    new = {p: r for p, r in records.items() if p not in the_plan.removed}
    for path, data in files.items():
        kind = classify(path)
        if kind:
            new[path] = (hash_blob(data), parse(kind, data))
    _, diags = assemble(new)
    bad = [d for d in diags if d.severity == "error" and d.path in files]
    if bad:
        d = bad[0]
        raise DataError(f"extraction would write an invalid KB: {d.message}", location=f"{d.path}:{d.line}",
                        hint="this is a bug in pwd-git; please report it with the document that caused it")


def _subject(out: ExtractResult) -> str:
    p = out.plan
    return (f"pwd extract: {len(p.concepts)} concept(s), {len(p.statements)} statement(s), {len(p.chains)} chain(s) from "
            f"{sum(d.status != 'skipped' for d in out.documents)} document(s)")


def _body(out: ExtractResult) -> str:
    p = out.plan
    lines = [f"Extracted with the {out.backend} backend from the corpus at {out.base[:10]}.", ""]
    lines += [f"- {d.path}: " + (f"skipped ({d.reason})" if d.reason else f"{d.candidates} candidate(s)")
              for d in out.documents]
    counts = out.drop_counts()
    if counts:
        lines += ["", "Dropped: " + ", ".join(f"{k} {v}" for k, v in counts.items())]
    if p.proposals:
        lines += ["", f"Proposed for files a person owns (not written): {len(p.proposals)}"]
    return "\n".join(lines)


MAX_BODY_LINES = 60


def pr_body(out: ExtractResult) -> str:
    """The pull request's body: what was extracted, from which documents, what was dropped and
    proposed, and what the reviewer should check."""
    p = out.plan
    lines = [f"Extraction by `git pwd extract` ({out.backend} backend) from the corpus at `{out.base[:10]}`.", "",
             f"**{len(p.concepts)} concept(s), {len(p.statements)} statement(s), {len(p.chains)} chain(s)**; "
             f"{len(p.dropped)} candidate(s) dropped, {len(p.proposals)} proposed for files a person owns.", "",
             "### Documents", "", "| document | status | candidates |", "|---|---|---|"]
    lines += [f"| `{d.path}` | {d.status}{': ' + d.reason if d.reason else ''} | {d.candidates} |" for d in out.documents]
    lines += ["", "### Files", ""]
    lines += [f"- {'changed' if f in p.modified else 'added'} `{f}`" for f in sorted(p.files)]
    lines += [f"- removed `{f}` (its documents are gone)" for f in p.removed]
    lines += [f"- kept `{f}`: {why}" for f, why in sorted(p.kept.items())]
    if p.dropped:
        lines += ["", "### Dropped", "", ", ".join(f"{k}: {v}" for k, v in out.drop_counts().items()), ""]
        lines += [f"- `{d.doc}` {d.reason}: {d.detail}" + (f" — \"{d.quote[:120]}\"" if d.quote else "")
                  for d in p.dropped[:MAX_BODY_LINES]]
        if len(p.dropped) > MAX_BODY_LINES:
            lines.append(f"- ... and {len(p.dropped) - MAX_BODY_LINES} more (`git pwd extract --dry-run --format json`)")
    if p.proposals:
        lines += ["", "### Proposed (not written: these files belong to a person)", ""]
        lines += [f"- `{x.path}` {x.node}: {x.change} — \"{x.quote[:120]}\" (`{x.doc}`)" for x in p.proposals[:MAX_BODY_LINES]]
    lines += ["", "Every node carries `source: {doc, quote}`; each quote was checked to occur verbatim (whitespace "
              "normalised) in its document. Files recorded in `extract.lock.json` are extraction's until edited; "
              "edit any of them freely before merging."]
    return "\n".join(lines) + "\n"


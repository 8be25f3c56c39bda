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

import bisect
import hashlib
import json
import os
import re
import sys
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pwd_git.errors import DataError, PwdError, quote
from pwd_git.extract import patterns
from pwd_git.extract.chunks import CHUNKING_VERSION, normalise_ws
from pwd_git.extract.corpus import Document, list_sources, named, read_documents
from pwd_git.extract.merge import MANIFEST, Plan, plan, read_manifest
from pwd_git.extract.settings import ExtractSettings
from pwd_git.git import branch_exists, check_branch_name, object_ids, uncommitted
from pwd_git.kb.loader import Domain, revision_records

BACKENDS = ("patterns", "llm")


@dataclass
class DocReport:
    path: str
    status: str  # extracted | unchanged | skipped
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

    def drop_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(d.reason for d in self.plan.dropped).items()))

    def as_dict(self) -> dict:
        p = self.plan
        return {
            "base": self.base, "backend": self.backend, "branch": self.branch, "commit": self.commit,
            "changed": self.changed, "existing_branch": self.existing_branch,
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
    (nothing written with `dry_run`, nor when the KB already holds exactly this extraction)."""
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
        reports.append(DocReport(doc.path, "unchanged", None, result["chunks"], _count(result)))
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
            report.status, report.chunks, report.candidates = "extracted", result["chunks"], _count(result)
    manifest_raw = _read_at(domain, base, MANIFEST)
    the_plan = plan(kb, manifest, results, settings.functional, documents, settings.chains)
    the_plan.dropped = [d for r in results for d in _drops(r)] + the_plan.dropped
    out = ExtractResult(base, settings.backend, reports, the_plan,
                        uncommitted=[p[len(prefix):] for p in not_in_commit])
    out.manifest_changed = (manifest_raw or b"") != the_plan.manifest
    if not out.changed:
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
    from pwd_git.repair.patch import commit_on_branch

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


BATCH_CHUNKS = 256  # chunks in hand at once for the llm backend (its requests in flight come from them)
KINDS = ("concepts", "aliases", "statements", "dropped")


def extract_documents(docs: list[Document], settings: ExtractSettings, client=None,
                      previous: list[dict | None] | None = None) -> list[dict]:
    """Each document's candidates, chunk by chunk as its text streams in, each quote checked
    against its chunk and given its line in the document (`line`); the candidates whose quote is
    not there are dropped and recorded (`dropped`). A chunk whose content hash is in the document's
    `previous` result (`by_chunk`, a ChunkMemo) is taken from there, not extracted again. With the llm `client`,
    the chunks of all documents share its request pool, BATCH_CHUNKS at a time."""
    from pwd_git.extract.chunks import stream_chunks
    from pwd_git.extract.corpus import STRUCTURED

    out = [{"chunks": 0, **{k: [] for k in KINDS}} for _ in docs]
    memos = [ChunkMemo((p or {}).get("by_chunk")) for p in (previous or [None] * len(docs))]
    seen = [ChunkMemo() for _ in docs]
    for doc, result in zip(docs, out, strict=True):
        if doc.kind in STRUCTURED:
            from pwd_git.extract.structured import candidates as rows

            part = _new_part()
            keep_verified(rows(doc.kind, doc.text or ""), doc.text or "", part, by_line=True)
            _add(result, part, 1)
            result["chunks"] = 1
    chunks = ((i, ch) for i, doc in enumerate(docs) if doc.kind not in STRUCTURED
              for ch in stream_chunks(doc.texts(), settings.chunk_chars))
    for batch in _batches(chunks, BATCH_CHUNKS if client else 1):
        todo = [(ch.hash, ch.text) for i, ch in batch if memos[i].get(ch.hash) is None]
        answers = client.answers(todo) if client and todo else {}
        for i, ch in batch:
            part = memos[i].get(ch.hash)
            if part is None:
                part = _chunk_part(ch, settings, answers.get(ch.hash), client is not None)
            seen[i].put(ch.hash, part)
            _add(out[i], part, ch.line)
            out[i]["chunks"] += 1
    for result, memo in zip(out, seen, strict=True):
        result["by_chunk"] = memo.as_json()
    return out


class ChunkMemo:
    """What each chunk of a document gave, by its content hash: the candidates of the few chunks
    that have any, and the many that have none as 64-bit hash prefixes, 8 bytes each (a 100 MB
    document has 25k chunks of 4000 characters), so the map stays small beside the text."""

    def __init__(self, data: dict | None = None):
        data = data or {}
        self.parts: dict[str, dict] = data.get("parts", {})
        self.empty = array("Q", bytes.fromhex(data.get("empty", "")))  # sorted, big-endian
        if sys.byteorder == "little":
            self.empty.byteswap()

    def get(self, chunk_hash: str) -> dict | None:
        if chunk_hash in self.parts:
            return self.parts[chunk_hash]
        key = int(chunk_hash[:16], 16)
        at = bisect.bisect_left(self.empty, key)
        return {} if at < len(self.empty) and self.empty[at] == key else None

    def put(self, chunk_hash: str, part: dict) -> None:
        if part:
            self.parts[chunk_hash] = part
        else:
            self.empty.append(int(chunk_hash[:16], 16))

    def as_json(self) -> dict:
        empty = array("Q", sorted(self.empty))
        if sys.byteorder == "little":
            empty.byteswap()
        return {"parts": self.parts, "empty": empty.tobytes().hex()}

    @staticmethod
    def valid(data: object) -> bool:
        return isinstance(data, dict) and isinstance(data.get("parts"), dict) and all(
            isinstance(p, dict) and all(k in KINDS and isinstance(v, list) for k, v in p.items())
            for p in data["parts"].values()) and isinstance(data.get("empty"), str) and len(data["empty"]) % 16 == 0 \
            and all(c in "0123456789abcdef" for c in data["empty"])


def _new_part() -> dict:
    return {k: [] for k in KINDS}


def _chunk_part(ch, settings: ExtractSettings, answer: str | None, llm: bool) -> dict:
    """One chunk's verified candidates, lines counted from the chunk's first (0); only the
    kinds it has (most chunks of a large document have none)."""
    part = _new_part()
    if not llm:
        keep_verified(patterns.extract_chunk(ch, settings.predicates), ch.text, part)
    else:
        from pwd_git.extract.llm import candidates, parse_problem

        found = candidates(answer or "")
        if found is None:
            part["dropped"].append({"reason": "schema", "detail": f"the answer is not valid: {parse_problem(answer or '')}",
                                    "quote": "", "line": 0})
        else:
            keep_verified(found, ch.text, part)
    return {k: v for k, v in part.items() if v}


def _add(result: dict, part: dict, first_line: int) -> None:
    """A chunk's candidates into its document's result, their lines made the document's."""
    for kind in KINDS:
        result[kind].extend({**c, "line": first_line + c["line"]} if "line" in c else c for c in part.get(kind, ()))


def _batches(items, size: int):
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def keep_verified(found: dict[str, list[dict]], chunk_text: str, result: dict, *, by_line: bool = False) -> None:
    """Move each candidate whose quote occurs verbatim (whitespace-normalised) in the chunk into
    `result`, with `line`: the chunk's line (from 0) where the quote begins; the others go to
    `result["dropped"]` as quote-not-found. `by_line`: a quote must be a whole line (a table
    row), looked up in a dict, so a 100k-row table is not searched 100k times."""
    rows: dict[str, int] = {}
    if by_line:
        for n, row in enumerate(chunk_text.splitlines()):
            rows.setdefault(normalise_ws(row), n)
    haystack = "" if by_line else normalise_ws(chunk_text)
    for kind in ("concepts", "aliases", "statements"):
        for cand in found.get(kind, []):
            q = normalise_ws(str(cand.get("quote") or ""))
            line = rows.get(q) if by_line else (_line_of(q, chunk_text) if q and q in haystack else None)
            if q and line is not None:
                result[kind].append({**cand, "quote": q, "line": line})
            else:
                what = cand.get("term") or cand.get("subject") or "?"
                drop = {"reason": "quote-not-found", "detail": f"{kind[:-1]} {str(what)[:80]!r}", "quote": q[:200]}
                result["dropped"].append(drop if by_line else {**drop, "line": 0})


def _line_of(quote: str, text: str) -> int:
    """The line (from 0) of `text` on which the whitespace-normalised `quote` begins."""
    found = re.search(r"\s+".join(map(re.escape, quote.split(" "))), text)
    return text.count("\n", 0, found.start()) if found else 0


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


class DocCache:
    """Per-document candidates as JSON files, written atomically; unreadable entries are misses."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, key: str, sha256: str) -> Path:
        return self.folder / f"{key}-{sha256[:40]}.json"

    def get(self, key: str, sha256: str) -> dict | None:
        try:
            data = json.loads(self._path(key, sha256).read_text())
        except (OSError, ValueError):
            return None
        ok = isinstance(data, dict) and all(isinstance(data.get(k), list) for k in ("concepts", "aliases", "statements",
                                                                                    "dropped"))
        if not ok or not isinstance(data.get("chunks"), int):
            return None
        if not ChunkMemo.valid(data.get("by_chunk")):
            data.pop("by_chunk", None)  # (an older entry) no chunk is reused from it
        return data

    def put(self, key: str, sha256: str, result: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            json.dump(result, fh, sort_keys=True)
        os.replace(tmp, self._path(key, sha256))

"""A document's candidates: extracted chunk by chunk as its text streams in, each quote checked
against its chunk (`keep_verified`), and remembered per chunk (`ChunkMemo`) and per document
(`DocCache`, .git/pwd/extract/docs), so a re-run extracts only what changed. extract/run.py
decides which documents to extract and turns the candidates into a branch.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import sys
import tempfile
from array import array
from pathlib import Path

from pwd_git.extract import patterns
from pwd_git.extract.chunks import line_ends, normalise_ws
from pwd_git.extract.corpus import Document
from pwd_git.extract.settings import ExtractSettings

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
    `result["dropped"]` as quote-not-found. `by_line`: a quote is a table row, whole lines (more
    than one where a quoted field holds a line break), found by its first line in a dict, so a
    100k-row table is not searched 100k times."""
    rows: dict[str, int] = {}
    lines = _LINE_BREAK.split(chunk_text) if by_line else []
    for n, row in enumerate(lines):
        rows.setdefault(normalise_ws(row), n)
    haystack = "" if by_line else normalise_ws(chunk_text)
    for kind in ("concepts", "aliases", "statements"):
        for cand in found.get(kind, []):
            raw = str(cand.get("quote") or "")
            q = normalise_ws(raw)
            line = _row_line(raw, q, rows, lines) if by_line else (_line_of(q, chunk_text) if q and q in haystack else None)
            if q and line is not None:
                result[kind].append({**cand, "quote": q, "line": line})
            else:
                what = cand.get("term") or cand.get("subject") or "?"
                drop = {"reason": "quote-not-found", "detail": f"{kind[:-1]} {str(what)[:80]!r}", "quote": q[:200]}
                result["dropped"].append(drop if by_line else {**drop, "line": 0})


_LINE_BREAK = re.compile(r"\r\n?|\n")  # where a table's lines end, as csv reads them (not at U+2028 or a form feed)


def _row_line(raw: str, quote: str, rows: dict[str, int], lines: list[str]) -> int | None:
    """The line (from 0) where the table row `raw` begins, if its lines are the document's there."""
    parts = _LINE_BREAK.split(raw)
    n = rows.get(normalise_ws(parts[0]))
    if n is None or not quote:
        return None
    return n if len(parts) == 1 or normalise_ws(" ".join(lines[n:n + len(parts)])) == quote else None


def _line_of(quote: str, text: str) -> int:
    """The line (from 0) of `text` on which the whitespace-normalised `quote` begins."""
    found = re.search(r"\s+".join(map(re.escape, quote.split(" "))), text)
    return line_ends(text, 0, found.start()) if found else 0


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
        ok = isinstance(data, dict) and all(isinstance(data.get(k), list) for k in KINDS)
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

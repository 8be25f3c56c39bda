"""The corpus: documents under `corpus/` (pwd.yaml `extract.corpus`) as committed at a revision,
and their text.

Documents are read from the commit the extraction starts from, like the KB, so what the
branch cites is what the branch holds; the working tree is only consulted for a Git LFS
pointer, whose object must then match the pointer's sha256. A document that cannot be read
(binary, not UTF-8, a PDF without a text layer, too large) is skipped with a reason, never
guessed at.

Text and Markdown larger than STREAM_BYTES are never held whole: they are read from git (or the
LFS object) piece by piece, once to check and hash them, and again, only when they must be
extracted, through the streaming chunker (chunks.py). Formats that must be parsed whole (HTML, PDF, RDF,
CSV/TSV) are loaded whole, up to extract.max_document_mb.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath

from pwd_git.errors import DataError, PwdError, quote
from pwd_git.git import blob_sizes
from pwd_git.kb.loader import Domain

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html",
                 ".htm": "html", ".pdf": "pdf", ".csv": "csv", ".tsv": "tsv", ".ttl": "rdf", ".nt": "rdf",
                 ".jsonld": "rdf", ".rdf": "rdf"}
STRUCTURED = ("csv", "tsv", "rdf")  # imported by rules (structured.py), not by the backend
LFS_HEADER = b"version https://git-lfs.github.com/spec/v1\n"
STREAMED = ("text", "markdown")  # kinds read piece by piece, whatever their size
STREAM_BYTES = 1 << 20  # a text or Markdown document larger than this is streamed, never held whole
PIECE_BYTES = 1 << 18  # how much of a streamed document is read at a time


@dataclass(frozen=True)
class Source:
    """One corpus file at the revision: where it is and which blob holds it."""

    path: str  # relative to the domain root, '/'-separated
    oid: str
    mode: str


@dataclass
class Document:
    path: str
    sha256: str  # of the bytes read (the LFS object, for a pointer)
    text: str | None  # the whole text; None: skipped, or streamed
    reason: str | None = None  # why it was skipped
    open: Callable[[], Generator[bytes, None, None]] | None = None  # a streamed document's bytes, piece by piece

    @property
    def kind(self) -> str:
        return TEXT_SUFFIXES.get(PurePosixPath(self.path).suffix.lower(), "")

    @property
    def skipped(self) -> bool:
        return self.text is None and self.open is None

    def texts(self) -> Iterator[str]:
        """The document's text in pieces: the whole of it at once, or, streamed, as read (and
        checked again to be the bytes that were hashed: an LFS object may change meanwhile)."""
        if self.open is None:
            if self.text is not None:
                yield self.text
            return
        digest = hashlib.sha256()
        raw = self.open()
        try:
            yield from _decode(_hashed(raw, digest))
        except _Unreadable as exc:
            raise DataError(f"{self.path} changed while it was being read: {exc}", hint="run extract again") from None
        finally:
            raw.close()
        if digest.hexdigest() != self.sha256:
            raise DataError(f"{self.path} changed while it was being read", hint="run extract again")


def list_sources(domain: Domain, commit: str, roots: tuple[str, ...]) -> list[Source]:
    """Every file under the corpus folders at `commit`, hidden ones left out, in path order."""
    prefix = f"{domain.prefix}/" if domain.prefix else ""
    found: dict[str, Source] = {}
    for root in roots:
        tree = domain.repo.tree_oid(commit, prefix + root.strip("/"))
        if tree is None:
            continue
        for entry in domain.repo.ls_tree(tree):
            rel = f"{root.strip('/')}/{entry.path}"
            if not any(part.startswith(".") for part in entry.path.split("/")):
                found[rel] = Source(rel, entry.oid, entry.mode)
    return [found[rel] for rel in sorted(found)]


def named(sources: list[Source], roots: tuple[str, ...], paths: tuple[str, ...]) -> set[str]:
    """The sources that `paths` (files or folders from the command line, relative to the domain
    root) name; all of them when none are given. A path outside the corpus is an error."""
    if not paths:
        return {s.path for s in sources}
    folders = [root.strip("/") for root in roots]
    wanted = [p.strip("/") for p in paths]
    for given, p in zip(paths, wanted, strict=True):
        if given.startswith("/") or not any(p == f or p.startswith(f + "/") or f.startswith(p + "/") for f in folders):
            raise PwdError(f"{quote(given)} is not in the corpus ({', '.join(folders)})",
                           hint="give documents under the folders pwd.yaml's extract.corpus names, relative to the "
                                "domain root")
    return {s.path for s in sources if any(s.path == p or s.path.startswith(p + "/") for p in wanted)}


def read_documents(domain: Domain, sources: list[Source], max_bytes: int) -> list[Document]:
    """Each source's text (or the reason it has none). Sizes are checked before any blob is read;
    `max_bytes` bounds only the documents that must be loaded whole (not text or Markdown)."""
    sizes = blob_sizes(domain.repo, [s.oid for s in sources])
    docs: dict[str, Document] = {}
    readable = []
    for s in sources:
        size = sizes.get(s.oid, 0)
        if s.mode == "120000":
            docs[s.path] = Document(s.path, "", None, "a symbolic link: not followed (put the document itself there)")
        elif PurePosixPath(s.path).suffix.lower() not in TEXT_SUFFIXES:
            docs[s.path] = Document(s.path, "", None, "not a document type extract reads (txt, md, html, pdf, csv, "
                                                      "tsv, ttl, nt, jsonld, rdf)")
        elif TEXT_SUFFIXES[PurePosixPath(s.path).suffix.lower()] in STREAMED and size > STREAM_BYTES:
            docs[s.path] = streamed(s.path, lambda oid=s.oid: domain.repo.stream_blob(oid, PIECE_BYTES))
        elif size > max_bytes:
            docs[s.path] = Document(s.path, "", None, _too_large(size, max_bytes))
        else:
            readable.append(s)
    blobs = dict(domain.repo.read_blobs(sorted({s.oid for s in readable})))
    for s in readable:
        docs[s.path] = _read(domain, s.path, blobs[s.oid], max_bytes)
    return [docs[s.path] for s in sources]


def _too_large(size: int, max_bytes: int) -> str:
    return (f"{size / 1e6:.1f} MB is over extract.max_document_mb ({max_bytes / 1e6:g} MB), the limit for a format "
            "read whole; split it or raise the limit")


def _read(domain: Domain, path: str, raw: bytes, max_bytes: int) -> Document:
    """A document from its blob: a Git LFS pointer stands for the object in the working tree,
    when that is the one it names."""
    if not raw.startswith(LFS_HEADER) or len(raw) > 1024:
        text, why = document_text(path, raw)
        return Document(path, hashlib.sha256(raw).hexdigest(), text, why)
    fields = dict(line.split(" ", 1) for line in raw.decode(errors="replace").splitlines() if " " in line)
    want = fields.get("oid", "").removeprefix("sha256:")
    local = domain.root / path
    missing = Document(path, "", None, "a Git LFS pointer whose object is not in the working tree; run `git lfs pull`")
    try:
        if local.is_symlink() or not local.is_file():
            return missing
        size = local.stat().st_size
        if TEXT_SUFFIXES[PurePosixPath(path).suffix.lower()] in STREAMED and size > STREAM_BYTES:
            doc = streamed(path, lambda: _file_pieces(local))
            data = None
        elif size > max_bytes:
            return Document(path, "", None, _too_large(size, max_bytes))
        else:
            data = local.read_bytes()
    except OSError:
        return missing
    if data is not None:
        text, why = document_text(path, data)
        doc = Document(path, hashlib.sha256(data).hexdigest(), text, why)
    if not doc.skipped and doc.sha256 != want:
        return Document(path, "", None, "a Git LFS pointer, and the working-tree file is not the object it names; "
                                        "run `git lfs pull`")
    return doc


def _file_pieces(path) -> Generator[bytes, None, None]:
    with open(path, "rb") as fh:
        while piece := fh.read(PIECE_BYTES):
            yield piece


def streamed(path: str, open_: Callable[[], Generator[bytes, None, None]]) -> Document:
    """A text or Markdown document read piece by piece, never whole: hashed, and checked to be
    UTF-8 text, now; its text is read again (Document.texts) when it is extracted."""
    digest = hashlib.sha256()
    blank = True
    raw = open_()
    try:
        for text in _decode(_hashed(raw, digest)):
            blank = blank and text.isspace()
    except _Unreadable as exc:
        return Document(path, "", None, str(exc))
    finally:
        raw.close()
    if blank:
        return Document(path, "", None, "no text")
    return Document(path, digest.hexdigest(), None, None, open_)


def _hashed(pieces: Iterable[bytes], digest) -> Iterator[bytes]:
    for piece in pieces:
        digest.update(piece)
        yield piece


class _Unreadable(Exception):
    """The bytes are not text: the message says why."""


def _decode(pieces: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 text, piece by piece (a BOM dropped), or _Unreadable naming the first bad byte and
    its line, a UTF-16 or UTF-32 byte-order mark, or NUL bytes in the first 8 KiB (a binary file)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines, head, first, after_cr = 0, b"", True, False  # after_cr: the last piece ended with a CR (counted)
    for raw in _with_end(pieces):
        if raw is not None and len(head) < 8192:
            head += raw[:8192 - len(head)]
            if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                raise _Unreadable("UTF-16 or UTF-32 text (it opens with that byte-order mark); save it as UTF-8")
            if b"\0" in head:
                raise _Unreadable("binary content (NUL bytes) in a text document")
        try:
            text = decoder.decode(raw or b"", final=raw is None)
        except UnicodeDecodeError as exc:
            before = exc.object[:exc.start]
            line = lines + _line_ends(before) - (after_cr and before[:1] == b"\n") + 1
            raise _Unreadable(f"not UTF-8 (byte 0x{exc.object[exc.start]:02x} at line {line}); save it as UTF-8") from None
        if raw:
            lines += _line_ends(raw) - (after_cr and raw[:1] == b"\n")
            after_cr = raw.endswith(b"\r")
        if first and text:
            text, first = text.removeprefix("\ufeff"), False
        if text:
            yield text


def _line_ends(raw: bytes) -> int:
    """Lines ended in `raw`: at LF, CRLF or a lone CR (classic Mac OS files), as chunks.line_ends counts."""
    return raw.count(b"\n") + raw.count(b"\r") - raw.count(b"\r\n")


def _with_end(pieces: Iterable[bytes]) -> Iterator[bytes | None]:
    yield from pieces
    yield None


def document_text(path: str, raw: bytes) -> tuple[str | None, str | None]:
    """(text, None) or (None, why not): UTF-8 for txt/md/html, the text layer for PDF."""
    suffix = PurePosixPath(path).suffix.lower()
    kind = TEXT_SUFFIXES.get(suffix)
    if kind == "pdf":
        return _pdf_text(raw)
    if kind == "rdf":
        from pwd_git.extract.structured import RDF_SUFFIXES, rdf_text

        return rdf_text(raw, RDF_SUFFIXES[suffix])
    try:
        text = "".join(_decode([raw]))
    except _Unreadable as exc:
        return None, str(exc)
    if kind == "html":
        text = html_text(text)
    if not text.strip():
        return None, "no text"
    if kind in ("csv", "tsv"):
        from pwd_git.extract.structured import table_problem

        problem = table_problem(kind, text)
        if problem:
            return None, problem
    return text, None


def _pdf_text(raw: bytes) -> tuple[str | None, str | None]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            return None, "an encrypted PDF"
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        return None, f"not a readable PDF ({type(exc).__name__})"
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        return None, "a PDF with no text layer (scanned pages?); run OCR on it first (e.g. ocrmypdf)"
    return text, None


_BLOCK_TAGS = {"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "br", "tr", "table", "section",
               "article", "blockquote", "pre", "dd", "dt", "header", "footer", "main", "aside", "figure", "figcaption",
               "hr", "td", "th", "title"}
_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "head"}


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)

    def parse_marked_section(self, i: int, report: int = 1) -> int:
        """`<![` that opens no marked section (`a<![0]`, `<![foo[`), which HTMLParser refuses with an
        AssertionError, is a bogus comment up to the next `>`, as browsers read it."""
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            end = self.rawdata.find(">", i + 3)
            return end + 1 if end >= 0 else len(self.rawdata)


def html_text(markup: str) -> str:
    """The visible text of an HTML page, one block (paragraph, heading, list item) per paragraph."""
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    blocks = (" ".join(b.split()) for b in re.split(r"\n\s*\n", "".join(parser.parts)))
    return "\n\n".join(b for b in blocks if b)

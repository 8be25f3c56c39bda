"""The corpus: documents under `corpus/` (pwd.yaml `extract.corpus`) as committed at a revision,
their text, and their chunks.

Documents are read from the commit the extraction starts from, like the KB, so what the
branch cites is what the branch holds; the working tree is only consulted for a Git LFS
pointer, whose object must then match the pointer's sha256. A document that cannot be read
(binary, not UTF-8, a PDF without a text layer, too large) is skipped with a reason, never
guessed at.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath

from pwd_git.errors import PwdError, quote
from pwd_git.git import blob_sizes
from pwd_git.kb.loader import Domain

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html",
                 ".htm": "html", ".pdf": "pdf", ".csv": "csv", ".tsv": "tsv", ".ttl": "rdf", ".nt": "rdf",
                 ".jsonld": "rdf", ".rdf": "rdf"}
STRUCTURED = ("csv", "tsv", "rdf")  # imported by rules (structured.py), not by the backend
LFS_HEADER = b"version https://git-lfs.github.com/spec/v1\n"
CHUNKER_VERSION = "1"


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
    text: str | None  # None: skipped
    reason: str | None = None  # why it was skipped

    @property
    def kind(self) -> str:
        return TEXT_SUFFIXES.get(PurePosixPath(self.path).suffix.lower(), "")


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # offset of the chunk in the document's text
    text: str

    @property
    def hash(self) -> str:
        """Stable id of the chunk's content: the key of everything cached per chunk."""
        return hashlib.sha256(f"{CHUNKER_VERSION}\0{self.text}".encode()).hexdigest()[:32]


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
    for p in wanted:
        if not any(p == f or p.startswith(f + "/") or f.startswith(p + "/") for f in folders):
            raise PwdError(f"{quote(p)} is not in the corpus ({', '.join(folders)})",
                           hint="give documents under the folders pwd.yaml's extract.corpus names")
    return {s.path for s in sources if any(s.path == p or s.path.startswith(p + "/") for p in wanted)}


def read_documents(domain: Domain, sources: list[Source], max_bytes: int) -> list[Document]:
    """Each source's text (or the reason it has none). Sizes are checked before any blob is read."""
    sizes = blob_sizes(domain.repo, [s.oid for s in sources])
    docs: dict[str, Document] = {}
    readable = []
    for s in sources:
        if s.mode == "120000":
            docs[s.path] = Document(s.path, "", None, "a symbolic link: not followed (put the document itself there)")
        elif PurePosixPath(s.path).suffix.lower() not in TEXT_SUFFIXES:
            docs[s.path] = Document(s.path, "", None, "not a document type extract reads (txt, md, html, pdf, csv, "
                                                      "tsv, ttl, nt, jsonld, rdf)")
        elif sizes.get(s.oid, 0) > max_bytes:
            docs[s.path] = Document(s.path, "", None, f"{sizes[s.oid] / 1e6:.1f} MB is over extract.max_document_mb "
                                                      f"({max_bytes / 1e6:g} MB); split it or raise the limit")
        else:
            readable.append(s)
    blobs = dict(domain.repo.read_blobs(sorted({s.oid for s in readable})))
    for s in readable:
        raw, why = _resolve_lfs(domain, s.path, blobs[s.oid], max_bytes)
        if raw is None:
            docs[s.path] = Document(s.path, "", None, why)
            continue
        text, why = document_text(s.path, raw)
        docs[s.path] = Document(s.path, hashlib.sha256(raw).hexdigest(), text, why)
    return [docs[s.path] for s in sources]


def _resolve_lfs(domain: Domain, path: str, raw: bytes, max_bytes: int) -> tuple[bytes | None, str | None]:
    """A Git LFS pointer stands for the object in the working tree, when that is the one it names."""
    if not raw.startswith(LFS_HEADER) or len(raw) > 1024:
        return raw, None
    fields = dict(line.split(" ", 1) for line in raw.decode(errors="replace").splitlines() if " " in line)
    want = fields.get("oid", "").removeprefix("sha256:")
    local = domain.root / path
    try:
        if local.is_symlink() or not local.is_file() or local.stat().st_size > max_bytes:
            raise FileNotFoundError
        data = local.read_bytes()
    except OSError:
        return None, "a Git LFS pointer whose object is not in the working tree; run `git lfs pull`"
    if hashlib.sha256(data).hexdigest() != want:
        return None, "a Git LFS pointer, and the working-tree file is not the object it names; run `git lfs pull`"
    return data, None


def document_text(path: str, raw: bytes) -> tuple[str | None, str | None]:
    """(text, None) or (None, why not): UTF-8 for txt/md/html, the text layer for PDF."""
    suffix = PurePosixPath(path).suffix.lower()
    kind = TEXT_SUFFIXES.get(suffix)
    if kind == "pdf":
        return _pdf_text(raw)
    if kind == "rdf":
        from pwd_git.extract.structured import RDF_SUFFIXES, rdf_text

        return rdf_text(raw, RDF_SUFFIXES[suffix])
    if b"\0" in raw[:8192]:
        return None, "binary content (NUL bytes) in a text document"
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, f"not UTF-8 (byte 0x{raw[exc.start]:02x} at line {line}); save it as UTF-8"
    if kind == "html":
        text = html_text(text)
    if not text.strip():
        return None, "no text"
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


def html_text(markup: str) -> str:
    """The visible text of an HTML page, one block (paragraph, heading, list item) per paragraph."""
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    blocks = (" ".join(b.split()) for b in re.split(r"\n\s*\n", "".join(parser.parts)))
    return "\n\n".join(b for b in blocks if b)


_BLANK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def chunk(text: str, max_chars: int) -> list[Chunk]:
    """Consecutive paragraphs packed into chunks of at most `max_chars`; a longer paragraph is cut
    at sentence ends (or, failing that, at whitespace). Each chunk is a verbatim slice of `text`."""
    spans = []
    at = 0
    for match in [*_BLANK.finditer(text), None]:
        end = match.start() if match else len(text)
        if text[at:end].strip():
            spans.extend(_split_long(text, at, end, max_chars))
        at = match.end() if match else end
    chunks: list[Chunk] = []
    start = end = None
    for s, e in spans:
        if start is not None and e - start > max_chars:
            chunks.append(Chunk(len(chunks), start, text[start:end]))
            start = None
        if start is None:
            start = s
        end = e
    if start is not None:
        chunks.append(Chunk(len(chunks), start, text[start:end]))
    return chunks


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    out = []
    while end - start > max_chars:
        window = text[start:start + max_chars]
        cuts = [m.end() for m in _SENTENCE_END.finditer(window)] or [m.end() for m in re.finditer(r"\s+", window)]
        cut = start + (cuts[-1] if cuts else max_chars)
        out.append((start, cut))
        start = cut
    out.append((start, end))
    return out


def normalise_ws(text: str) -> str:
    """Whitespace runs as one space: how a quote is compared with the document."""
    return " ".join(text.split())

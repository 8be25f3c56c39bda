"""Chunks of a document's text: consecutive paragraphs packed up to a size, cut at sentence ends
when a paragraph is too long, streamed so a document of any size is never held whole. A chunk's
hash names its text (what is cached per chunk); anchors keep an edit from shifting every later
chunk boundary.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

CHUNKER_VERSION = "1"  # in each chunk's hash, which names its text (a cached answer stays valid for the same text)
CHUNKING_VERSION = "4"  # how documents are cut into chunks: in the document cache's key


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # offset of the chunk in the document's text
    text: str
    line: int = 1  # the document's line the chunk starts on

    @property
    def hash(self) -> str:
        """Stable id of the chunk's content: the key of everything cached per chunk."""
        return hashlib.sha256(f"{CHUNKER_VERSION}\0{self.text}".encode()).hexdigest()[:32]


# A line ends at LF, at CRLF's LF (Windows) or at a lone CR (classic Mac OS); a blank line may hold
# spaces, tabs and form feeds. A CR at the end of a streamed piece may be CRLF's: a blank line that ends
# there is still one (the paragraph before it ends where the blank line starts), and _line_at does not
# count the LF that may follow as a line of its own.
_LINE_END = r"(?:\n|\r(?!\n))"
_BLANK = re.compile(rf"{_LINE_END}(?:[ \t\f\v]|\r(?=\n))*{_LINE_END}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def chunk(text: str, max_chars: int) -> list[Chunk]:
    """The chunks of a whole text (see stream_chunks)."""
    return list(stream_chunks([text], max_chars))


def stream_chunks(texts: Iterable[str], max_chars: int) -> Iterator[Chunk]:
    """Consecutive paragraphs (from their first non-blank character) packed into chunks of at
    most `max_chars`; a longer paragraph is cut at sentence ends (or, failing that, at
    whitespace). Each chunk is a verbatim slice of the text that `texts` yields piece by piece,
    and the chunks do not depend on where the pieces were cut. Held at a time: one piece and
    about two chunks of text (plus any run of spaces after a line break, until it ends).

    A chunk also ends after an anchor paragraph, one chosen by its content (about one per eight
    chunks of text, so about 6% more chunks): packing alone would let an edit that moves one
    paragraph into the next chunk shift every chunk after it, while with anchors the chunks
    after the edit are cut as before from the next anchor on, and stay cached."""
    chunker = _Chunker(max_chars)
    for text in texts:
        yield from chunker.feed(text)
    yield from chunker.feed("", final=True)


class _Chunker:
    """stream_chunks' state. Offsets are the document's; `buf` holds its text from `base` on."""

    def __init__(self, max_chars: int):
        self.max = max_chars
        self.buf, self.base = "", 0
        self.at, self.in_para = 0, False  # where the paragraph (or the search for the next one) goes on
        self.start: int | None = None  # the chunk being packed: [start, end)
        self.end = 0
        self.mark, self.mark_line = 0, 1  # a known offset and its line (moves forward only)
        self.after_cr = False  # the text before `mark` ends with a CR (counted; a LF next is its CRLF's)
        self.index = 0
        self.held = 0  # the most text held at once (a check that memory stays bounded)
        self.out: list[Chunk] = []

    def feed(self, text: str, final: bool = False) -> list[Chunk]:
        self.buf += text
        self.held = max(self.held, len(self.buf))
        self._scan(final)
        if self.start is not None and (final or self.at - self.start >= self.max):
            self._emit()  # nothing that follows can join it
        keep = self.start if self.start is not None else self.at
        self._line_at(keep)
        self.buf, self.base = self.buf[keep - self.base:], keep
        out, self.out = self.out, []
        return out

    def _scan(self, final: bool) -> None:
        buf, base = self.buf, self.base
        while True:
            if not self.in_para:
                text = _NONBLANK.search(buf, self.at - base)
                if text is None:
                    self.at = base + len(buf)
                    return
                self.at, self.in_para = base + text.start(), True
            blank = _BLANK.search(buf, self.at - base)
            if blank is None and not final:
                # an unfinished paragraph: cut what is surely part of it (not a blank line's start)
                tail = _TAIL.search(buf, self.at - base)
                known = base + (tail.start() if tail else len(buf))
                while known - self.at > self.max:
                    cut = self.at + _cut(buf[self.at - base:self.at - base + self.max])
                    self._pack(self.at, cut)
                    self.at = cut
                return
            end = base + (blank.start() if blank else len(buf))
            for s, e in _split_long(buf, self.at - base, end - base, self.max):
                self._pack(base + s, base + e)
            if _anchor(buf[s:e], self.max):
                self._emit()
            self.at, self.in_para = base + (blank.end() if blank else len(buf)), False
            if blank is None:
                return

    def _pack(self, s: int, e: int) -> None:
        if self.start is not None and e - self.start > self.max:
            self._emit()
        if self.start is None:
            self.start = s
        self.end = e

    def _emit(self) -> None:
        assert self.start is not None
        line = self._line_at(self.start)
        self.out.append(Chunk(self.index, self.start, self.buf[self.start - self.base:self.end - self.base], line))
        self.index += 1
        self.start = None

    def _line_at(self, offset: int) -> int:
        start, end = self.mark - self.base, offset - self.base
        if start < end:
            self.mark_line += line_ends(self.buf, start, end) - (self.after_cr and self.buf[start] == "\n")
            self.after_cr = self.buf[end - 1] == "\r"
        self.mark = offset
        return self.mark_line


def _anchor(paragraph_end: str, max_chars: int) -> bool:
    """A paragraph (its last span) that ends a chunk: chosen by content, with a chance of its
    length in eight chunks, so anchors fall about every eight chunks whatever the paragraphs' size."""
    return zlib.crc32(paragraph_end.encode()) % (8 * max_chars) < len(paragraph_end)


_NONBLANK = re.compile(r"\S")
_TAIL = re.compile(r"[\n\r][ \t\r\f\v]*\Z")


def line_ends(text: str, start: int = 0, end: int | None = None) -> int:
    """How many lines end in text[start:end]: at LF, CRLF or a lone CR (classic Mac OS files)."""
    return text.count("\n", start, end) + text.count("\r", start, end) - text.count("\r\n", start, end)


def _cut(window: str) -> int:
    """Where a too-long paragraph's `window` (max_chars of it) is cut: after its last sentence
    end, else after its last whitespace, else at its end."""
    cuts = [m.end() for m in _SENTENCE_END.finditer(window)] or [m.end() for m in re.finditer(r"\s+", window)]
    return cuts[-1] if cuts else len(window)


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    out = []
    while end - start > max_chars:
        cut = start + _cut(text[start:start + max_chars])
        out.append((start, cut))
        start = cut
    out.append((start, end))
    return out


def normalise_ws(text: str) -> str:
    """Whitespace runs as one space: how a quote is compared with the document."""
    return " ".join(text.split())

"""A chunk's prose as sentences: what the patterns backend reads, with the structure that is no
prose left out (code fences, pipe tables, headings, rules, quotes) and list markers and pydoc's
class-section gutters dropped. Each sentence keeps a verbatim quote of the text it came from,
which is what an extracted node's `source.quote` must be."""

from __future__ import annotations

import bisect
import re

from pwd_git.extract.chunks import normalise_ws

_ABBREVIATIONS = frozenset({"e.g", "i.e", "etc", "al", "dr", "mr", "mrs", "ms", "st", "vs", "fig", "figs",
                            "ch", "cf", "approx", "no", "vol", "pp", "ed", "eds"})  # a "." after these ends no sentence
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")


def said(text: str) -> list[tuple[str, str]]:
    """(quote, sentence) for each sentence of a chunk, whitespace-normalised, markdown structure
    (headings, code, tables) left out and list markers dropped. The quote is a verbatim
    (whitespace-normalised) slice of `text`; the sentence is the same without the gutter of pydoc's
    class sections (` |  ` before each line), which the quote keeps where a sentence spans lines."""
    out: list[tuple[str, str]] = []
    para: list[str] = []
    gutters: list[str] = []  # for each line of `para`, the gutter before it ("" for none)
    fence = False

    def flush() -> None:
        if para:
            out.extend(_split(para, gutters))
            para.clear()
            gutters.clear()

    lines = text.splitlines()
    tables = _pipe_tables(lines)
    for i, line in enumerate(lines):
        gutter = ""
        while i not in tables and not _table_row(line) and (match := _GUTTER.match(line)):
            gutter, line = gutter + "| ", line[match.end():]
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            flush()
            fence = not fence
            continue
        if fence:
            continue
        if i in tables or not stripped or stripped.startswith(("#", "|", ">")) or _rule_or_heading(stripped):
            flush()
            continue
        item = _LIST_ITEM.match(line)
        if item:
            flush()
            stripped = line[item.end():].strip()
        para.append(stripped)
        gutters.append(gutter)
    flush()
    return [(normalise_ws(quote), normalise_ws(sentence)) for quote, sentence in out if sentence.strip()]


_GUTTER = re.compile(r"[ \t]*\|(?: {2}|[ \t]*$)")  # pydoc's ` |  ` (a class section's; once per nested class)
#: `|---|:--:|`, matched on the stripped line (spaces before an optional first bar would backtrack quadratically)
_DELIMITER_ROW = re.compile(r"\|?(?:[ \t]*:?-+:?[ \t]*\|)+(?:[ \t]*:?-+:?[ \t]*)?")


def _table_row(line: str) -> bool:
    """A line that opens and ends with `|`: a row of a pipe table or an ASCII grid table."""
    stripped = line.strip()
    return len(stripped) > 1 and stripped[0] == stripped[-1] == "|"


def _pipe_tables(lines: list[str]) -> set[int]:
    """The lines of markdown pipe tables: each run of lines opening with `|` that holds a delimiter
    row (`|---|---|`), so a row without its closing `|` is no pydoc gutter either."""
    out: set[int] = set()
    run: list[int] = []
    for i, line in enumerate([*lines, ""]):
        if line.lstrip().startswith("|"):
            run.append(i)
            continue
        if any(_DELIMITER_ROW.fullmatch(lines[j].strip()) for j in run):
            out.update(run)
        run = []
    return out


def _split(para: list[str], gutters: list[str]) -> list[tuple[str, str]]:
    """A paragraph's (quote, sentence) pairs: its lines joined by spaces, cut into sentences, each
    quote given back the gutters of the lines it continues on."""
    joined = " ".join(para)
    spans = _sentence_spans(joined)
    if not any(gutters):
        return [(joined[s:e], joined[s:e]) for s, e in spans]
    starts, at = [], 0
    for line in para:
        starts.append(at)
        at += len(line) + 1
    out = []
    for s, e in spans:
        pieces, at = [], s
        for k in range(bisect.bisect_right(starts, s), bisect.bisect_left(starts, e)):
            pieces += [joined[at:starts[k]], gutters[k]]
            at = starts[k]
        out.append(("".join(pieces) + joined[at:e], joined[s:e]))
    return out


def _rule_or_heading(line: str) -> bool:
    """A line that is no prose: without a letter or digit (a rule `---`, the ` .` of a Debian
    copyright file's blank line), or a heading in capitals with no final stop (a man page's
    `DESCRIPTION`, `SEE ALSO`)."""
    if not any(c.isalnum() for c in line):
        return True
    return line.upper() == line and line[-1] not in ".!?,;:" and sum(c.isupper() for c in line) >= 2


def _sentence_spans(paragraph: str) -> list[tuple[int, int]]:
    """Where a paragraph's sentences are (stripped): cut at . ! ? followed by whitespace and an
    upper-case letter, digit or quote, except after an abbreviation or an initial."""
    out, start = [], 0
    for match in re.finditer(r"[.!?][\"')\]*_]*(?=\s+[\"'(\[*_]{0,2}[A-Z0-9])", paragraph):
        word = paragraph[start:match.start()].rsplit(None, 1)[-1] if paragraph[start:match.start()].split() else ""
        if match.group().startswith(".") and (word.lower().rstrip(".") in _ABBREVIATIONS or re.fullmatch(r"[A-Z]", word)):
            continue
        out.append(_strip(paragraph, start, match.end()))
        start = match.end()
    if paragraph[start:].strip():
        out.append(_strip(paragraph, start, len(paragraph)))
    return out


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of text[start:end].strip()."""
    piece = text[start:end]
    return start + len(piece) - len(piece.lstrip()), end - len(piece) + len(piece.rstrip())

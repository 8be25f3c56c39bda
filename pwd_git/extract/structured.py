"""Structured imports: CSV/TSV triples and RDF graphs in the corpus, read by rules, not a backend.

CSV/TSV: a header with `subject`, `predicate` and `object` columns; one triple per row, the
row's line as its quote. RDF (Turtle, N-Triples, JSON-LD; through rdflib, `pwd-git[extract]`):
the document's text is its graph as sorted N-Triples lines (what quotes are checked against,
as a PDF's text layer is for a PDF), one triple per line.

Predicates with a meaning of their own: `type` / rdf:type (the concept's type), `definition` /
rdfs:comment / skos:definition (its definition), `alias` / skos:altLabel (an alias), `label` /
rdfs:label / skos:prefLabel (an RDF resource's term). A subject becomes a concept when it has a
type and a definition; any other predicate is a statement whose object is a concept when one
has that term, else a literal value.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from pwd_git.extract.chunks import line_ends

TYPE = {"type", "is a", "rdf:type", "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"}
DEFINITION = {"definition", "http://www.w3.org/2000/01/rdf-schema#comment", "http://www.w3.org/2004/02/skos/core#definition",
              "http://purl.org/dc/terms/description"}
ALIAS = {"alias", "also called", "http://www.w3.org/2004/02/skos/core#altLabel"}
LABEL = {"label", "http://www.w3.org/2000/01/rdf-schema#label", "http://www.w3.org/2004/02/skos/core#prefLabel"}
COLUMNS = ("subject", "predicate", "object")  # a CSV/TSV table's header names these
RDF_SUFFIXES = {".ttl": "turtle", ".nt": "nt", ".jsonld": "json-ld", ".rdf": "xml"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def rdf_text(raw: bytes, fmt: str) -> tuple[str | None, str | None]:
    """(sorted N-Triples of the graph, None) or (None, why not)."""
    try:
        import rdflib
    except ImportError:
        return None, "RDF needs rdflib: pip install 'pwd-git[extract]'"
    graph = rdflib.Graph()
    try:
        graph.parse(data=raw.decode("utf-8"), format=fmt)
    except UnicodeDecodeError:
        return None, "not UTF-8; save it as UTF-8"
    except Exception as exc:  # rdflib's parsers raise many kinds; any of them means "not readable"
        return None, f"not readable as {fmt} ({type(exc).__name__})"
    lines = sorted(line for line in graph.serialize(format="nt").splitlines() if line.strip())
    return ("\n".join(lines) + "\n", None) if lines else (None, "no triples")


class _Lines:
    """A table's physical lines as csv should read them (ended by LF, CRLF or a lone CR), counted,
    those of the row being read kept (its quote), and the last one given a line end: so a row that
    csv still returns once the lines have run out is one whose quoted field never closed."""

    def __init__(self, text: str):
        self.lines = io.StringIO(text, newline="")
        self.n = 0  # lines read
        self.row: list[str] = []  # the lines of the row being read
        self.done = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.lines.readline()
        if not line:
            self.done = True
            raise StopIteration
        self.n += 1
        self.row.append(line)
        return line if line.endswith(("\n", "\r")) else line + "\n"


class _TableError(Exception):
    """A row csv cannot read, or a quote that never closes: the document is no table to import."""

    def __init__(self, kind: str, line: int, problem: str):
        super().__init__(f"not readable as {kind.upper()} (line {line}: {problem})")


def _records(kind: str, text: str) -> Iterator[tuple[list[str], str]]:
    """(fields, the row's text) per row of a CSV/TSV table, in one pass; _TableError for a row csv
    cannot read (a field over its 128 KiB limit) or a quoted field still open at the end (csv would
    take the rest of the file as that field: every row after it would be lost without a word)."""
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter="\t" if kind == "tsv" else ",")
    try:
        for fields in reader:
            if lines.done:  # the row's last field is the rest of the file, from the line its quote opens
                opened = lines.n - line_ends(fields[-1]) + 1
                raise _TableError(kind, opened, "a quoted field opens on this line and is never closed")
            yield fields, "".join(lines.row).rstrip("\r\n")
            lines.row.clear()
    except csv.Error as exc:
        raise _TableError(kind, lines.n, str(exc)) from None


def _columns(header: list[str]) -> tuple[list[str], list[str]]:
    """A table's first row as column names (stripped, lower case) and the COLUMNS it lacks."""
    names = [h.strip().lower() for h in header]
    return names, [k for k in COLUMNS if k not in names]


def table_problem(kind: str, text: str) -> str | None:
    """Why a CSV/TSV document is no table of triples, or None: a row the csv module cannot read (a
    field over its 128 KiB limit), a quote that never closes, or a first row without a column `rows`
    needs. The document is then skipped, so `rows` never meets a problem (and parses it again only
    when it is extracted: the check runs on every run, for unchanged documents too)."""
    records = _records(kind, text)
    try:
        header, missing = _columns(next(records, ([], ""))[0])
        for _ in records:
            pass
    except _TableError as exc:
        return str(exc)
    if not missing:
        return None
    found = ", ".join(h for h in header[:5] if h) + (", ..." if len(header) > 5 else "")
    names = " or ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    return (f"not a table of triples: its first row has no {names} column" + (f" (it has {found})" if found else "")
            + "; see docs/extract.md, Structured import")


def rows(kind: str, text: str) -> list[tuple[str, str, str, str, bool]]:
    """(subject, predicate, object, quote line, object is a resource) per triple; the quote is the
    row's text (a row with a line break in a field spans lines, so its quote is no line)."""
    if kind == "rdf":
        return _rdf_rows(text)
    records = _records(kind, text)
    header, missing = _columns(next(records, ([], ""))[0])
    if missing:
        return []
    at = [header.index(k) for k in COLUMNS]
    return [(row[at[0]].strip(), row[at[1]].strip(), row[at[2]].strip(), line, True) for row, line in records
            if len(row) > max(at) and all(row[i].strip() for i in at)]


_NT = re.compile(r'^(<[^>]*>|_:\S+)\s+<([^>]*)>\s+(<[^>]*>|_:\S+|"(?:[^"\\]|\\.)*"(?:@[\w-]+|\^\^<[^>]*>)?)\s*\.\s*$')


def _rdf_rows(text: str) -> list[tuple[str, str, str, str, bool]]:
    triples = []
    for line in text.splitlines():
        m = _NT.match(line)
        if m:
            obj = m[3]
            resource = obj.startswith(("<", "_:"))
            value = obj.strip("<>") if resource else _unescape(obj[1:obj.rindex('"')])
            triples.append((m[1].strip("<>"), m[2], value, line, resource))
    labels = {s: o for s, p, o, _, r in triples if p in LABEL and not r}
    named = [(_name(s, labels), p, _name(o, labels) if r else o, line, r) for s, p, o, line, r in triples
             if p not in LABEL]
    return [(s, p if p in TYPE | DEFINITION | ALIAS else _predicate(p), o, line, r) for s, p, o, line, r in named]


def _unescape(text: str) -> str:
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape") if "\\" in text else text


def _name(iri: str, labels: dict[str, str]) -> str:
    if iri in labels:
        return labels[iri]
    local = re.split(r"[#/:]", iri.rstrip("/#"))[-1]
    return " ".join(_CAMEL.sub(" ", local.replace("_", " ").replace("-", " ")).split()).lower() or iri


def _predicate(iri: str) -> str:
    local = re.split(r"[#/:]", iri.rstrip("/#"))[-1]
    return " ".join(_CAMEL.sub(" ", local.replace("_", " ").replace("-", " ")).split()).lower()


def candidates(kind: str, text: str) -> dict[str, list[dict]]:
    """The candidates of a structured document, each with its row's line as quote."""
    concept: dict[str, dict] = {}
    out: dict[str, list[dict]] = {"concepts": [], "aliases": [], "statements": []}
    for s, p, o, line, resource in rows(kind, text):
        key = p if p in TYPE | DEFINITION | ALIAS else p.lower()  # IRIs are case-sensitive
        if key in TYPE:
            concept.setdefault(s, {})["type"] = " ".join(_predicate(o).split()) if resource else o.lower()
        elif key in DEFINITION:
            concept.setdefault(s, {}).update(definition=o, quote=line)
        elif key in ALIAS:
            out["aliases"].append({"term": s, "alias": o, "quote": line})
        else:
            out["statements"].append({"subject": s, "predicate": " ".join(key.split()), "object": o, "quote": line,
                                      "shape": "import"})
    for term, fields in concept.items():
        if "type" in fields and "definition" in fields:
            out["concepts"].append({"term": term, "type": fields["type"], "definition": fields["definition"],
                                    "quote": fields["quote"]})
    return out

"""Safe, fast YAML reading with source positions.

libyaml (through PyYAML's CSafeLoader) composes the node graph, about 30x faster than a
pure-Python parser, and every node keeps its line and column. We then build plain Python
data ourselves so that no tag can construct an object, aliases are refused (no "billion
laughs"), duplicate keys are errors, and each value's position is recorded by JSON path.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

import yaml

from pwd_git.errors import quote

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a KB file is a handful of nodes, never megabytes
MAX_DEPTH = 64  # nesting levels; a KB file needs about 5
_SAFE_COMPOSE_DEPTH = 1000  # libyaml's composer recurses on the C stack: pre-scan anything possibly deeper

try:  # libyaml is in PyYAML's wheels; fall back to pure Python if a build lacks it
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",  # kept as the string written: dates are text here
}
# YAML 1.1 (PyYAML's resolver) wants a dot in a float, so `1e-4` would be the string '1e-4'; YAML 1.2, JSON
# and every user read it as a number. Plain scalars of this form that the resolver left as strings are floats.
_EXPONENT_FLOAT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+")
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

Path = tuple  # a JSON path: keys and indexes from the document root


class YamlError(Exception):
    """A document that is not acceptable YAML, with a 1-based position."""

    def __init__(self, message: str, line: int = 1, col: int = 1):
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


@dataclass
class Document:
    """Plain data plus where each value (and each mapping key) starts, 1-based."""

    data: object
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    written: dict[Path, str] = field(default_factory=dict)  # plain scalars read as numbers or booleans, as written

    def line_of(self, path: Path) -> int:
        """Line of the deepest known node on `path` (errors inside scalars point at them)."""
        for cut in range(len(path), -1, -1):
            pos = self.positions.get(tuple(path[:cut]))
            if pos:
                return pos[0]
        return 1

    def pos_of(self, path: Path) -> tuple[int, int]:
        for cut in range(len(path), -1, -1):
            pos = self.positions.get(tuple(path[:cut]))
            if pos:
                return pos
        return (1, 1)


def decode(raw: bytes) -> str:
    """UTF-8 text or a YamlError at the first bad byte's line and column."""
    if len(raw) > MAX_FILE_BYTES:
        raise YamlError(
            f"file is {len(raw) / 1e6:.1f} MB, over the {MAX_FILE_BYTES >> 20} MiB limit for a KB file; "
            "split it into smaller files"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise YamlError(f"file is not UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8", line, col) from None
    return text.removeprefix("\ufeff")


def load(raw: bytes) -> Document:
    """Parse one YAML document from bytes; raise YamlError for anything unsafe or malformed."""
    text = decode(raw)
    if not text.strip():
        raise YamlError("file is empty; expected a YAML mapping")
    try:
        if _depth_bound(text) > _SAFE_COMPOSE_DEPTH:
            _check_depth(text)  # rare: only files with very many indicators pay for an event scan
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:  # a control character: position is an index into text
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise YamlError(f"malformed YAML: {exc.reason} (character #x{exc.character:04x}); remove it", line, col) from None
    except yaml.MarkedYAMLError as exc:
        mark, ctx = exc.problem_mark or exc.context_mark, exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem:  # e.g. an unclosed quote: say where it was opened
            where = f" at line {ctx.line + 1}, column {ctx.column + 1}" if ctx and (ctx.line, ctx.column) != (
                mark.line, mark.column) else ""
            what = f"{exc.problem} ({exc.context}{where})"
        raise YamlError(f"malformed YAML: {what}", mark.line + 1 if mark else 1, mark.column + 1 if mark else 1) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"malformed YAML: {exc}") from None
    if root is None:
        raise YamlError("file holds no YAML document; expected a mapping")
    doc = Document(data=None)
    doc.data = _build(root, (), doc, set())
    return doc


def _depth_bound(text: str) -> int:
    """An upper bound on nesting depth, cheap to compute: every collection on a nesting path
    owns at least one indicator character of its own ('[', '{', '-', ':' or '?')."""
    return sum(text.count(c) for c in "[{-:?") + 1


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before composing: libyaml's composer recurses on
    the C stack and crashes the interpreter on a deep enough document (e.g. 100k '[')."""
    try:
        _scan_depth(yaml.parse(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        # Newer libyaml (PyYAML 6.0.4's wheels) stops at a nesting limit of its own (1000), and its scanner
        # looks up to a line ahead for a simple key, so on '[[[[...' its error comes before our deeper-than-64
        # event does. The pure-Python parser has no such limit: it says whether our limit is crossed before
        # libyaml's error. Any other error is reported below, as libyaml words it.
        mark = getattr(exc, "problem_mark", None)
        with contextlib.suppress(yaml.YAMLError):
            _scan_depth(yaml.parse(text, Loader=yaml.SafeLoader), until_line=mark.line if mark else None)


def _scan_depth(events, until_line: int | None = None) -> None:
    """YamlError at the first collection nested deeper than MAX_DEPTH (0-based `until_line`: stop after it)."""
    depth = 0
    for event in events:
        if until_line is not None and event.start_mark.line > until_line:
            return
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise YamlError(f"nesting is deeper than {MAX_DEPTH} levels; KB files are shallow mappings and lists",
                                mark.line + 1, mark.column + 1)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _pos(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _build(node: yaml.Node, path: Path, doc: Document, seen: set[int]) -> object:
    if id(node) in seen:
        line, col = _pos(node)
        raise YamlError("anchors and aliases (&name / *name) are not allowed in KB files; write the value out", line, col)
    seen.add(id(node))
    if len(path) >= MAX_DEPTH:  # the root is level 1
        raise YamlError(f"nesting is deeper than {MAX_DEPTH} levels; KB files are shallow mappings and lists", *_pos(node))
    doc.positions[path] = _pos(node)
    if isinstance(node, yaml.ScalarNode):
        value = _scalar(node)
        if isinstance(value, (bool, int, float)):
            doc.written[path] = node.value
        return value
    if isinstance(node, yaml.SequenceNode):
        _check_tag(node, _SEQ)
        return [_build(item, (*path, i), doc, seen) for i, item in enumerate(node.value)]
    _check_tag(node, _MAP)
    out: dict = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise YamlError("mapping keys must be plain strings", *_pos(key_node))
        if key_node.tag == "tag:yaml.org,2002:merge" or (key_node.value == "<<" and not key_node.style):
            raise YamlError("merge keys (<<) are not allowed in KB files", *_pos(key_node))
        key = _scalar(key_node)
        key = str(key)
        if key in out:
            first = doc.key_positions[(*path, key)]
            raise YamlError(f"duplicate key {quote(key)} (first defined at line {first[0]})", *_pos(key_node))
        doc.key_positions[(*path, key)] = _pos(key_node)
        out[key] = _build(value_node, (*path, key), doc, seen)
    return out


def _check_tag(node: yaml.Node, expected: str) -> None:
    if node.tag != expected:
        raise YamlError(f"YAML tag {quote(node.tag)} is not allowed in KB files (tags never construct objects here)", *_pos(node))


def _scalar(node: yaml.ScalarNode) -> object:
    tag, value = node.tag, node.value
    if tag not in _SCALAR_TAGS:
        raise YamlError(f"YAML tag {quote(tag)} is not allowed in KB files (tags never construct objects here)", *_pos(node))
    if node.style or tag == "tag:yaml.org,2002:timestamp":
        return value
    if tag == _STR:
        return float(value) if _EXPONENT_FLOAT.fullmatch(value) else value
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() in ("true", "yes", "on", "y")
    if tag == "tag:yaml.org,2002:int":
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            return value
    try:
        return float(value.replace("_", ""))
    except ValueError:
        return value

"""The shipped JSON Schemas (Draft 2020-12), one per file kind, and error wording."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from pwd_git.errors import QUOTE_LIMIT, quote
from pwd_git.kb.diagnostics import ERROR, Diagnostic, json_path
from pwd_git.kb.yamlsafe import Document

KINDS = ("config", "concept", "chain", "patch")


@cache
def schema(kind: str) -> dict:
    return json.loads(resources.files("pwd_git.schemas").joinpath(f"{kind}.schema.json").read_text())


@cache
def _validator(kind: str):
    from jsonschema import Draft202012Validator  # imported lazily: warm runs never need it

    return Draft202012Validator(schema(kind))


_JSON_TYPES = {dict: "mapping", list: "list", str: "string", int: "integer", float: "number", bool: "boolean",
               type(None): "null"}


def check(kind: str, doc: Document, path: str) -> list[Diagnostic]:
    """Schema errors for one parsed file, each at the line of the offending node."""
    out = []
    for err in _validator(kind).iter_errors(doc.data):
        where = tuple(err.absolute_path)
        message, where = _describe(err, where, doc)
        line, col = doc.key_positions.get(where) or doc.pos_of(where)
        out.append(Diagnostic(path, line, col, ERROR, "schema", message, json_path(where)))
    return sorted(out)


def _describe(err, where: tuple, doc: Document) -> tuple[str, tuple]:
    custom = err.schema.get("x-error") if isinstance(err.schema, dict) else None
    kind = err.validator
    if kind == "additionalProperties" and isinstance(err.instance, dict):
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        key = extra[0] if extra else ""
        return f"unknown key {quote(key)} (allowed: {', '.join(allowed)})", (*where, key)
    if kind == "required":
        return f"missing required key {err.message.split(' ')[0]}", where
    if kind == "type":
        expected = err.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        got = _JSON_TYPES.get(type(err.instance), type(err.instance).__name__)
        return f"expected {expected}, got {got} {quote(err.instance)}".rstrip(), where
    if kind == "enum":
        return f"expected one of {', '.join(map(str, err.validator_value))}, got {quote(err.instance)}", where
    if custom:
        return f"{custom}; got {quote(err.instance)}", where
    shown = repr(err.instance)  # jsonschema's own wording quotes the whole value
    return (err.message.replace(shown, quote(err.instance)) if len(shown) > QUOTE_LIMIT else err.message), where

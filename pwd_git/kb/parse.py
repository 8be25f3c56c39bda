"""One file's bytes -> a cacheable record: plain data, key positions, file-local diagnostics.

Records depend only on the bytes and the file kind, so they are cached by blob OID;
everything that depends on the path or on other files happens later, in `assemble`.
"""

from __future__ import annotations

#: Bump when the record layout or the file-local checks change (invalidates caches).
PARSER_VERSION = 5


def classify(relpath: str) -> str | None:
    """The file kind of a KB-relative path, None for files that are not part of the KB."""
    if relpath == "pwd.yaml":
        return "config"
    if not relpath.endswith((".yaml", ".yml")):
        return None
    top = relpath.split("/", 1)[0]
    return {"concepts": "concept", "chains": "chain", "patches": "patch"}.get(top)


def parse(kind: str, raw: bytes) -> dict:
    """Record = {"data": object|None, "pos": {path: (line, col)}, "diags": [(line, col, code, msg, jpath)]}."""
    from pwd_git.kb import schema  # imported here: runs that parse nothing never load YAML or JSON Schema
    from pwd_git.kb.yamlsafe import YamlError, load

    try:
        doc = load(raw)
    except YamlError as exc:
        return {"data": None, "pos": {}, "diags": [(exc.line, exc.col, "yaml", exc.message, "")]}
    if not isinstance(doc.data, dict):
        what = type(doc.data).__name__
        return {"data": None, "pos": {}, "diags": [(1, 1, "schema", f"expected a mapping at the top level, got {what}", "$")]}
    diags = [(d.line, d.col, d.code, d.message, d.json_path) for d in schema.check(kind, doc, "")]
    if kind == "concept":
        _values_as_written(doc)
    # Keep only the positions later checks point at: top-level keys and list items one or two down.
    pos = {p: lc for p, lc in doc.positions.items() if len(p) <= 3}
    pos.update({("key", *p): lc for p, lc in doc.key_positions.items() if len(p) == 1})
    return {"data": doc.data, "pos": pos, "diags": diags}


def _values_as_written(doc) -> None:
    """A statement's `value` is a literal, so generated text shows it as the file writes it:
    `3.10` (a version) stays "3.10", `yes` "yes", `1e3` "1e3"; not the float 3.1, True or 1000.0
    that YAML reads (the schema, checked before, accepts both)."""
    relations = doc.data.get("relations")
    for i, rel in enumerate(relations if isinstance(relations, list) else []):
        written = doc.written.get(("relations", i, "value"))
        if written is not None and isinstance(rel, dict):
            rel["value"] = written

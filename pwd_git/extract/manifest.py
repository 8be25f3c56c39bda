"""extract.lock.json, the manifest of what extraction wrote: which blob each file it owns had,
and each document's state. Read leniently (a lock that cannot be read owns nothing), written
sorted, and merged entry by entry as git's merge driver for it (`git pwd merge-lock`)."""

from __future__ import annotations

import json

from pwd_git.errors import DataError

MANIFEST = "extract.lock.json"
MANIFEST_VERSION = 1


def _parse(raw: bytes) -> dict | None:
    """The lock's data, or None when `raw` is not a lock (not JSON, or no `files` table)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def read_manifest(raw: bytes | None) -> dict:
    """The manifest's data, or an empty one (a missing or unreadable manifest owns nothing)."""
    data = _parse(raw) if raw else None
    if data is None:
        return {"version": MANIFEST_VERSION, "documents": {}, "files": {}}
    files = {p: b for p, b in data["files"].items() if isinstance(p, str) and isinstance(b, str)}
    docs = data.get("documents") if isinstance(data.get("documents"), dict) else {}
    return {"version": MANIFEST_VERSION, "documents": docs, "files": files}


def manifest_bytes(files: dict[str, str], documents: dict[str, dict]) -> bytes:
    data = {"version": MANIFEST_VERSION, "generated_by": "git pwd extract",
            "documents": {p: documents[p] for p in sorted(documents)}, "files": {p: files[p] for p in sorted(files)}}
    return (json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode()


def merge_manifests(base: bytes | None, ours: bytes, theirs: bytes) -> tuple[bytes, list[str]]:
    """Three-way merge of extract.lock.json, entry by entry (the lock's merge driver): each
    document's and file's entry comes from the side that changed it, so two extraction branches
    of different documents merge cleanly. Returns the merged lock and the entries both sides
    changed differently (those keep ours: a conflict for `git pwd extract` to redo). A side
    that is not a lock (say, conflict markers) is a DataError: git then keeps its conflict."""
    for name, raw in (("ours", ours), ("theirs", theirs)):
        if raw.strip() and _parse(raw) is None:
            raise DataError(f"{MANIFEST} ({name}) is not a lock file", hint="resolve it by hand, or run `git pwd extract`")
    sides = [read_manifest(raw) for raw in (base, ours, theirs)]
    merged, conflicts = {}, []
    for section in ("documents", "files"):
        old, mine, other = (side[section] for side in sides)
        out = {}
        for key in sorted({*mine, *other}):
            was, a, b = old.get(key), mine.get(key), other.get(key)
            value = b if a == was else a
            if a != was and b != was and a != b:
                conflicts.append(key)
            if value is not None:
                out[key] = value
        merged[section] = out
    return manifest_bytes(merged["files"], merged["documents"]), conflicts

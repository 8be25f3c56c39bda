"""Cross-file checks (errors) and lints (warnings), one file at a time.

`file_diagnostics(ix, path)` gives every diagnostic located in one file, reading the other
files only through the index (index.py): a cold run calls it for every file, a warm run for
the files a change can reach. Diagnostics are plain tuples in `Diagnostic` field order.

The rules, and which nodes count ("live"), are those of a KB assembled in path order:
the first file claiming an id owns it, the first claim of a statement id wins.
"""

from __future__ import annotations

import re
import string
import unicodedata

from pwd_git.errors import quote

ERROR, WARNING = "error", "warning"

_STEP = re.compile(r"[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)*\Z")  # as in chain.schema.json
#: An English plural: "es" after a sibilant ("boxes", "classes", "dishes"), else an "s" not after
#: another ("cells"; "glass" stays): "libgles" is not the plural of "libgl".
_PLURAL = re.compile(r"(?:(?<=[sxz])|(?<=ch)|(?<=sh))es\b|(?<=[a-rt-z])s\b")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def norm_term(term: str) -> str:
    """Terms that differ only by case, punctuation, spacing, Unicode form (NFKC) or an English
    plural 's' collide. Letters, digits and marks of every script are kept, so terms in two
    scripts never collide; a term of punctuation alone is its own key."""
    if term.isascii():  # most terms, and the same key: NFKC and casefold change no ASCII text
        text = term.lower()
        spaced = _NON_ALNUM.sub(" ", text)
    else:
        text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", term).casefold())
        spaced = "".join(ch if ch.isalnum() or unicodedata.category(ch)[0] == "M" else " " for ch in text)
    return _PLURAL.sub("", spaced).replace(" ", "") or text


def reads_as(choice: str) -> str:
    """What an answer choice reads as: choices that differ only in case, Unicode form, spacing
    or punctuation at their ends ("Red", "red ", "red.") are one answer, never two choices."""
    text = " ".join(unicodedata.normalize("NFKC", choice).casefold().split())
    return text.strip(string.punctuation + " ") or text


def same_choices(choices: list) -> tuple[int, int] | None:
    """The first two of `choices` that read the same, if any."""
    seen: dict[str, int] = {}
    for j, choice in enumerate(choices):
        i = seen.setdefault(reads_as(str(choice)), j)
        if i != j:
            return i, j
    return None


def _closest(name: str, known) -> str:
    """A "did you mean" for a name not among `known`: the closest, case aside ("Depends On")."""
    import difflib

    folded = {k.casefold(): k for k in known}
    match = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.8)
    return f" (did you mean {quote(folded[match[0]])}?)" if match else ""


def file_diagnostics(ix, path: str) -> list[tuple]:
    """Every diagnostic in `path` (sorted, no duplicates), given the index `ix`."""
    info = ix.info(path)
    if path == "pwd.yaml":
        out = _config(ix, info)
    elif info is None:
        return []
    elif info.kind == "patch":
        out = _patch(ix, info)
    elif info.node is None:
        out = list(info.diags)
    else:
        out = list(info.diags)
        node_id, line, col = info.node
        first = ix.owner(node_id)
        if first[0] != path:
            out.append((path, line, col, ERROR, "duplicate-id",
                        f"id {quote(node_id)} is already used by {first[0]}:{first[2]}; ids are unique across the KB", ""))
        elif info.kind == "concept":
            _concept(ix, info, out)
        else:
            _chain(ix, info, out)
    return sorted(set(out))


def _config(ix, info) -> list[tuple]:
    if info is None:
        return [("pwd.yaml", 1, 1, ERROR, "missing-config", "pwd.yaml is missing", "")]
    out = list(info.diags)
    for node in (info.config or {}).get("holdout", ()):
        if not ix.is_concept(node) and ix.statement(node) is None:
            out.append(("pwd.yaml", 1, 1, ERROR, "missing-holdout",
                        f"build.holdout names {quote(node)}, which is neither a concept nor a statement", ""))
    return out


def _concept(ix, info, out: list) -> None:
    path, (cid, line, col) = info.path, info.node
    config = ix.config or {}
    functional, declared = set(config.get("functional", ())), set(config.get("declared", ()))
    tested = ix.counts["test_chains"] > 0
    groups: dict[str, list] = {}
    live = 0
    for i, sid, predicate, obj, value, rl, rc in info.rels:
        first = ix.statement(sid)
        if first[0] != path or first[1] != i:
            if first[2:6] == (info.node[0], predicate, obj, value):
                message = f"statement {quote(sid)} is already stated at {first[0]}:{first[6]}; remove one"
            else:  # another fact whose derived id folds to the same slug ('*.pl' and '*.PL', 'C' and 'C++')
                other = first[4] if first[4] is not None else first[5]
                message = (f"statement id {quote(sid)} also names a different statement at {first[0]}:{first[6]} "
                           f"({quote(first[2])} {quote(first[3])} -> {quote(other)}); give one of them its own "
                           "`id:` (a derived id folds case and punctuation)")
            out.append((path, rl, rc, ERROR, "duplicate-statement", message, ""))
            continue
        live += 1
        if obj is not None and not ix.is_concept(obj):
            hint = _closest(obj, ix.concept_ids()) if ix.counts["concepts"] < 20000 else ""
            out.append((path, rl, rc, ERROR, "missing-object",
                        f"relation {quote(predicate)} points at concept {quote(obj)}, which does not exist{hint}", ""))
        if predicate in functional:
            groups.setdefault(predicate, []).append((sid, obj if obj is not None else value, rl, rc))
        if tested and not ix.rstep.get(sid) and not ix.probed(cid) and not (obj is not None and ix.probed(obj)):
            out.append((path, rl, rc, WARNING, "untested-statement",
                        f"statement {quote(sid)} is on no chain and touches no probed concept; nothing exercises it", ""))
        if declared and predicate not in declared:
            out.append((path, rl, rc, WARNING, "undeclared-predicate",
                        f"predicate {quote(predicate)} is not declared under predicates: in pwd.yaml"
                        f"{_closest(predicate, declared)}", ""))
    for predicate, group in groups.items():
        if len({target for _, target, _, _ in group}) > 1:
            _, first_target, first_line, _ = group[0]
            for _, target, rl, rc in group[1:]:
                out.append((path, rl, rc, ERROR, "functional-conflict",
                            f"{quote(predicate)} is declared functional in pwd.yaml but {quote(cid)} already has "
                            f"{quote(first_target)} at {path}:{first_line}; a second object {quote(target)} is a contradiction",
                            ""))
    if not live and not ix.robj.get(cid):
        out.append((path, line, col, WARNING, "orphan-concept",
                    f"concept {quote(cid)} has no statements in or out; link it with a relation", ""))
    for what, name, name_line, name_col in info.names():
        owner_path, owner, owner_line, _ = ix.rterm.get(norm_term(name))[0]
        if owner != cid:
            out.append((path, name_line, name_col, WARNING, "near-duplicate-term",
                        f"{what} {quote(name)} of {quote(cid)} nearly duplicates {quote(owner)} at {owner_path}:{owner_line}; "
                        "merge them if they are one concept, or qualify one name ('perl (section)')", ""))


def _chain(ix, info, out: list) -> None:
    path = info.path
    previous = None
    for i, (sid, line, col) in enumerate(info.steps):
        st = ix.statement(sid)
        if st is None:
            joint, previous = previous[4] if previous is not None else None, None
            if not _STEP.match(sid):
                continue  # malformed: the schema already reported it
            # a suggestion must continue the chain: after a step ending at X, only X's statements
            known = [k for k in ix.statement_ids() if joint is None or k.startswith(joint + ".")]
            hint = _closest(sid, known) if ix.counts["statements"] < 20000 else ""
            out.append((path, line, col, ERROR, "missing-step",
                        f"chain step {i + 1} {quote(sid)} is not a statement in the KB{hint}", ""))
            continue
        if previous is not None and previous[4] != st[2]:
            joint = previous[4] if previous[4] is not None else f"the value {quote(previous[5])}"
            out.append((path, line, col, ERROR, "broken-chain",
                        f"steps do not connect: step {i} ends at {joint} but step {i + 1} starts at "
                        f"{quote(st[2])}; the object of each step must be the subject of the next", ""))
        previous = st
    if info.split == "train" and info.items:
        _, _, line, col, *_ = info.items[0]
        out.append((path, line, col, WARNING, "unused-items",
                    f"chain {quote(info.node[0])} has split: train, so its {len(info.items)} hand-written item(s) are "
                    "never asked (only test chains feed the benchmark); set split: test or move the items", ""))
    for answer, n, _, _, same, answer_at, choices_at in info.items:
        if not 0 <= answer < n:
            out.append((path, *answer_at, ERROR, "bad-answer",
                        f"answer index {answer} is outside the {n} choices (0-based)", ""))
        if same:
            out.append((path, *choices_at, ERROR, "same-choices",
                        f"choices {same[0]} and {same[1]} read the same (case, spacing or end punctuation); "
                        "make them distinct", ""))


def _patch(ix, info) -> list[tuple]:
    out = list(info.diags)
    for concepts, statements, chain, line, col in info.examples:
        for cid in concepts:
            if not ix.is_concept(cid):
                out.append((info.path, line, col, ERROR, "missing-trace",
                            f"patch example traces concept {quote(cid)}, which does not exist", ""))
        for sid in statements:
            if ix.statement(sid) is None:
                out.append((info.path, line, col, ERROR, "missing-trace",
                            f"patch example traces statement {quote(sid)}, which does not exist", ""))
        if chain and not ix.is_chain(chain):
            out.append((info.path, line, col, ERROR, "missing-trace",
                        f"patch example traces chain {quote(chain)}, which does not exist", ""))
    return out

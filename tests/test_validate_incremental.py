"""Incremental validation gives exactly the diagnostics of a cold run.

Three layers: (1) the per-file checks over the index agree with the pre-incremental checks
(tests/reference_kb.py) on random KBs; (2) the index updated file by file agrees with one
built from scratch, over random edit sequences; (3) the CLI's incremental runs, with their
SQLite state, agree with `--no-cache` runs in a real git repo, after every kind of edit.
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3

import pytest

from pwd_git.git import hash_blob
from pwd_git.kb.diagnostics import Diagnostic
from pwd_git.kb.facts import extract, resolve
from pwd_git.kb.index import Index, NeedFull, check_records, recheck
from pwd_git.kb.loader import Domain
from pwd_git.kb.parse import classify, parse
from pwd_git.kb.validate import validate
from tests import reference_kb
from tests.conftest import concept, git, run_cli, write

# -- random KBs ---------------------------------------------------------------------------------

IDS = ["a", "b", "c", "d", "e", "f", "g"]
PREDICATES = ["is part of", "has color", "links to", "odd verb"]
TERMS = ["alpha", "Alphas", "beta", "B.E.T.A", "gamma", "delta", "Delta!", "eps"]


def _sid(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(["Not A Step", "x.y.z", "zz.is-part-of.a"])
    if rng.random() < 0.6:  # likely to exist: see concept_text
        return f"{rng.choice(IDS[:4])}.is-part-of.{rng.choice(IDS[:4])}"
    return f"{rng.choice(IDS)}.{rng.choice(PREDICATES).replace(' ', '-')}.{rng.choice([*IDS, 'blue'])}"


def concept_text(rng: random.Random, cid: str) -> str:
    roll = rng.random()
    if roll < 0.03:
        return "id: [unclosed\n"
    if roll < 0.05:
        return "- just\n- a list\n"
    lines = []
    if rng.random() < 0.9:
        lines.append(f"id: {rng.choice([cid, cid, cid, rng.choice(IDS), 'Bad_Id'])}")
    lines.append("term: 42" if rng.random() < 0.05 else f"term: {rng.choice([*TERMS, cid])}")
    lines += ["type: thing", f"definition: The {cid} concept."]
    if rng.random() < 0.3:
        lines.append(f"aliases: [{', '.join(rng.sample(TERMS, rng.randint(1, 2)))}]")
    rels = []
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        rel = [f"  - predicate: {rng.choice([PREDICATES[0], *PREDICATES])}"]
        if rng.random() < 0.7:
            rel.append(f"    object: {rng.choice([*IDS[:4], *IDS, 'nowhere', 'a1'])}")
        else:
            rel.append(f"    value: {rng.choice(['blue', 'red', 3])}")
        if rng.random() < 0.1:
            rel.append(f"    id: {_sid(rng)}")
        rels += rel
    if rels:
        lines += ["relations:", *rels]
    return "\n".join(lines) + "\n"


def chain_text(rng: random.Random, chid: str, known: list[str] = ()) -> str:
    roll = rng.random()
    if roll < 0.4 and known:  # statements that exist, in random order: broken or not
        steps = [rng.choice(known) for _ in range(rng.randint(1, 3))]
    elif roll < 0.7:  # a connected path over likely statements
        nodes = [rng.choice(IDS[:4]) for _ in range(rng.randint(2, 4))]
        steps = [f"{x}.is-part-of.{y}" for x, y in itertools.pairwise(nodes)]
    else:
        steps = [_sid(rng) for _ in range(rng.randint(1, 3))]
    lines = [f"id: {rng.choice([chid, chid, chid, rng.choice(IDS)])}", f"title: chain {chid}",
             f"split: {rng.choice(['test', 'test', 'train'])}", "steps:", *(f"  - {s}" for s in steps)]
    if rng.random() < 0.2:
        lines += ["items:", "  - question: Which?", "    choices: [x, y]", f"    answer: {rng.choice([0, 1, 2])}"]
    return "\n".join(lines) + "\n"


def patch_text(rng: random.Random) -> str:
    concepts = json.dumps(rng.sample([*IDS, "ghost"], rng.randint(0, 2)))
    statements = json.dumps([_sid(rng) for _ in range(rng.randint(0, 2))])
    chain = rng.choice(["null", "ch1", "ch2", "a"])
    return (f"examples:\n  - traces: {{concepts: {concepts}, statements: {statements}, chain: {chain}}}\n"
            "    messages: [{role: user, content: q}, {role: assistant, content: a}]\n")


def config_text(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return "predicates: [oops\n"
    functional = rng.choice(["true", "false"])
    holdout = rng.sample([*IDS, "a.is-part-of.b", "ghost"], rng.randint(0, 2))
    text = f"name: random\nbuild: {{holdout: {json.dumps(holdout)}}}\n"
    if rng.random() < 0.8:
        text += f"predicates:\n  is part of: {{functional: false}}\n  has color: {{functional: {functional}}}\n"
        if rng.random() < 0.5:
            text += "  links to: {}\n"
    return text


def known_sids(files: dict[str, str]) -> list[str]:
    return sorted(check_records(records_of(files)).index.statement_ids()) if files else []


def random_file(rng: random.Random, files: dict[str, str]) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.55:
        cid = rng.choice(IDS)
        folder = rng.choice(["concepts", "concepts", "concepts/sub"])
        return f"{folder}/{cid}.yaml", concept_text(rng, cid)
    if roll < 0.85:
        chid = rng.choice(["ch1", "ch2", "ch3", "a"])
        return f"chains/{chid}.yaml", chain_text(rng, chid, known_sids(files))
    return f"patches/p{rng.randint(1, 3)}.yaml", patch_text(rng)


def random_kb(rng: random.Random) -> dict[str, str]:
    files: dict[str, str] = {}
    for _ in range(rng.randint(3, 14)):
        path, text = random_file(rng, files)
        files[path] = text
    if rng.random() < 0.95:
        files["pwd.yaml"] = config_text(rng)
    return files


def random_edit(rng: random.Random, files: dict[str, str]) -> dict[str, str | None]:
    """{path: new text or None (deleted)}: one to three edits of any kind."""
    edits: dict[str, str | None] = {}
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        roll = rng.random()
        existing = sorted(p for p in files if p not in edits)
        if roll < 0.3 or not existing:
            path, text = random_file(rng, files)
            edits[path] = text
        elif roll < 0.5:
            edits[rng.choice(existing)] = None
        elif roll < 0.6 and existing != ["pwd.yaml"]:  # rename: same bytes, new path
            old = rng.choice([p for p in existing if p != "pwd.yaml"])
            edits[old] = None
            folder = old.rsplit("/", 1)[0]
            edits[f"{folder}/{rng.choice([*IDS, 'ch1', 'ch2'])}.yaml"] = files[old]
        elif roll < 0.65:
            edits["pwd.yaml"] = config_text(rng) if rng.random() < 0.9 else None
        else:
            path = rng.choice(existing)
            if path.startswith("concepts/"):
                text = concept_text(rng, path.rsplit("/", 1)[1][:-5])
            elif path.startswith("chains/"):
                text = chain_text(rng, path.rsplit("/", 1)[1][:-5], known_sids(files))
            elif path.startswith("patches/"):
                text = patch_text(rng)
            else:
                text = config_text(rng)
            edits[path] = text
    return edits


def records_of(files: dict[str, str]) -> dict[str, tuple[str, dict]]:
    out = {}
    for path, text in files.items():
        raw = text.encode()
        out[path] = (hash_blob(raw), parse(classify(path), raw))
    return out


def info_of(path: str, text: str):
    kind = classify(path)
    return resolve(path, kind, extract(kind, parse(kind, text.encode())))


def engine(files: dict[str, str]) -> list[Diagnostic]:
    return [Diagnostic(*d) for d in check_records(records_of(files)).diagnostics]


def reference(files: dict[str, str]) -> list[Diagnostic]:
    return reference_kb.assemble(records_of(files))[1]


# -- (1) the per-file checks agree with the reference --------------------------------------------

@pytest.mark.parametrize("seed", range(300))
def test_checks_agree_with_the_reference_on_random_kbs(seed):
    files = random_kb(random.Random(seed))
    assert engine(files) == reference(files)


def test_random_kbs_exercise_every_diagnostic():
    """The generator must reach every code, or the agreement above proves little."""
    codes = set()
    for seed in range(300):
        codes.update(d.code for d in reference(random_kb(random.Random(seed))))
    assert codes >= {"yaml", "schema", "missing-config", "duplicate-id", "id-mismatch", "duplicate-statement",
                     "missing-object", "functional-conflict", "missing-step", "broken-chain", "bad-answer",
                     "missing-trace", "missing-holdout", "orphan-concept", "untested-statement",
                     "near-duplicate-term", "undeclared-predicate", "unused-items"}, codes


def test_hints_name_the_closest_id():
    files = {"pwd.yaml": "name: x\n", "concepts/alpha.yaml": concept("alpha"),
             "concepts/b.yaml": concept("b", relations="- predicate: is part of\n  object: alpah")}
    [diag] = [d for d in engine(files) if d.code == "missing-object"]
    assert diag.message.endswith("(did you mean 'alpha'?)")
    assert engine(files) == reference(files)


# -- (2) the index updated file by file agrees with one built from scratch -----------------------

def _apply(files: dict[str, str], ix: Index, per_file: dict, edits: dict[str, str | None]) -> tuple[Index, dict, bool]:
    changes = {}
    for path, text in edits.items():
        old = info_of(path, files[path]) if path in files else None
        new = info_of(path, text) if text is not None else None
        if old is not None or new is not None:
            changes[path] = (old, new)
        if text is None:
            files.pop(path, None)
        else:
            files[path] = text
    try:
        dirty = ix.apply(changes)
    except NeedFull:
        checked = check_records(records_of(files))
        return checked.index, dict(checked.per_file), True
    per_file.update(recheck(ix, dirty))
    for path in list(per_file):
        if path not in files and path != "pwd.yaml":
            assert not per_file.pop(path)
    return ix, per_file, False


@pytest.mark.parametrize("seed", range(150))
def test_incremental_index_agrees_with_a_cold_one(seed):
    rng = random.Random(1000 + seed)
    files = random_kb(rng)
    checked = check_records(records_of(files))
    ix, per_file = checked.index, dict(checked.per_file)
    incremental = 0
    for step in range(12):
        ix, per_file, full = _apply(files, ix, per_file, random_edit(rng, files))
        incremental += not full
        cold = check_records(records_of(files))
        got = sorted(d for diags in per_file.values() for d in diags)
        assert got == cold.diagnostics, f"seed {seed} step {step}"
        assert ix.counts == cold.index.counts, f"seed {seed} step {step}"
        assert [Diagnostic(*d) for d in got] == reference(files)
    assert incremental  # most edits take the incremental path


# -- (3) the CLI with its stored state agrees with --no-cache -----------------------------------

def check_both(root, expect_mode: str | None = None):
    domain = Domain.find(root)
    warm = validate(domain)
    cold = validate(domain, use_cache=False)
    assert warm.diagnostics == cold.diagnostics
    assert (warm.summary, warm.files) == (cold.summary, cold.files)
    if expect_mode:
        assert warm.mode == expect_mode
    return warm


def test_cli_runs_are_incremental_and_exact_after_every_kind_of_edit(domain):
    root = domain
    assert check_both(root).mode == "cold"
    assert check_both(root).mode == "warm"

    # A new concept that nothing references: one file.
    write(root, {"concepts/d.yaml": concept("d", relations="- predicate: is part of\n  object: a")})
    check_both(root, "incremental")
    # Break a reference by deleting its target, then restore it.
    text = (root / "concepts/c.yaml").read_text()
    (root / "concepts/c.yaml").unlink()
    report = check_both(root, "incremental")
    assert {d.code for d in report.errors} == {"missing-object", "missing-step"} or report.errors
    write(root, {"concepts/c.yaml": text})
    assert not check_both(root, "incremental").errors
    # Rename a concept (file and id): references to the old id break.
    (root / "concepts/b.yaml").rename(root / "concepts/bee.yaml")
    bee = (root / "concepts/bee.yaml").read_text().replace("id: b\n", "id: bee\n")
    (root / "concepts/bee.yaml").write_text(bee)
    assert check_both(root, "incremental").errors
    # Fix the reference in a.yaml, and the chain.
    (root / "concepts/a.yaml").write_text((root / "concepts/a.yaml").read_text().replace("object: b", "object: bee"))
    chain = (root / "chains/a-to-c.yaml").read_text()
    (root / "chains/a-to-c.yaml").write_text(chain.replace("a.is-part-of.b", "a.is-part-of.bee").replace(
        "b.is-part-of.c", "bee.is-part-of.c"))
    assert not check_both(root, "incremental").errors
    # A duplicate id in another folder, then remove the first owner: the second takes over.
    write(root, {"concepts/sub/c.yaml": concept("c", relations="- predicate: has color\n  value: red")})
    assert any(d.code == "duplicate-id" for d in check_both(root, "incremental").errors)
    (root / "concepts/c.yaml").unlink()
    check_both(root, "incremental")
    # Same content at a new path (a rename git would detect): nothing to parse.
    (root / "concepts/sub/c.yaml").rename(root / "concepts/c.yaml")
    check_both(root, "incremental")
    # A patch tracing a missing statement; then a whole folder goes.
    write(root, {"patches/p.yaml": "examples:\n  - traces: {statements: [bee.is-part-of.nowhere]}\n"
                                   "    messages: [{role: user, content: q}, {role: assistant, content: a}]\n"})
    assert any(d.code == "missing-trace" for d in check_both(root, "incremental").errors)
    for path in (root / "patches").iterdir():
        path.unlink()
    (root / "patches").rmdir()
    check_both(root, "incremental")
    # pwd.yaml changes reach every file: a full re-check (still no re-parse of the others).
    (root / "pwd.yaml").write_text((root / "pwd.yaml").read_text() + "  links to: {functional: false}\n")
    check_both(root, "full")
    # The last test chain goes: every untested-statement lint flips.
    (root / "chains/a-to-c.yaml").unlink()
    check_both(root, "full")
    assert check_both(root).mode == "warm"


@pytest.mark.parametrize("seed", range(6))
def test_cli_random_edit_sequences(tmp_path, seed):
    rng = random.Random(seed)
    root = tmp_path / "dom"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    files = random_kb(rng)
    files.setdefault("pwd.yaml", "name: random\n")
    write(root, files)
    check_both(root)
    modes = set()
    for _ in range(10):
        for path, text in random_edit(rng, files).items():
            if path == "pwd.yaml" and text is None:
                continue
            if text is None:
                (root / path).unlink(missing_ok=True)
                files.pop(path, None)
            else:
                write(root, {path: text})
                files[path] = text
        modes.add(check_both(root).mode)
    assert "incremental" in modes


# -- the stored state: corrupt, outdated, concurrent -------------------------------------------

def _cache(root):
    return root / ".git/pwd/cache/validate.sqlite"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bad-row", "wrong-key", "missing-table"])
def test_a_damaged_cache_means_a_cold_run(domain, damage):
    assert validate(Domain.find(domain)).mode == "cold"
    db = _cache(domain)
    if damage == "garbage":
        db.write_bytes(b"this is not a database" * 100)
    elif damage == "truncated":
        db.write_bytes(db.read_bytes()[:3000])
    else:
        con = sqlite3.connect(db)
        if damage == "bad-row":
            con.execute("UPDATE meta SET v = x'00ff' WHERE k = 'result'")
        elif damage == "wrong-key":
            con.execute("UPDATE meta SET v = x'e9' WHERE k = 'key'")
        else:
            con.execute("DROP TABLE files")
        con.commit()
        con.close()
    (domain / "concepts/a.yaml").write_text((domain / "concepts/a.yaml").read_text() + "aliases: [ay]\n")
    res = run_cli("validate", cwd=domain)
    assert res.code == 0, res.output
    assert "Traceback" not in res.output
    assert res.out.splitlines()[-1].startswith("ok: 0 error(s)")
    assert validate(Domain.find(domain)).mode == "warm"  # the cache was rebuilt


def test_an_edit_within_the_timestamp_granularity_is_seen(domain):
    """Stamps taken right after a write are not trusted later (git's 'racy clean' files)."""
    path = domain / "concepts/a.yaml"
    import os

    assert validate(Domain.find(domain)).mode == "cold"
    before = os.stat(path)
    path.write_text(path.read_text().replace("term: a", "term: 7"))  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime
    report = validate(Domain.find(domain))
    assert [d.code for d in report.errors] == ["schema"], report.diagnostics

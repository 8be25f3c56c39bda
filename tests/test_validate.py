"""`git pwd validate`: exit codes, JSON output, PATHS, --rev, the parse cache and lints."""

from __future__ import annotations

import json
import re

import pytest

import pwd_git.kb.parse as parse_module
import pwd_git.kb.yamlsafe as yamlsafe
from pwd_git.kb.loader import Domain, load_worktree
from pwd_git.model.settings import train_settings
from tests.conftest import concept, git, run_cli, snapshot, write

BROKEN_A = "id: a\nterm: 42\ntype: thing\ndefinition: The a concept.\nrelations:\n  - predicate: is part of\n    object: b\n"


def diagnostics(res) -> list[dict]:
    assert res.out.lstrip().startswith("{"), res.output
    return json.loads(res.out)["diagnostics"]


def test_clean_domain_exits_0_with_summary(domain):
    res = run_cli("validate", cwd=domain)
    assert res.code == 0, res.output
    assert res.out.strip() == "ok: 0 error(s), 0 warning(s) in 5 files (3 concepts, 3 statements, 1 chains)"
    assert res.err == ""


def test_validate_from_a_subfolder_finds_the_domain(domain):
    res = run_cli("validate", cwd=domain / "concepts")
    assert res.code == 0, res.output
    assert "3 concepts" in res.out


def test_json_format_structure(domain):
    res = run_cli("validate", "--format", "json", cwd=domain)
    assert res.code == 0, res.output
    data = json.loads(res.out)
    assert set(data) == {"ok", "summary", "errors", "warnings", "diagnostics"}
    assert data["ok"] is True and data["errors"] == 0 and data["warnings"] == 0 and data["diagnostics"] == []
    assert data["summary"] == {"concepts": 3, "statements": 3, "chains": 1, "test_chains": 1, "patch_examples": 0}


def test_json_format_reports_each_diagnostic_with_location(domain):
    (domain / "concepts/a.yaml").write_text(BROKEN_A)
    res = run_cli("validate", "--format", "json", cwd=domain)
    assert res.code == 1
    data = json.loads(res.out)
    assert data["ok"] is False and data["errors"] == 1
    [diag] = data["diagnostics"]
    assert diag == {"path": "concepts/a.yaml", "line": 2, "col": 1, "severity": "error", "code": "schema",
                    "message": "expected string, got integer 42", "json_path": "$.term"}


def test_text_format_is_compiler_style(domain):
    (domain / "concepts/a.yaml").write_text(BROKEN_A)
    res = run_cli("validate", cwd=domain)
    assert res.code == 1
    first, verdict = res.out.strip().splitlines()
    assert first == "concepts/a.yaml:2:1: error: expected string, got integer 42 at $.term [schema]"
    assert verdict.startswith("FAILED: 1 error(s), 0 warning(s)")


def test_paths_narrow_the_diagnostics_shown(domain):
    (domain / "concepts/a.yaml").write_text(BROKEN_A)
    write(domain, {"chains/bad.yaml": "id: bad\ntitle: bad\nsplit: test\nsteps:\n  - a.is-part-of.nowhere\n"})

    everything = diagnostics(run_cli("validate", "--format", "json", cwd=domain))
    assert {d["path"] for d in everything} == {"concepts/a.yaml", "chains/bad.yaml"}

    only_a = run_cli("validate", "--format", "json", "concepts/a.yaml", cwd=domain)
    assert only_a.code == 1
    assert {d["path"] for d in diagnostics(only_a)} == {"concepts/a.yaml"}

    only_chains = run_cli("validate", "--format", "json", "chains", cwd=domain)
    assert only_chains.code == 1
    assert {d["path"] for d in diagnostics(only_chains)} == {"chains/bad.yaml"}

    clean_file = run_cli("validate", "concepts/b.yaml", cwd=domain)
    assert clean_file.code == 0, clean_file.output
    assert "error:" not in clean_file.out

    # A path relative to the current directory, from inside the domain.
    from_sub = run_cli("validate", "--format", "json", "a.yaml", cwd=domain / "concepts")
    assert {d["path"] for d in diagnostics(from_sub)} == {"concepts/a.yaml"}


def test_paths_still_check_references_across_the_whole_kb(domain):
    # Deleting c breaks b's relation: asking only about b must still report it.
    (domain / "concepts/c.yaml").unlink()
    res = run_cli("validate", "concepts/b.yaml", cwd=domain)
    assert res.code == 1
    assert re.search(r"^concepts/b\.yaml:\d+:\d+: error: .*'c', which does not exist", res.out, re.M), res.out


def test_path_outside_the_domain_is_a_usage_error(domain, tmp_path):
    res = run_cli("validate", str(tmp_path), cwd=domain)
    assert res.code == 2
    assert "outside the domain" in res.err
    assert "Traceback" not in res.output


@pytest.mark.parametrize("args", [("concepts/nope.yaml",), ("no-such-folder",), ("concepts/a.yaml", "chains/typo.yaml"),
                                  ("--rev", "HEAD", "concepts/nope.yaml")])
def test_path_that_does_not_exist_is_a_usage_error(domain, args):
    (domain / "concepts/a.yaml").write_text(BROKEN_A)  # a real error that a typo must not hide
    res = run_cli("validate", *args, cwd=domain)
    assert res.code == 2, res.output
    missing = next(a for a in args if "nope" in a or "no-such" in a or "typo" in a)
    assert res.err.startswith(f"error: {missing}: no such file or folder"), res.err
    assert "hint:" in res.err and "Traceback" not in res.output
    assert res.out == ""


def test_path_that_exists_only_in_the_revision_is_fine_with_rev(domain):
    (domain / "concepts/c.yaml").unlink()
    res = run_cli("validate", "--rev", "HEAD", "concepts/c.yaml", cwd=domain)
    assert res.code == 0, res.output
    assert run_cli("validate", "concepts/c.yaml", cwd=domain).code == 2


def test_untracked_files_are_left_out_on_request_and_under_pre_commit(domain, monkeypatch):
    write(domain, {"concepts/scratch.yaml": "id: scratch\nterm: 42\n"})  # untracked and broken
    assert run_cli("validate", cwd=domain).code == 1
    only_tracked = run_cli("validate", "--no-untracked", cwd=domain)
    assert only_tracked.code == 0, only_tracked.output
    assert "in 5 files" in only_tracked.out
    monkeypatch.setenv("PRE_COMMIT", "1")  # pre-commit commits only what git tracks
    assert run_cli("validate", cwd=domain).code == 0
    assert run_cli("validate", "--untracked", cwd=domain).code == 1
    assert run_cli("validate", "--no-cache", cwd=domain).code == 0
    git(domain, "add", "concepts/scratch.yaml")  # staged: part of the commit, so checked
    assert run_cli("validate", cwd=domain).code == 1
    monkeypatch.delenv("PRE_COMMIT")
    assert run_cli("validate", cwd=domain).code == 1


def test_rev_validates_a_commit_without_checkout(domain):
    (domain / "concepts/a.yaml").write_text(BROKEN_A)
    git(domain, "commit", "-qam", "break a")
    good_tree = (domain / "concepts/a.yaml").read_text().replace("term: 42", "term: a")
    (domain / "concepts/a.yaml").write_text(good_tree)  # fixed in the worktree only
    before, status = snapshot(domain), git(domain, "status", "--porcelain")

    at_head = run_cli("validate", "--rev", "HEAD", cwd=domain)
    assert at_head.code == 1
    assert "concepts/a.yaml:2:1: error: expected string, got integer 42" in at_head.out

    assert run_cli("validate", "--rev", "HEAD~1", cwd=domain).code == 0
    worktree = run_cli("validate", cwd=domain)
    assert worktree.code == 0, worktree.output

    assert snapshot(domain) == before
    assert git(domain, "status", "--porcelain") == status == "M concepts/a.yaml"


def test_rev_sees_committed_files_that_the_worktree_lacks(domain):
    (domain / "concepts/c.yaml").unlink()
    assert run_cli("validate", cwd=domain).code == 1
    assert run_cli("validate", "--rev", "HEAD", cwd=domain).code == 0


class ParseSpy:
    """Counts calls of the loader's parse (the expensive, cached step) and the bytes parsed."""

    def __init__(self, monkeypatch):
        self.calls: list[bytes] = []
        real = parse_module.parse

        def spy(kind, raw):
            self.calls.append(raw)
            return real(kind, raw)

        monkeypatch.setattr(parse_module, "parse", spy)

    def take(self) -> list[bytes]:
        calls, self.calls = self.calls, []
        return calls


def test_cache_reparses_only_the_changed_file(domain, monkeypatch):
    spy = ParseSpy(monkeypatch)
    assert run_cli("validate", cwd=domain).code == 0
    assert len(spy.take()) == 5  # pwd.yaml, three concepts, one chain
    assert (domain / ".git/pwd/cache").is_dir()

    assert run_cli("validate", cwd=domain).code == 0
    assert spy.take() == []  # nothing changed: nothing parsed

    original = (domain / "concepts/b.yaml").read_bytes()
    changed = original.replace(b"The b concept", b"The b concept, changed")
    (domain / "concepts/b.yaml").write_bytes(changed)
    assert run_cli("validate", cwd=domain).code == 0
    assert spy.take() == [changed]

    (domain / "concepts/b.yaml").write_bytes(original)  # back to a content already parsed
    assert run_cli("validate", cwd=domain).code == 0
    assert spy.take() == []

    assert run_cli("validate", "--rev", "HEAD", cwd=domain).code == 0
    assert spy.take() == []  # committed blobs have the same OIDs as the worktree files

    assert run_cli("validate", "--no-cache", cwd=domain).code == 0
    assert len(spy.take()) == 5


def test_cache_is_not_fooled_by_an_edit_that_keeps_the_size(domain, monkeypatch):
    assert run_cli("validate", cwd=domain).code == 0
    path = domain / "concepts/a.yaml"
    path.write_text(path.read_text().replace("term: a", "term: 7"))  # same size, new content
    res = run_cli("validate", cwd=domain)
    assert res.code == 1
    assert "concepts/a.yaml:2:1: error: expected string, got integer 7" in res.out


def test_corrupt_cache_is_ignored(domain):
    assert run_cli("validate", cwd=domain).code == 0
    for cached in (domain / ".git/pwd/cache").iterdir():
        cached.write_bytes(b"not a pickle")
    res = run_cli("validate", cwd=domain)
    assert res.code == 0, res.output
    assert "3 concepts" in res.out


LINTS = {
    "orphan-concept": {"concepts/lonely.yaml": concept("lonely")},
    "near-duplicate-term": {
        # 'b' vs 'B.' differ by case and punctuation only
        "concepts/bee.yaml": "id: bee\nterm: B.\ntype: thing\ndefinition: Another b.\n"
                             "relations:\n  - predicate: is part of\n    object: c\n",
    },
    "unused-items": {
        "chains/b-to-c.yaml": "id: b-to-c\ntitle: b to c\nsplit: train\nsteps: [b.is-part-of.c]\nitems:\n"
                              "  - {question: What holds b?, choices: [c, a], answer: 0}\n",
    },
    "uninformative-definition": {  # the definition restates the term: nothing to learn or probe
        "concepts/abu-dhabi.yaml": "id: abu-dhabi\nterm: Abu Dhabi\ntype: thing\ndefinition: Abu Dhabi is Abu Dhabi.\n"
                                   "relations:\n  - predicate: is part of\n    object: c\n",
    },
    "untested-statement": {
        "concepts/d.yaml": concept("d", relations="- predicate: is part of\n  object: e"),
        "concepts/e.yaml": concept("e"),
    },
}


@pytest.mark.parametrize("code", sorted(LINTS))
def test_lints_are_warnings_and_strict_makes_them_fail(domain, code):
    write(domain, LINTS[code])
    res = run_cli("validate", "--format", "json", cwd=domain)
    assert res.code == 0, res.output
    data = json.loads(res.out)
    assert data["ok"] is True and data["errors"] == 0
    warned = [d for d in data["diagnostics"] if d["code"] == code]
    assert warned, data["diagnostics"]
    assert all(d["severity"] == "warning" for d in data["diagnostics"])
    assert all(d["line"] >= 1 and d["path"].startswith(("concepts/", "chains/")) for d in warned)

    text = run_cli("validate", cwd=domain)
    assert text.code == 0
    assert re.search(rf"^(concepts|chains)/\S+\.yaml:\d+:\d+: warning: .*\[{code}\]$", text.out, re.M), text.out
    assert text.out.splitlines()[-1].startswith("ok: 0 error(s)")

    strict = run_cli("validate", "--strict", cwd=domain)
    assert strict.code == 1
    assert strict.out.splitlines()[-1].startswith("FAILED: 0 error(s)")
    strict_json = json.loads(run_cli("validate", "--strict", "--format", "json", cwd=domain).out)
    assert strict_json["ok"] is False


@pytest.mark.parametrize(("definition", "warned"), [
    ("Processing.", True), ("processing", True), ("Processing is processing.", True),
    ("Processing of raw input into records.", False), ("A step that turns input into records.", False)])
def test_a_definition_that_only_restates_the_term_is_warned_at_its_line(domain, definition, warned):
    write(domain, {"concepts/processing.yaml": f"id: processing\nterm: Processing\ntype: thing\n"
                                               f"definition: {definition}\nrelations:\n"
                                               "  - predicate: is part of\n    object: c\n"})
    data = json.loads(run_cli("validate", "--format", "json", cwd=domain).out)
    found = [(d["path"], d["line"]) for d in data["diagnostics"] if d["code"] == "uninformative-definition"]
    assert found == ([("concepts/processing.yaml", 4)] if warned else [])


def test_strict_passes_a_clean_domain(domain):
    assert run_cli("validate", "--strict", cwd=domain).code == 0


@pytest.mark.parametrize(("written", "value"), [
    ("1e-4", 1e-4), ("1e9", 1e9), ("5E-3", 5e-3), ("-1e-4", -1e-4), ("+1e3", 1e3), ("1.5e3", 1.5e3), ("2.e-2", 2e-2),
    ("'1e-4'", "1e-4"), ('"1e9"', "1e9"), ("1e", "1e"), ("e9", "e9"), ("1e-4x", "1e-4x"), ("0.5", 0.5), ("7", 7),
])
def test_exponent_numbers_are_numbers_as_users_write_them(written, value):
    # YAML 1.1 reads 1e-4 (no dot) as a string; every other reader, and every user, as a number.
    data = yamlsafe.load(f"lr: {written}\n".encode()).data
    assert data == {"lr": value} and type(data["lr"]) is type(value)


def test_a_learning_rate_written_1e_4_is_valid_and_used(domain):
    config = (domain / "pwd.yaml").read_text() + "train: {lr: 1e-4, replay_ratio: 5E-1}\n"
    write(domain, {"pwd.yaml": config})
    res = run_cli("validate", cwd=domain)
    assert res.code == 0, res.output
    settings = train_settings(load_worktree(Domain.find(domain))[0].config, domain)
    assert (settings.lr, settings.replay_ratio) == (1e-4, 0.5)
    write(domain, {"pwd.yaml": config.replace("1e-4", "'1e-4'")})  # quoted, it is the string it says
    res = run_cli("validate", cwd=domain)
    assert res.code == 1 and "expected number, got string '1e-4' at $.train.lr" in res.out, res.output


@pytest.mark.parametrize("mix", ["0", "1.5", "'half'"])
def test_a_continue_mix_outside_0_to_1_is_a_pwd_yaml_error(domain, mix):
    write(domain, {"pwd.yaml": (domain / "pwd.yaml").read_text() + f"train: {{mode: continue, continue_mix: {mix}}}\n"})
    before = snapshot(domain)
    res = run_cli("validate", cwd=domain)
    assert res.code == 1 and re.search(r"^pwd\.yaml:\d+:\d+: error: .*\$\.train\.continue_mix", res.out, re.M), res.output
    assert snapshot(domain) == before


def test_continue_mix_defaults_to_averaging_and_is_read_as_written(domain):
    config = (domain / "pwd.yaml").read_text()
    assert train_settings({"train": {}}, domain).continue_mix < 1
    write(domain, {"pwd.yaml": config + "train: {mode: continue, continue_mix: 1}\n"})
    assert run_cli("validate", cwd=domain).code == 0
    assert train_settings(load_worktree(Domain.find(domain))[0].config, domain).continue_mix == 1


def _named(cid: str, term: str, aliases: list[str]) -> str:
    """A linked concept (no orphan warning) with a term and aliases in any script."""
    return (f"id: {cid}\nterm: {json.dumps(term)}\ntype: thing\ndefinition: The {cid} concept.\n"
            f"aliases: {json.dumps(aliases, ensure_ascii=False)}\nrelations:\n  - predicate: is part of\n    object: c\n")


def _near_duplicates(domain) -> list[dict]:
    res = run_cli("validate", "--format", "json", cwd=domain)
    assert res.code == 0, res.output
    return [d for d in diagnostics(res) if d["code"] == "near-duplicate-term"]


def test_aliases_in_different_scripts_are_not_near_duplicates(domain):
    # 'bridge' in Bulgarian, Amharic, Kazakh, Korean and Hindi (marks kept): no two of them are alike
    write(domain, {"concepts/bg.yaml": _named("bg", "bridge", ["мост"]),
                   "concepts/am.yaml": _named("am", "am bridge", ["ድልድይ"]),
                   "concepts/kk.yaml": _named("kk", "kk bridge", ["көпір"]),
                   "concepts/ko.yaml": _named("ko", "ko bridge", ["다리"]),
                   "concepts/hi.yaml": _named("hi", "hi bridge", ["पुल"]),
                   "concepts/hi2.yaml": _named("hi2", "hi2 bridge", ["पल"])})
    assert _near_duplicates(domain) == []


def test_a_plural_is_an_english_plural_not_any_trailing_es(domain):
    """Debian's libgles-dev and libgl-dev are two packages: "es" after "l" is no plural. Cells and
    cell, boxes and box, classes and class are one name each (and "class" keeps its own "s")."""
    write(domain, {"concepts/gles.yaml": _named("gles", "libgles-dev", []),
                   "concepts/gl.yaml": _named("gl", "libgl-dev", []),
                   "concepts/cells.yaml": _named("cells", "cells", []), "concepts/cell.yaml": _named("cell", "cell", []),
                   "concepts/boxes.yaml": _named("boxes", "boxes", []), "concepts/box.yaml": _named("box", "box", []),
                   "concepts/classes.yaml": _named("classes", "classes", []),
                   "concepts/klass.yaml": _named("klass", "class", [])})
    found = {d["path"] for d in _near_duplicates(domain)}
    assert found & {"concepts/gles.yaml", "concepts/gl.yaml"} == set(), found
    assert len(found & {"concepts/cells.yaml", "concepts/cell.yaml"}) == 1, found
    assert len(found & {"concepts/boxes.yaml", "concepts/box.yaml"}) == 1, found
    assert len(found & {"concepts/classes.yaml", "concepts/klass.yaml"}) == 1, found


def test_near_duplicates_are_found_in_every_script_and_aliases_are_called_aliases(domain):
    write(domain, {"concepts/bg.yaml": _named("bg", "bridge", ["Мост"]),
                   "concepts/bg2.yaml": _named("bg2", "other bridge", ["мост!"]),
                   "concepts/ko.yaml": _named("ko", "ko bridge", ["다리"]),
                   "concepts/ko2.yaml": _named("ko2", "ko other", ["\u1103\u1161\u1105\u1175 "]),  # decomposed jamo
                   "concepts/wide.yaml": _named("wide", "ＢＲＩＤＧＥ", [])})  # full-width
    found = {(d["path"], d["message"].split(";")[0]) for d in _near_duplicates(domain)}
    assert found == {
        ("concepts/bg2.yaml", "alias 'мост!' of 'bg2' nearly duplicates 'bg' at concepts/bg.yaml:5"),
        ("concepts/ko2.yaml", "alias '\u1103\u1161\u1105\u1175 ' of 'ko2' nearly duplicates 'ko' at concepts/ko.yaml:5"),
        ("concepts/wide.yaml", "term 'ＢＲＩＤＧＥ' of 'wide' nearly duplicates 'bg' at concepts/bg.yaml:2"),
    }, found


def test_a_near_duplicate_name_is_reported_at_its_own_line(domain):
    """The warning and the name it duplicates are at the term's or alias's line, not the id's: a
    concept file often opens with a comment, and a long alias list puts the name far below."""
    write(domain, {"concepts/omega.yaml": "# the letter\nid: omega\nterm: Greek Capital Letter Omega\ntype: thing\n"
                                          "definition: A letter.\naliases:\n  - Omega letter\n  - \u03a9\n"
                                          "relations:\n  - predicate: is part of\n    object: c\n",
                   "concepts/ohm.yaml": "# the sign\nid: ohm\ntype: thing\ndefinition: A unit sign.\n"
                                        "term: Ohm Sign\naliases: [Ohm, \u2126]\n"
                                        "relations:\n  - predicate: is part of\n    object: c\n"})
    [diag] = _near_duplicates(domain)
    assert (diag["path"], diag["line"], diag["col"]) == ("concepts/omega.yaml", 8, 5), diag
    assert diag["message"].startswith("alias 'Ω' of 'omega' nearly duplicates 'ohm' at concepts/ohm.yaml:6;"), diag


def test_values_in_other_scripts_get_statement_ids_of_their_own(domain):
    """The id slug keeps [a-z0-9] only: Japanese or Russian values all slugged to 'x', so a
    concept with two cities in kanji was refused as stating one statement twice."""
    write(domain, {"concepts/c.yaml": concept("c", relations="""
        - predicate: has color
          value: blue
        - predicate: is part of
          value: 東京
        - predicate: is part of
          value: 大阪
        - predicate: is part of
          value: Москва
        - predicate: is part of
          value: Córdoba
        - predicate: is part of
          value: Cordoba
        - predicate: is part of
          value: The Big Apple 🍎
    """),
                   "chains/c-city.yaml": "id: c-city\ntitle: t\nsplit: train\nsteps: [b.is-part-of.c, c.is-part-of.cordoba]\n"})
    res = run_cli("validate", "--format", "json", cwd=domain)
    assert res.code == 0, res.output
    kb, _ = load_worktree(Domain.find(domain), use_cache=False)
    ids = sorted(s for s in kb.statements if s.startswith("c.is-part-of."))
    assert len(ids) == 6 and ids[0].startswith("c.is-part-of.cordoba"), ids
    assert "c.is-part-of.the-big-apple" in ids, "a value whose letters are ASCII keeps its slug"
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)*", s) for s in ids), ids


def test_hand_written_choices_that_read_the_same_are_an_error(domain):
    """uniqueItems catches [b, b]; [Beta, beta] or ['b', 'b.'] is the same answer twice to a
    reader, so the item tests nothing."""
    write(domain, {"chains/a-to-c.yaml": """
        id: a-to-c
        title: a to c
        split: test
        steps: [a.is-part-of.b, b.is-part-of.c]
        items:
          - question: Which thing holds a?
            choices: [B, c, " b. ", d]
            answer: 0
          - question: Which thing holds b?
            choices: [c, b, d]
            answer: 0
    """})
    res = run_cli("validate", "--format", "json", cwd=domain)
    assert res.code == 1
    found = [(d["line"], d["message"]) for d in diagnostics(res) if d["code"] == "same-choices"]
    assert found == [(7, "choices 0 and 2 read the same (case, spacing or end punctuation); make them distinct")]


def test_an_answer_outside_the_choices_points_at_its_answer_line(domain):
    """The error names the line to edit (`answer:`), not the item's first line."""
    write(domain, {"chains/a-to-c.yaml": """
        id: a-to-c
        title: a to c
        split: test
        steps: [a.is-part-of.b, b.is-part-of.c]
        items:
          - question: Which thing holds b?
            choices: [c, b, d]
            answer: 3
    """})
    res = run_cli("validate", "--format", "json", cwd=domain)
    assert res.code == 1
    found = [(d["path"], d["line"]) for d in diagnostics(res) if d["code"] == "bad-answer"]
    assert found == [("chains/a-to-c.yaml", 8)]


def test_different_values_with_one_derived_id_are_told_apart_and_an_explicit_id_resolves_them(domain):
    # '*.pl' and '*.PL' (and 'C' and 'C++') are different facts whose derived ids fold to one slug
    relations = "- predicate: has glob pattern\n  value: '*.pl'\n- predicate: has glob pattern\n  value: '*.PL'"
    write(domain, {"concepts/c.yaml": concept("c", relations=relations)})
    before = snapshot(domain)
    res = run_cli("validate", cwd=domain)
    assert res.code == 1 and res.out.count("duplicate-statement") == 1, res.output
    (line,) = [x for x in res.out.splitlines() if "duplicate-statement" in x]
    assert line.startswith("concepts/c.yaml:8:") and "concepts/c.yaml:6" in line and "*.pl" in line
    assert "`id:`" in line and "remove one" not in line
    assert snapshot(domain) == before
    write(domain, {"concepts/c.yaml": concept("c", relations=relations + "\n  id: c.has-glob-pattern.pl-upper")})
    res = run_cli("validate", cwd=domain)
    assert res.code == 0, res.output
    kb, _ = load_worktree(Domain.find(domain))
    assert {kb.statements[s].value for s in ("c.has-glob-pattern.pl", "c.has-glob-pattern.pl-upper")} == {"*.pl", "*.PL"}


def test_the_same_fact_stated_twice_is_still_told_to_remove_one(domain):
    relations = "- predicate: has color\n  value: blue\n- predicate: has color\n  value: blue"
    write(domain, {"concepts/c.yaml": concept("c", relations=relations)})
    res = run_cli("validate", cwd=domain)
    assert res.code == 1 and "is already stated at concepts/c.yaml:6; remove one" in res.out, res.output

"""Bad input: every failure is one clear `path:line:col` message, a non-zero exit code, no
traceback, and an unchanged repository (DESIGN.md, "Errors and bad input")."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import pwd_git.kb.yamlsafe as yamlsafe
from tests.conftest import concept, git, run_cli, snapshot, write

LINKED = "relations:\n  - predicate: is part of\n    object: a\n"  # keeps a new concept from being an orphan


def x_concept(head: str = "id: x\nterm: x\ntype: thing\ndefinition: The x concept.\n", tail: str = LINKED) -> str:
    return head + tail


def assert_one_error(res, rel: str, where: str, message: str, *, code: int = 1) -> str:
    """Exactly one error line, for `rel` at `where` (line:col), containing `message`."""
    assert res.code == code, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if ": error:" in line]
    assert len(errors) == 1, res.output
    assert errors[0].startswith(f"{rel}:{where}: error: "), errors[0]
    assert message in errors[0], errors[0]
    return errors[0]


def validate_unchanged(root: Path, *args: str, cwd: Path | None = None):
    """Run validate and assert it left every file (and git's view of them) as it was."""
    before = snapshot(root)
    status = git(root, "status", "--porcelain") if (root / ".git").exists() else None
    res = run_cli("validate", *args, cwd=cwd or root)
    assert snapshot(root) == before
    if status is not None:
        assert git(root, "status", "--porcelain") == status
    return res


# (case id, file, content, "line:col", message fragment)
FILE_CASES = [
    ("malformed-yaml", "concepts/x.yaml", "id: x\nterm: x\n  bad: indent\n", "3:6",
     "malformed YAML: mapping values are not allowed"),
    ("unclosed-quote", "concepts/x.yaml", 'id: x\nterm: "unterminated\ntype: thing\n', "4:1",
     "while scanning a quoted scalar at line 2, column 7"),
    ("unclosed-flow", "concepts/x.yaml", "id: x\naliases: [a, b\ntype: thing\n", "3:5", "expected ',' or ']'"),
    ("tab-indent", "concepts/x.yaml", "id: x\n\tterm: x\n", "2:1", "tab character"),
    ("two-documents", "concepts/x.yaml", "id: x\n---\nid: y\n", "2:1", "expected a single document"),
    ("top-level-list", "concepts/x.yaml", "- id: x\n", "1:1", "expected a mapping at the top level, got list"),
    ("wrong-type-term", "concepts/a.yaml", concept("a", relations="- predicate: is part of\n  object: b").replace(
        "term: a", "term: 42"), "2:1", "expected string, got integer 42 at $.term"),
    ("wrong-type-aliases", "concepts/x.yaml", x_concept(tail="aliases: just-one\n" + LINKED), "5:1",
     "expected array, got string 'just-one' at $.aliases"),
    ("wrong-type-object", "concepts/x.yaml", x_concept(tail=LINKED.replace("object: a", "object: 3")), "7:5",
     "expected string, got integer 3"),
    ("wrong-type-split", "chains/x-chain.yaml", "id: x-chain\ntitle: x\nsplit: maybe\nsteps: [a.is-part-of.b]\n", "3:1",
     "expected one of test, train, got 'maybe'"),
    ("missing-key", "concepts/x.yaml", "id: x\nterm: x\ntype: thing\n" + LINKED, "1:1", "missing required key 'definition'"),
    ("unknown-key", "concepts/x.yaml", x_concept(tail="colour: red\n" + LINKED), "5:1", "unknown key 'colour'"),
    ("unknown-nested-key", "concepts/x.yaml", x_concept(tail=LINKED + "    weight: 3\n"), "8:5", "unknown key 'weight'"),
    ("duplicate-key", "concepts/x.yaml", "id: x\nterm: x\nterm: y\ntype: thing\ndefinition: d\n" + LINKED, "3:1",
     "duplicate key 'term' (first defined at line 2)"),
    ("duplicate-nested-key", "concepts/x.yaml", x_concept(tail=LINKED + "    object: b\n"), "8:5", "duplicate key 'object'"),
    ("not-utf8", "concepts/x.yaml", b"id: x\nterm: caf\xe9\ntype: thing\n", "2:10", "not UTF-8 (byte 0xe9)"),
    ("utf16", "concepts/x.yaml", x_concept().encode("utf-16"), "1:1", "not UTF-8"),
    ("control-char", "concepts/x.yaml", x_concept().replace("term: x", "term: x\x00y"), "2:8",
     "control characters are not allowed"),
    ("empty", "concepts/x.yaml", "", "1:1", "file is empty"),
    ("blank", "concepts/x.yaml", "\n  \n\n", "1:1", "file is empty"),
    ("comment-only", "concepts/x.yaml", "# nothing here yet\n", "1:1", "holds no YAML document"),
    ("anchor-alias", "concepts/x.yaml", "id: x\nterm: &t x\ntype: thing\ndefinition: *t\n" + LINKED, "2:7",
     "anchors and aliases"),
    ("merge-key", "concepts/x.yaml", "id: x\n<<: {term: x}\ntype: thing\ndefinition: d\n", "2:1", "merge keys"),
    ("complex-key", "concepts/x.yaml", "id: x\n? [a, b]\n: c\n", "2:3", "mapping keys must be plain strings"),
    ("custom-tag", "concepts/x.yaml", x_concept().replace("term: x", "term: !shout x"), "2:7", "YAML tag '!shout'"),
    ("binary-tag", "concepts/x.yaml", x_concept().replace("term: x", "term: !!binary aGk="), "2:7", "binary"),
    ("set-tag", "concepts/x.yaml", x_concept().replace("term: x", "term: !!set {a, b}"), "2:7", "set"),
    ("tag-on-root", "concepts/x.yaml", "--- !!python/object:os.PathLike\n" + x_concept(), "1:5", "python/object"),
    ("id-with-slash", "concepts/x.yaml", x_concept().replace("id: x", "id: y/x"), "1:1", "ids are lower-case"),
    ("id-with-dotdot", "concepts/x.yaml", x_concept().replace("id: x", "id: ../x"), "1:1", "got '../x'"),
    ("id-upper-case", "concepts/x.yaml", x_concept().replace("id: x", "id: X"), "1:1", "got 'X'"),
    ("chain-id-dotdot", "chains/x-chain.yaml", "id: ../x\ntitle: x\nsplit: test\nsteps: [a.is-part-of.b]\n", "1:1", "got '../x'"),
    ("object-with-dotdot", "concepts/x.yaml", x_concept(tail=LINKED.replace("object: a", "object: ../a")), "7:5",
     "got '../a'"),
    ("step-upper-case", "chains/x-chain.yaml", "id: x-chain\ntitle: x\nsplit: test\nsteps:\n  - A.is-part-of.b\n", "5:5",
     "a step is a statement id"),
    ("bad-config", "pwd.yaml", "name: tiny\npredicates: [is part of]\n", "2:1", "expected object, got list"),
    ("bad-predicate-declaration", "pwd.yaml", "name: tiny\npredicates:\n  is part of: true\n", "3:3",
     "expected object, got boolean"),
    ("config-yaml-error", "pwd.yaml", "name: tiny\n predicates: {}\n", "2:12", "mapping values are not allowed"),
]


@pytest.mark.parametrize("mode", ["worktree", "rev"])
@pytest.mark.parametrize(("rel", "content", "where", "message"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_bad_file_is_one_clear_error(domain, mode, rel, content, where, message):
    path = domain / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    args: tuple[str, ...] = ()
    if mode == "rev":  # the same bytes read from the object store, not from the worktree
        git(domain, "add", "-A")
        git(domain, "commit", "-qm", "bad data")
        previous = subprocess.run(["git", "show", f"HEAD~1:{rel}"], cwd=domain, capture_output=True)
        if previous.returncode == 0:
            path.write_bytes(previous.stdout)  # the worktree holds the good version again
        else:
            path.unlink()
        assert run_cli("validate", cwd=domain).code == 0
        args = ("--rev", "HEAD")
    res = validate_unchanged(domain, *args)
    assert_one_error(res, rel, where, message)
    assert res.out.splitlines()[-1].startswith("FAILED: 1 error(s)")


def test_clean_file_cases_are_really_valid_without_the_defect(domain):
    """The fixtures above differ from valid files only by their defect."""
    write(domain, {"concepts/x.yaml": x_concept(),
                   "chains/x-chain.yaml": "id: x-chain\ntitle: x\nsplit: test\nsteps: [a.is-part-of.b]\n"})
    res = run_cli("validate", cwd=domain)
    assert res.code == 0, res.output
    assert "0 error(s), 0 warning(s)" in res.out


def test_json_output_carries_the_same_location(domain):
    write(domain, {"concepts/x.yaml": "id: x\nterm: x\n  bad: indent\n"})
    res = run_cli("validate", "--format", "json", cwd=domain)
    assert res.code == 1
    [diag] = json.loads(res.out)["diagnostics"]
    assert (diag["path"], diag["line"], diag["col"], diag["code"]) == ("concepts/x.yaml", 3, 6, "yaml")


class LoaderSpy:
    """Records the size of every text handed to libyaml."""

    def __init__(self, monkeypatch):
        self.sizes: list[int] = []
        real = yamlsafe._Loader
        sizes = self.sizes

        class Spy(real):
            def __init__(self, stream):
                sizes.append(len(stream))
                super().__init__(stream)

        monkeypatch.setattr(yamlsafe, "_Loader", Spy)


def test_50_mb_file_is_rejected_quickly_without_parsing(domain, monkeypatch):
    spy = LoaderSpy(monkeypatch)
    big = domain / "concepts/x.yaml"
    with open(big, "wb") as fh:
        fh.write(b"id: x\nterm: x\ntype: thing\ndefinition: >-\n")
        line = b"  " + b"lorem ipsum dolor sit amet " * 3 + b"\n"
        fh.write(line * (50 * 1024 * 1024 // len(line)))
    assert big.stat().st_size > 50_000_000
    started = time.perf_counter()
    res = validate_unchanged(domain)
    elapsed = time.perf_counter() - started
    assert_one_error(res, "concepts/x.yaml", "1:1", "over the 1 MiB limit")
    assert "52.4 MB" in res.out or "MB" in res.out
    assert elapsed < 5, f"took {elapsed:.1f}s"
    assert spy.sizes and max(spy.sizes) < yamlsafe.MAX_FILE_BYTES  # the other files were parsed, not this one


def _run_subprocess(cwd: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process: a crash (segfault) or a hang cannot take pytest down."""
    return subprocess.run([sys.executable, "-m", "pwd_git", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_alias_bomb_returns_promptly(domain):
    write(domain, {"concepts/x.yaml": BILLION_LAUGHS})
    before = snapshot(domain)
    started = time.perf_counter()
    proc = _run_subprocess(domain, "validate")
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"took {elapsed:.1f}s"
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    [error] = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert error.startswith("concepts/x.yaml:1:4: error: anchors and aliases"), error
    assert snapshot(domain) == before


@pytest.mark.parametrize(("opener", "depth"), [("[", 100), ("[", 100_000), ("{", 100_000)])
def test_deep_nesting_is_an_error_not_a_crash(domain, depth, opener):
    # libyaml's composer recurses on the C stack: 100k '[' used to segfault the interpreter,
    # a few hundred raised RecursionError ("internal error"). Newer libyaml stops at 1000 levels
    # by itself, scanning ahead of the events our 64-level check counts: ours must still come first.
    closer = {"[": "]", "{": "}"}[opener]
    write(domain, {"concepts/x.yaml": "id: x\nterm: " + opener * depth + closer * depth + "\n"})
    proc = _run_subprocess(domain, "validate")
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stdout + proc.stderr
    [error] = [line for line in proc.stdout.splitlines() if ": error:" in line]
    # level 1 is the top-level mapping, so the 64th opener (column 7 + 63) is level 65
    assert error.startswith("concepts/x.yaml:2:70: error: nesting is deeper than 64 levels"), error
    assert error.endswith("[yaml]"), error


def test_depth_check_finds_our_limit_before_libyamls(monkeypatch):
    """The depth check itself, for a document libyaml refuses while looking ahead."""
    text = "id: x\nterm: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(yamlsafe.YamlError) as caught:
        yamlsafe.load(text.encode())
    assert (caught.value.line, caught.value.col) == (2, 70)
    assert caught.value.message.startswith("nesting is deeper than 64 levels")


def test_a_syntax_error_in_a_large_file_is_still_libyamls_and_located(domain):
    """Past the depth pre-scan (over 1000 indicators), an ordinary error keeps its own position."""
    relations = "".join(f"  - predicate: is part of\n    object: a{i}\n" for i in range(400))
    write(domain, {"concepts/x.yaml": x_concept(tail="relations:\n" + relations + "  bad: [1, 2\n")})
    res = run_cli("validate", cwd=domain)
    errors = [line for line in res.output.splitlines() if ": error:" in line]
    assert res.code == 1 and len(errors) == 1, res.output
    assert errors[0].startswith("concepts/x.yaml:806:"), errors[0]
    assert "nesting" not in errors[0]


def test_block_nesting_is_limited_too(domain):
    write(domain, {"concepts/x.yaml": "id: x\nterm:\n" + "".join(" " * i + "- \n" for i in range(1, 80)) + " " * 80 + "x\n"})
    res = run_cli("validate", cwd=domain)
    assert_one_error(res, "concepts/x.yaml", "66:65", "nesting is deeper than 64 levels")


PAYLOADS = {
    "apply-os-system": "term: !!python/object/apply:os.system ['touch {marker}']",
    "apply-mapping-form": "term: !!python/object/apply:subprocess.call {{args: [[touch, '{marker}']]}}",
    "new-os-system": "term: !!python/object/new:os.system ['touch {marker}']",
    "name": "term: !!python/name:os.system",
    "module": "term: !!python/module:os",
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_python_tags_never_construct_objects(domain, tmp_path, name):
    marker = tmp_path / "executed"
    payload = PAYLOADS[name].format(marker=marker)
    write(domain, {"concepts/x.yaml": x_concept().replace("term: x", payload)})
    res = validate_unchanged(domain)
    assert_one_error(res, "concepts/x.yaml", "2:7", "is not allowed in KB files")
    assert "tag:yaml.org,2002:python/" in res.out
    assert not marker.exists()


def test_payload_is_live_under_an_unsafe_loader(tmp_path):
    """Guard for the test above: the same payload really runs code when loaded unsafely."""
    marker = tmp_path / "executed"
    yaml.unsafe_load(PAYLOADS["apply-os-system"].format(marker=marker))
    assert marker.exists()


def test_relation_to_a_missing_concept(domain):
    write(domain, {"concepts/c.yaml": concept("c", relations="- predicate: has color\n  value: blue\n"
                                                             "- predicate: is part of\n  object: nowhere")})
    res = validate_unchanged(domain)
    assert_one_error(res, "concepts/c.yaml", "8:5", "relation 'is part of' points at concept 'nowhere', which does not exist")


def test_relation_typo_gets_a_suggestion(domain):
    write(domain, {"concepts/mitochondrion.yaml": concept("mitochondrion", relations="- predicate: is part of\n  object: a"),
                   "concepts/c.yaml": concept("c", relations="- predicate: is part of\n  object: mitochondrian")})
    res = validate_unchanged(domain)
    assert_one_error(res, "concepts/c.yaml", "6:5", "'mitochondrian', which does not exist (did you mean 'mitochondrion'?)")


@pytest.mark.parametrize(("written", "meant"), [("is prt of", "is part of"), ("has colour", "has color")])
def test_an_undeclared_predicate_near_a_declared_one_gets_a_suggestion(domain, written, meant):
    write(domain, {"concepts/c.yaml": concept("c", relations=f"- predicate: {written}\n  value: blue")})
    res = validate_unchanged(domain)
    warnings = [line for line in res.output.splitlines() if "[undeclared-predicate]" in line]
    assert res.code == 0 and len(warnings) == 1, res.output
    assert warnings[0].startswith("concepts/c.yaml:") and f"(did you mean '{meant}'?)" in warnings[0], warnings[0]


def test_chain_whose_steps_do_not_connect(domain):
    write(domain, {"chains/bad.yaml": "id: bad\ntitle: bad\nsplit: test\nsteps:\n  - a.is-part-of.b\n  - c.has-color.blue\n"})
    res = validate_unchanged(domain)
    line = assert_one_error(res, "chains/bad.yaml", "6:5", "steps do not connect")
    assert "step 1 ends at b but step 2 starts at 'c'" in line


def test_chain_step_that_is_no_statement(domain):
    write(domain, {"chains/bad.yaml": "id: bad\ntitle: bad\nsplit: test\nsteps:\n  - a.is-part-of.c\n"})
    res = validate_unchanged(domain)
    assert_one_error(res, "chains/bad.yaml", "5:5", "chain step 1 'a.is-part-of.c' is not a statement in the KB")


def test_two_concepts_with_one_id_in_different_folders(domain):
    write(domain, {"concepts/more/b.yaml": concept("b", relations="- predicate: is part of\n  object: c")})
    res = validate_unchanged(domain)
    assert_one_error(res, "concepts/more/b.yaml", "1:5", "id 'b' is already used by concepts/b.yaml:1")


def test_id_that_does_not_match_the_file_stem(domain):
    write(domain, {"concepts/x.yaml": x_concept().replace("id: x", "id: y")})
    res = validate_unchanged(domain)
    assert_one_error(res, "concepts/x.yaml", "1:5", "id 'y' must equal the file stem 'x'")


def test_functional_predicate_with_two_objects(domain):
    config = (domain / "pwd.yaml").read_text().replace("predicates:\n", "predicates:\n  is located in: {functional: true}\n")
    write(domain, {
        "pwd.yaml": config,
        "concepts/x.yaml": x_concept(tail=LINKED + "  - predicate: is located in\n    object: b\n"
                                          "  - predicate: is located in\n    object: c\n"),
    })
    res = validate_unchanged(domain)
    line = assert_one_error(res, "concepts/x.yaml", "10:5", "'is located in' is declared functional")
    assert "'x' already has 'b' at concepts/x.yaml:8" in line and "a second object 'c'" in line


def test_functional_predicate_with_one_object_repeated_is_fine(domain):
    write(domain, {"concepts/x.yaml": x_concept(tail=LINKED + "  - predicate: has color\n    value: red\n")})
    assert run_cli("validate", cwd=domain).code == 0


def test_not_a_git_repo(tmp_path):
    root = tmp_path / "loose"
    write(root, {"pwd.yaml": "name: loose\n", "concepts/a.yaml": concept("a")})
    before = snapshot(root)
    res = run_cli("validate", cwd=root)
    assert res.code == 2
    assert "Traceback" not in res.output
    assert res.err.startswith(f"error: not a git repository: {root}")
    assert "hint:" in res.err
    assert snapshot(root) == before
    assert not (root / ".git").exists()


def test_repo_without_a_domain(tmp_path):
    git(tmp_path, "init", "-q")
    res = validate_unchanged(tmp_path)
    assert res.code == 2
    assert "error: no pwd.yaml found" in res.err and "Traceback" not in res.output


@pytest.mark.parametrize("rev", ["nope", "HEAD~5", "0123456789abcdef0123456789abcdef01234567"])
def test_unknown_rev(domain, rev):
    res = validate_unchanged(domain, "--rev", rev)
    assert res.code == 2
    assert res.err.startswith(f"error: unknown revision: {rev!r}")
    assert "Traceback" not in res.output


def test_rev_in_a_repo_without_commits(tmp_path):
    root = tmp_path / "fresh"
    write(root, {"pwd.yaml": "name: fresh\n"})
    git(root, "init", "-q")
    res = validate_unchanged(root, "--rev", "HEAD")
    assert res.code == 2
    assert "unknown revision: 'HEAD'" in res.err


def test_debug_flag_shows_the_traceback_for_usage_errors(tmp_path):
    res = run_cli("--debug", "validate", cwd=tmp_path)
    assert res.code == 2
    assert "Traceback" in res.err


# --- revisions that look like options, and what messages quote --------------------------------

OPTION_REVS = [
    ("log", "--", "--output=OUT"),
    ("log", "--", "-p"),
    ("show", "--", "--output=OUT"),
    ("diff", "--", "--output=OUT"),
    ("validate", "--rev=--output=OUT"),
    ("build", "--rev=--output=OUT"),
    ("test", "--rev=-x"),
    ("test", "--baseline=--output=OUT"),
    ("diagnose", "--", "--output=OUT"),
    ("bisect", "--", "--output=OUT", "HEAD"),
]


@pytest.mark.parametrize("args", OPTION_REVS, ids=" ".join)
def test_a_revision_starting_with_a_dash_is_refused(domain, args):
    before = snapshot(domain)
    res = run_cli(*args, cwd=domain)
    assert res.code == 2, res.output
    assert res.err.startswith("error: invalid revision"), res.err
    assert "starts with '-'" in res.err and "Traceback" not in res.output
    assert not (domain / "OUT").exists()
    assert snapshot(domain) == before


def test_log_of_an_unknown_range_is_our_message(domain):
    res = run_cli("log", "nope..HEAD", cwd=domain)
    assert res.code == 2
    assert res.err.startswith("error: unknown revision or range: 'nope..HEAD'"), res.err
    assert "fatal:" not in res.err


def test_log_in_a_repo_without_commits(tmp_path):
    root = tmp_path / "fresh"
    write(root, {"pwd.yaml": "name: fresh\n"})
    git(root, "init", "-q", "-b", "main")
    for args in (("log",), ("log", "--format", "json")):
        res = run_cli(*args, cwd=root)
        assert res.code == 2, res.output
        assert res.err.startswith("error: no commits yet on branch 'main'"), res.err
        assert "fatal:" not in res.err and "git log" not in res.err and "Traceback" not in res.output


@pytest.mark.parametrize("where", ["bare", "dot-git"])
def test_a_git_dir_without_a_work_tree(domain, tmp_path, where):
    if where == "bare":
        cwd = tmp_path / "origin.git"
        git(tmp_path, "clone", "-q", "--bare", str(domain), str(cwd))
    else:
        cwd = domain / ".git"
    before = snapshot(cwd)
    for args in (("validate",), ("log",), ("init",)):
        res = run_cli(*args, cwd=cwd)
        assert res.code == 2, res.output
        assert res.err.startswith(f"error: not a git work tree: {cwd} is inside the "), res.err
        assert "hint:" in res.err and "Traceback" not in res.output
    assert snapshot(cwd) == before  # init wrote nothing, and no repository was nested inside


HUGE_ID = "x" * 10_000


def test_messages_quote_a_huge_id_or_value_cut_short(domain):
    huge_value = "v" * 1_000_000  # under the 1 MiB file limit, so the file is read and checked
    write(domain, {
        "concepts/c.yaml": concept("c", relations=f"- predicate: has color\n  value: blue\n"
                                                  f"- predicate: has color\n  value: {huge_value}"),
        "chains/long.yaml": f"id: long\ntitle: long\nsplit: train\nsteps:\n  - {HUGE_ID}\n  - b.is-part-of.c\n",
        f"concepts/{'y' * 200}.yaml": f"id: {HUGE_ID}\nterm: y\ntype: thing\ndefinition: The y concept.\n",
    })
    res = validate_unchanged(domain)
    assert res.code == 1 and "Traceback" not in res.output
    errors = [line for line in res.out.splitlines() if ": error:" in line]
    codes = {line.rsplit("[", 1)[1] for line in errors}
    assert {"functional-conflict]", "missing-step]", "id-mismatch]"} <= codes, res.out
    for line in res.output.splitlines():
        assert len(line) < 600, line[:300]
    assert "'" + "v" * 80 + "'…" in res.out and "'" + "x" * 80 + "'…" in res.out


def test_an_unknown_huge_revision_is_quoted_cut_short(domain):
    res = run_cli("validate", "--rev", HUGE_ID, cwd=domain)
    assert res.code == 2
    assert res.err.startswith("error: unknown revision: '" + "x" * 80 + "'…"), res.err[:200]
    assert len(res.err) < 400


@pytest.mark.parametrize("name", ["a..b", "with space", "-x", "ends.lock", "@{-1}"])
def test_patch_refuses_an_invalid_branch_name_before_doing_anything(domain, name):
    branches = git(domain, "branch", "--list")
    res = run_cli("patch", f"--branch={name}", cwd=domain)
    assert res.code == 2, res.output
    assert res.err.startswith("error: invalid branch name: " + repr(name)), res.err
    assert "already exists" not in res.err and "Traceback" not in res.output
    assert git(domain, "branch", "--list") == branches
    assert not (domain / ".git" / "pwd" / "patches").exists()


def test_a_file_that_does_not_parse_is_the_first_error_a_verb_shows(tmp_path, monkeypatch):
    """spoke.yaml breaks, so the chain's step spoke.is-part-of.wheel "is not a statement" (with a
    did-you-mean): the verbs that refuse an invalid KB show the YAML error first, the cause."""
    from tests.conftest import small_domain

    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = small_domain(tmp_path / "bikes")
    spoke = (root / "concepts/parts/spoke.yaml").read_text()
    write(root, {"concepts/parts/spoke.yaml": spoke.replace("    object: wheel", "   object: wheel\n  - [")})
    git(root, "commit", "-qam", "broken yaml")
    result = run_cli("train", cwd=root)
    assert result.code == 1 and "Traceback" not in result.output, result.output
    listed = [line for line in result.err.splitlines() if ": error: " in line]
    assert len(listed) >= 2 and listed[0].startswith("concepts/parts/spoke.yaml:") and listed[0].endswith("[yaml]"), listed
    assert any(line.startswith("chains/spoke-to-bike.yaml:") for line in listed[1:])


def test_errors_only_shows_the_error_among_many_warnings(domain):
    """The pre-commit hook's view: 170 untested-statement warnings drowned one missing-object error."""
    files = {f"concepts/w{i}.yaml": concept(f"w{i}", relations=f"- predicate: has color\n  value: c{i}") for i in range(6)}
    files["concepts/c.yaml"] = concept("c", relations="- predicate: is part of\n  object: nowhere")
    write(domain, files)
    full = validate_unchanged(domain)
    res = validate_unchanged(domain, "--errors-only")
    warned = len([line for line in full.output.splitlines() if ": warning: " in line])
    assert warned >= 6 and ": warning: " not in res.output, full.output
    assert_one_error(res, "concepts/c.yaml", "6:5", "'nowhere', which does not exist")
    assert f"1 error(s), {warned} warning(s)" in res.output
    strict = validate_unchanged(domain, "--errors-only", "--strict")  # warnings that fail are shown
    assert strict.code == 1 and len([line for line in strict.output.splitlines() if ": warning: " in line]) == warned


def test_many_warnings_of_one_kind_are_counted_not_listed(domain):
    """A real KB raised 523 untested-statement warnings: text output lists the first ten of a
    kind and counts the rest; every error, --all, --strict and json still list everything."""
    files = {f"concepts/w{i:02}.yaml": concept(f"w{i:02}", relations=f"- predicate: has color\n  value: c{i}")
             for i in range(14)}
    files["concepts/c.yaml"] = concept("c", relations="- predicate: is part of\n  object: nowhere")
    write(domain, files)
    res = validate_unchanged(domain)
    warned = [line for line in res.output.splitlines() if line.endswith("[untested-statement]")]
    total = json.loads(validate_unchanged(domain, "--format", "json").output)
    untested = [d for d in total["diagnostics"] if d["code"] == "untested-statement"]
    assert res.code == 1 and len(warned) == 10 and len(untested) >= 14, res.output
    assert f"... and {len(untested) - 10} more untested-statement warning(s)" in res.output
    assert any(line.startswith("concepts/c.yaml:6:5: error:") for line in res.output.splitlines())
    assert f"{total['warnings']} warning(s)" in res.output  # the summary counts all of them
    for flags in (("--all",), ("--strict",)):
        listed = validate_unchanged(domain, *flags).output
        assert len([line for line in listed.splitlines() if line.endswith("[untested-statement]")]) == len(untested)
        assert "more untested-statement" not in listed


def test_a_missing_steps_suggestion_continues_the_chain(domain):
    """Step 2 of a-to-c must start where step 1 ends (b): 'x.is-part-of.c' is the closest id, but
    following it would break the chain; 'b.is-part-of.d' continues it."""
    write(domain, {"concepts/b.yaml": concept("b"),
                   "concepts/x.yaml": concept("x", relations="- predicate: is part of\n  object: c")})
    res = validate_unchanged(domain)
    line = assert_one_error(res, "chains/a-to-c.yaml", "6:5", "chain step 2 'b.is-part-of.c' is not a statement")
    assert "did you mean" not in line, line
    write(domain, {"concepts/d.yaml": concept("d"),
                   "concepts/b.yaml": concept("b", relations="- predicate: is part of\n  object: d")})
    assert_one_error(validate_unchanged(domain), "chains/a-to-c.yaml", "6:5", "(did you mean 'b.is-part-of.d'?)")

"""One revision object (pwd_git/revision.py): a command loads a revision's KB once, and every
verb sees the same result for a commit through the one results store."""

from __future__ import annotations

import json

import pytest

from pwd_git.kb import assemble
from tests.conftest import concept, git, run_cli, small_domain, write


@pytest.fixture
def loads(monkeypatch):
    """Counts KB assemblies (the expensive part of a load: every load goes through it)."""
    counted = []
    real = assemble.assemble

    def counting(records, *args, **kwargs):
        counted.append(len(records))
        return real(records, *args, **kwargs)

    monkeypatch.setattr(assemble, "assemble", counting)
    return counted


@pytest.mark.parametrize("warm", [False, True], ids=["training", "model-cache-hit"])
def test_one_test_of_a_commit_loads_its_kb_once(tmp_path, monkeypatch, loads, warm):
    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = small_domain(tmp_path / "d", train="{epochs: 1}")
    if warm:
        assert run_cli("test", "--rev", "HEAD", "--no-record", cwd=root).code in (0, 1)
    loads.clear()
    result = run_cli("test", "--rev", "HEAD", cwd=root)
    assert result.code in (0, 1), result.output
    assert len(loads) == 1, loads


def test_log_shows_a_pwd_yaml_only_commit_its_own_result_or_none(tmp_path, monkeypatch):
    """A commit that changes only pwd.yaml's build settings has the parent's KB tree but not its
    build: `log` must not show the parent's numbers for it. A README-only commit still shows
    them (marked as reused), and once the pwd.yaml commit has its own result, log shows that."""
    from tests.histories import record_results

    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = small_domain(tmp_path / "d", train="{epochs: 1}")
    record_results(root, [git(root, "rev-parse", "HEAD")], lambda c, i: False)
    (root / "README.md").write_text("notes\n")
    git(root, "add", "README.md")
    git(root, "commit", "-qm", "docs only")
    config = (root / "pwd.yaml").read_text() + "build: {holdout: [wheel]}\n"
    (root / "pwd.yaml").write_text(config)
    git(root, "commit", "-qam", "hold out a concept")

    def rows():
        res = run_cli("log", "--format", "json", cwd=root)
        assert res.code == 0, res.output
        return {r["subject"]: r for r in json.loads(res.out)}

    def report_results() -> int:
        """The report shows the results log shows (a reused one too, labelled as such)."""
        res = run_cli("report", "-o", str(tmp_path / "site"), "--format", "json", cwd=root)
        assert res.code == 0, res.output
        return json.loads(res.out)["results"]

    before = rows()
    assert before["docs only"]["result"] is not None and before["docs only"]["reused_from"]
    assert before["hold out a concept"]["result"] is None and before["hold out a concept"]["reused_from"] is None
    assert report_results() == 2
    page = (tmp_path / "site/index.html").read_text()
    assert f"(result of {before['docs only']['reused_from'][:10]}, same KB and settings)" in page
    record_results(root, [git(root, "rev-parse", "HEAD")], lambda c, i: i["level"] == "L1")
    after = rows()["hold out a concept"]
    assert after["reused_from"] is None and after["result"]["metrics"]["levels"]["L1"]["acc"] == 0.0
    assert report_results() == 3


def test_test_compares_with_the_nearest_ancestor_with_a_result_by_default(tmp_path, monkeypatch):
    """No baseline configured: `test` gates on the nearest first-parent ancestor that has a result
    for the run key (a docs-only commit in between has none of its own), with the paired test."""
    from tests.histories import record_results

    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = small_domain(tmp_path / "d", train="{epochs: 1}")
    good = git(root, "rev-parse", "HEAD")
    record_results(root, [good], lambda c, i: False)
    (root / "README.md").write_text("notes\n")
    git(root, "add", "README.md")
    git(root, "commit", "-qm", "docs only")
    (root / "pwd.yaml").write_text((root / "pwd.yaml").read_text() + "build: {holdout: [wheel]}\n")
    assert run_cli("build", "-q", cwd=root).code == 0
    git(root, "commit", "-qam", "hold out a concept")
    record_results(root, [git(root, "rev-parse", "HEAD")], lambda c, i: True)

    gated = run_cli("test", "--rev", "HEAD", "--no-record", "--format", "json", cwd=root)
    report = json.loads(gated.out)
    assert gated.code == 1 and report["baseline"]["commit"] == good and not report["verdict"]["ok"], gated.output
    assert len(report["baseline"]["regressed"]) == report["metrics"]["n"]
    assert run_cli("test", "--rev", "HEAD", "--no-record", "--baseline", "none", cwd=root).code == 0
    (root / "pwd.yaml").write_text((root / "pwd.yaml").read_text().replace("test: {}", "test: {baseline: none}"))
    git(root, "commit", "-qam", "no gate")
    record_results(root, [git(root, "rev-parse", "HEAD")], lambda c, i: True)
    assert run_cli("test", "--rev", "HEAD", "--no-record", cwd=root).code == 0


def test_a_commit_that_changes_training_settings_is_gated_against_its_parent(tmp_path, monkeypatch):
    """A new run key (here: fewer epochs) has no result of its own among the ancestors, yet the
    default gate still compares it with what the parent scored on the same base model: a
    settings change that loses items fails `test` like a data change would."""
    from tests.histories import record_results

    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = small_domain(tmp_path / "d", train="{epochs: 2}")
    good = git(root, "rev-parse", "HEAD")
    record_results(root, [good], lambda c, i: False)
    (root / "pwd.yaml").write_text((root / "pwd.yaml").read_text().replace("epochs: 2", "epochs: 1"))
    git(root, "commit", "-qam", "cut the training budget")
    record_results(root, [git(root, "rev-parse", "HEAD")], lambda c, i: True)

    gated = run_cli("test", "--rev", "HEAD", "--no-record", "--format", "json", cwd=root)
    report = json.loads(gated.out)
    assert gated.code == 1 and report["baseline"]["commit"] == good, gated.output
    assert len(report["baseline"]["regressed"]) == report["metrics"]["n"]


def test_a_result_judged_again_against_a_nearer_baseline_is_recorded_so_log_agrees(tmp_path, monkeypatch):
    """C passed against B1; later its parent B2 gets a result (a bisect trained it) that C loses
    items against. `test` on C then fails against B2 and says "recorded": that must be true (a
    new line on C with the new verdict), `log` must show it even after a `cat_sort_uniq` merge
    sorted the note's lines, an unchanged verdict adds nothing, and --no-record says so."""
    from tests.histories import record_results

    monkeypatch.setenv("PWD_GIT_CACHE", str(tmp_path / "cache"))
    root = small_domain(tmp_path / "d", train="{epochs: 1}")
    commits = {}
    for name in ("B1", "B2", "C"):
        if name != "B1":
            (root / "README.md").write_text(f"{name}\n")
            git(root, "add", "README.md")
            git(root, "commit", "-qm", name)
        git(root, "tag", name)
        commits[name] = git(root, "rev-parse", "HEAD")
    record_results(root, [commits["B1"], commits["C"]], lambda c, i: True)  # nothing passes yet

    def note_lines() -> list[dict]:
        return [json.loads(line) for line in git(root, "notes", "--ref", "refs/notes/pwd/results", "show",
                                                 commits["C"]).splitlines()]

    def logged() -> dict:
        rows = json.loads(run_cli("log", "--format", "json", cwd=root).out)
        return next(r["result"] for r in rows if r["commit"] == commits["C"])

    first = run_cli("test", "--rev", "C", cwd=root)
    assert first.code == 0 and f"recorded on {commits['C'][:10]}" in first.out, first.output
    assert logged()["verdict"] == "pass" and logged()["baseline"]["commit"] == commits["B1"]
    lines = len(note_lines())

    record_results(root, [commits["B2"]], lambda c, i: False)  # B2, nearer to C, passes everything
    again = run_cli("test", "--rev", "C", cwd=root)
    assert again.code == 1, again.output
    assert f"recorded on {commits['C'][:10]} as its latest verdict (it was pass against {commits['B1'][:10]})" \
        in again.out, again.output
    assert len(note_lines()) == lines + 1
    latest = note_lines()[-1]
    assert latest["verdict"] == "fail" and latest["baseline"]["commit"] == commits["B2"]
    assert latest["failed"] and "metrics" in latest and latest["time"] > "2026-01-01"  # a complete line
    assert logged()["verdict"] == "fail"
    assert " fail " in next(line for line in run_cli("log", cwd=root).out.splitlines()
                            if line.startswith(commits["C"][:10]))

    body = "\n".join(sorted(git(root, "notes", "--ref", "refs/notes/pwd/results", "show", commits["C"]).splitlines(),
                            reverse=True)) + "\n"  # a merge sorts lines as text: put the newest first
    git(root, "notes", "--ref", "refs/notes/pwd/results", "add", "-f", "-m", body, commits["C"])
    assert logged()["verdict"] == "fail"

    same = run_cli("test", "--rev", "C", "--format", "json", cwd=root)
    assert same.code == 1 and json.loads(same.out)["recorded_on"] == commits["C"], same.output
    assert len(note_lines()) == lines + 1  # the note already says this

    other = run_cli("test", "--rev", "C", "--baseline", "B1", "--no-record", cwd=root)
    assert other.code == 0, other.output
    assert f"not recorded; the note on {commits['C'][:10]} says fail against {commits['B2'][:10]}" in other.out
    assert len(note_lines()) == lines + 1 and logged()["verdict"] == "fail"


def test_kb_trees_of_a_history_equal_kb_tree_at_each_commit(domain):
    """The batched KB tree (history, report) names every commit's KB as the one-commit reading
    does: files that are not KB files, executable bits, empty and non-YAML folders, symlinks, a
    file where a KB folder would be, a missing folder and a commit with no KB change."""
    import os

    from pwd_git.kb.loader import Domain, kb_tree_at, kb_trees

    def commit(message: str) -> None:
        git(domain, "add", "-A")
        git(domain, "commit", "-qm", message, "--allow-empty")

    write(domain, {"concepts/README.md": "notes\n", "concepts/notes/todo.txt": "later\n"})
    commit("non-KB files among the concepts")
    os.chmod(domain / "concepts/a.yaml", 0o755)
    write(domain, {"concepts/deep/er/d.yml": concept("d", relations="- predicate: is part of\n  object: a")})
    commit("an executable KB file and a nested .yml")
    os.symlink("a.yaml", domain / "concepts/e.yaml")
    commit("a symlink inside the KB")
    (domain / "concepts/e.yaml").unlink()
    write(domain, {"patches/p.yaml": "examples: []\n", "README.md": "top\n"})
    commit("patches")
    write(domain, {"README.md": "top, again\n"})
    commit("no KB change")
    git(domain, "rm", "-rq", "patches")
    write(domain, {"patches": "a file, not a folder\n"})
    commit("a file named patches")
    git(domain, "rm", "-rq", "chains")
    commit("no chains")
    dom = Domain.find(domain)
    commits = git(domain, "rev-list", "HEAD").split()
    batched = kb_trees(dom, commits)
    assert batched == {c: kb_tree_at(dom, c) for c in commits}
    no_chains, patches_file, same, patches, linked, nested, readme, base = (batched[c] for c in commits)
    assert base == readme and patches == same and patches_file == nested, "no KB file changed"
    assert len({base, nested, linked, patches, no_chains}) == 5

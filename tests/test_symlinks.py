"""Symlinks among the KB files (DESIGN.md, "Trust boundaries"): one that leaves the repository
is refused in the working tree and in commits alike, with one error at its path and exit 1;
one that stays inside reads as the file it leads to, in both."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import concept, git, run_cli, snapshot, write

SECRET = "TOP-SECRET-PHRASE-FROM-OUTSIDE"
OUTSIDE_ERROR = "error: symlink leads out of the repository"


def _outside(tmp_path: Path, domain: Path) -> Path:
    """A folder next to the repository holding a valid copy of every KB file, plus a secret."""
    out = tmp_path / "outside"
    for rel in ("pwd.yaml", "concepts/a.yaml", "concepts/b.yaml", "concepts/c.yaml", "chains/a-to-c.yaml"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(domain / rel, out / rel)
    (out / "concepts/x.yaml").write_text(concept("x", relations="- predicate: is part of\n  object: a").replace(
        "for tests.", f"for tests. {SECRET}"))
    (out / "patches").mkdir()
    (out / "patches/p.yaml").write_text(f"examples:\n  - {{text: {SECRET}, concepts: [a]}}\n")
    return out


def _link(domain: Path, rel: str, target: str) -> None:
    path = domain / rel
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def _commit_and_restore(domain: Path) -> None:
    """Commit the worktree as it is, then put the worktree back to the previous commit's files."""
    git(domain, "add", "-A")
    git(domain, "commit", "-qm", "links")
    for entry in ("pwd.yaml", "concepts", "chains", "patches"):
        path = domain / entry
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    git(domain, "checkout", "-q", "HEAD~1", "--", ".")
    git(domain, "clean", "-qfd")
    assert run_cli("validate", cwd=domain).code == 0


def _error_lines(res) -> list[str]:
    return [line for line in res.output.splitlines() if "error:" in line]


def _refused(res, rel: str, message: str) -> str:
    assert res.code == 1, res.output
    assert "Traceback" not in res.output and SECRET not in res.output
    [error] = _error_lines(res)
    assert error.startswith(f"{rel}: {message}"), error
    return error


# (link at, target relative to the link's folder, or absolute)
OUT_OF_REPO = {
    "concept-relative": ("concepts/x.yaml", "../../outside/concepts/x.yaml"),
    "concept-absolute": ("concepts/x.yaml", "{outside}/concepts/x.yaml"),
    "concept-nested": ("concepts/deep/x.yaml", "../../../outside/concepts/x.yaml"),
    "chain": ("chains/a-to-c.yaml", "../../outside/chains/a-to-c.yaml"),
    "patch": ("patches/p.yaml", "../../outside/patches/p.yaml"),
    "config": ("pwd.yaml", "../outside/pwd.yaml"),
    "kb-folder": ("concepts", "../outside/concepts"),
    "link-to-a-link": ("concepts/x.yaml", "../hop.yaml"),  # hop.yaml (in the repo) leads out
}


@pytest.mark.parametrize("case", sorted(OUT_OF_REPO))
def test_a_symlink_out_of_the_repo_is_refused_in_the_worktree_and_in_a_commit(domain, tmp_path, case):
    outside = _outside(tmp_path, domain)
    rel, target = OUT_OF_REPO[case]
    if case == "link-to-a-link":
        _link(domain, "hop.yaml", "../outside/concepts/x.yaml")
    _link(domain, rel, target.format(outside=outside))
    before = snapshot(domain)

    worktree = [_refused(run_cli(verb, *extra, cwd=domain), rel, OUTSIDE_ERROR)
                for verb, *extra in (("validate",), ("validate", "--no-cache"), ("build",))]
    assert not (domain / "shards").exists()  # nothing from outside reached the shards
    assert snapshot(domain) == before

    _commit_and_restore(domain)
    committed = [_refused(run_cli(*args, cwd=domain), rel, OUTSIDE_ERROR)
                 for args in (("validate", "--rev", "HEAD"), ("build", "--rev", "HEAD"))]
    assert not (domain / "shards").exists()
    assert len(set(worktree + committed)) == 1, worktree + committed  # the same error, word for word, from both


@pytest.mark.parametrize(("case", "target", "message"), [
    ("dangling", "nothing-here.yaml", "error: symlink leads to nothing"),
    ("folder", "../concepts", "error: symlink leads to a folder"),
    ("into-git", "../.git/config", "error: symlink leads"),  # out of the tree (worktree) / to nothing (commit)
])
def test_a_symlink_that_reads_differently_in_a_commit_is_refused_in_both(domain, case, target, message):
    _link(domain, "concepts/x.yaml", target)
    _refused(run_cli("validate", cwd=domain), "concepts/x.yaml", message)
    _commit_and_restore(domain)
    _refused(run_cli("validate", "--rev", "HEAD", cwd=domain), "concepts/x.yaml", message)


def test_a_symlink_inside_the_repo_reads_as_its_target_in_both(domain):
    shared = domain / "shared"
    shared.mkdir()
    (shared / "x.yaml").write_text(concept("x", relations="- predicate: is part of\n  object: a"))
    _link(domain, "concepts/x.yaml", "../shared/x.yaml")
    write(domain, {"concepts/y.yaml": concept("y", relations="- predicate: is part of\n  object: a")})  # distractors
    res = run_cli("validate", cwd=domain)
    assert res.code == 0 and "5 concepts" in res.out, res.output
    res = run_cli("build", "--format", "json", cwd=domain)
    assert res.code == 0, res.output
    built = json.loads(res.out)

    git(domain, "add", "-A")
    git(domain, "commit", "-qm", "linked concept")
    res = run_cli("validate", "--rev", "HEAD", cwd=domain)
    assert res.code == 0 and "5 concepts" in res.out, res.output
    res = run_cli("build", "--rev", "HEAD", "--format", "json", cwd=domain)
    assert res.code == 0, res.output
    from_commit = json.loads(res.out)
    assert from_commit["kb_tree"] == built["kb_tree"] and from_commit["build_key"] == built["build_key"]

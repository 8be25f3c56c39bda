"""`git pwd init`: scaffold a domain from a template, refuse to clobber, never re-init git."""

from __future__ import annotations

import json
import subprocess

import pytest

from pwd_git.resources import templates_dir
from tests.conftest import git, run_cli, snapshot, write

COMMON_FILES = {".pre-commit-config.yaml", ".gitattributes", ".gitignore", "pwd.yaml"}


def test_init_minimal_creates_a_valid_uncommitted_domain(tmp_path):
    target = tmp_path / "Thermo Dynamics"
    res = run_cli("init", str(target), "--template", "minimal", cwd=tmp_path)
    assert res.code == 0, res.output
    assert "Created minimal domain" in res.out

    assert (target / ".git").is_dir()
    names = {p.relative_to(target).as_posix() for p in target.rglob("*") if ".git" not in p.relative_to(target).parts[:1]}
    assert names >= COMMON_FILES | {"concepts", "chains", "patches"}
    assert "name: thermo-dynamics\n" in (target / "pwd.yaml").read_text()  # the placeholder is filled in
    assert "__DOMAIN_NAME__" not in "".join(p.read_text() for p in target.rglob("*.yaml") if ".git" not in p.parts)
    assert "git-pwd validate" in (target / ".pre-commit-config.yaml").read_text()

    # Nothing is committed, and the new domain validates cleanly.
    assert subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=target, capture_output=True).returncode != 0
    check = run_cli("validate", cwd=target)
    assert check.code == 0, check.output
    assert "0 error(s), 0 warning(s)" in check.out


def test_init_defaults_to_minimal_in_the_current_directory(tmp_path):
    res = run_cli("init", cwd=tmp_path)
    assert res.code == 0, res.output
    assert (tmp_path / "pwd.yaml").is_file() and (tmp_path / ".git").is_dir()
    assert not any((tmp_path / "concepts").glob("*.yaml"))


def test_init_example_is_a_complete_valid_domain(tmp_path):
    if not (templates_dir() / "example" / "pwd.yaml").is_file():
        pytest.fail("templates/example is missing")
    target = tmp_path / "demo"
    res = run_cli("init", "--template", "example", str(target), cwd=tmp_path)
    assert res.code == 0, res.output
    check = run_cli("validate", "--format", "json", cwd=target)
    data = json.loads(check.out)
    assert check.code == 0 and data["errors"] == 0, [d for d in data["diagnostics"] if d["severity"] == "error"]
    summary = data["summary"]
    assert summary["concepts"] >= 40, summary
    assert summary["statements"] >= 100, summary
    assert summary["chains"] >= 15, summary
    assert summary["test_chains"] >= 1, summary
    # It commits cleanly as it is (the README's first steps).
    git(target, "add", "-A")
    git(target, "commit", "-qm", "Initial KB")
    assert run_cli("validate", "--rev", "HEAD", cwd=target).code == 0


def test_init_refuses_an_existing_domain_and_changes_nothing(tmp_path):
    target = tmp_path / "dom"
    assert run_cli("init", str(target), cwd=tmp_path).code == 0
    write(target, {"pwd.yaml": "name: mine\n"})
    before = snapshot(target)
    for template in ("minimal", "example"):
        res = run_cli("init", str(target), "--template", template, cwd=tmp_path)
        assert res.code == 2
        assert "already holds a domain (pwd.yaml exists)" in res.err
        assert "Traceback" not in res.output
        assert snapshot(target) == before


def test_init_refuses_to_overwrite_template_files_and_leaves_no_trace(tmp_path):
    target = tmp_path / "dom"
    write(target, {".pre-commit-config.yaml": "repos: []\n", "notes.txt": "mine\n"})
    before = snapshot(target)
    res = run_cli("init", str(target), cwd=tmp_path)
    assert res.code == 2
    assert "already has .pre-commit-config.yaml" in res.err and "hint:" in res.err
    assert snapshot(target) == before
    assert not (target / ".git").exists()  # no half-made repo


def test_init_unknown_template_is_a_clear_error(tmp_path):
    target = tmp_path / "dom"
    res = run_cli("init", str(target), "--template", "nope", cwd=tmp_path)
    assert res.code == 2
    assert res.err.startswith("error: unknown template 'nope'")
    assert "minimal" in res.err and "example" in res.err  # the hint lists the real ones
    assert "Traceback" not in res.output
    assert not target.exists()


def test_init_on_a_file_is_an_error(tmp_path):
    (tmp_path / "file").write_text("x\n")
    res = run_cli("init", str(tmp_path / "file"), cwd=tmp_path)
    assert res.code == 2
    assert "Traceback" not in res.output
    assert (tmp_path / "file").read_text() == "x\n"


def test_init_in_an_existing_repo_top_does_not_reinit(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "trunk")
    write(repo, {"README.md": "# mine\n"})
    git(repo, "add", "README.md")
    git(repo, "commit", "-qm", "readme")
    head = git(repo, "rev-parse", "HEAD")
    # `git init` on an existing repo ("Reinitialized ...") would restore these from git's templates.
    (repo / ".git/description").unlink()
    git(repo, "config", "core.pwdtest", "kept")

    res = run_cli("init", str(repo), cwd=tmp_path)
    assert res.code == 0, res.output
    assert not (repo / ".git/description").exists()
    assert git(repo, "config", "core.pwdtest") == "kept"
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "trunk"
    assert git(repo, "rev-list", "--count", "HEAD") == "1"
    assert (repo / "README.md").read_text() == "# mine\n"
    status = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert "?? pwd.yaml" in status and all(line.startswith("??") for line in status)
    assert run_cli("validate", cwd=repo).code == 0


@pytest.mark.parametrize("template", ["minimal", "example"])
def test_every_template_scores_the_shipped_control_set(tmp_path, template):
    """General-knowledge items outside any domain, enabled by default: `control` is measured on
    every run, so a fine-tune that makes the model forget shows without any configuration."""
    from pwd_git.evaluate.run import load_control
    from pwd_git.kb.loader import Domain
    from pwd_git.revision import at

    target = tmp_path / "dom"
    assert run_cli("init", "--template", template, str(target), cwd=tmp_path).code == 0
    domain = Domain.find(target)
    path = at(domain, None).settings.test.control
    assert path and (target / path).is_file()
    items = load_control(domain, path)
    assert 40 <= len(items) <= 60 and len({i["id"] for i in items}) == len(items)
    assert all(len(set(i["choices"])) == len(i["choices"]) == 4 for i in items)
    answers = {i["answer"] for i in items}
    assert answers == {0, 1, 2, 3}  # the right answer is not always in one place


def test_the_control_set_shares_no_text_with_the_example_training_data(tmp_path):
    """The control questions are out of the domain: none shares an n-gram (or is a near
    duplicate) with any training record of the example, at the build's own settings."""
    from pwd_git.build.decontam import find_leaks
    from pwd_git.evaluate.run import load_control
    from pwd_git.kb.loader import Domain
    from pwd_git.revision import at

    target = tmp_path / "demo"
    assert run_cli("init", "--template", "example", str(target), cwd=tmp_path).code == 0
    assert run_cli("build", "-q", cwd=target).code == 0  # the build's own decontamination passes
    revision = at(Domain.find(target), None)
    control = [{**i, "source": f"control:{i['id']}"} for i in load_control(revision.domain, revision.settings.test.control)]
    build = revision.config.get("build") or {}
    assert find_leaks(control, revision.shards.records("train"), ngram=int(build.get("ngram", 8))) == []
    assert find_leaks(control, revision.shards.records("train"), ngram=5) == []

"""`validate` as a pre-commit hook, driven through the real pre-commit framework."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import concept, git, run_cli, write

TOOL_REPO = Path(__file__).resolve().parents[1]
BROKEN = "id: bad\nterm: 42\ntype: thing\ndefinition: A broken concept.\n"
NETWORK_SIGNS = ("NewConnectionError", "Temporary failure in name resolution", "Name or service not known",
                 "Network is unreachable", "No matching distribution found", "Could not find a version",
                 "ConnectTimeoutError", "ReadTimeoutError", "ProxyError", "SSLError")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pre-commit") is None, reason="the pre-commit executable is not installed"),
]


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory) -> Path:
    """One pre-commit cache per test session, so hook environments are built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def hooked_domain(tmp_path, monkeypatch, pre_commit_home) -> Path:
    """A domain made by `git pwd init`, with everything staged (pre-commit insists its config is)."""
    monkeypatch.setenv("PRE_COMMIT_HOME", str(pre_commit_home))
    root = tmp_path / "dom"
    assert run_cli("init", str(root), cwd=tmp_path).code == 0
    write(root, {
        "concepts/a.yaml": concept("a", relations="- predicate: is part of\n  object: b"),
        "concepts/b.yaml": concept("b", relations="- predicate: is part of\n  object: a"),
    })
    git(root, "add", "-A")
    return root


def run(cwd: Path, *args: str, timeout: float = 300, source: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a command; `source=True` makes a `language: system` hook's `git-pwd` import this
    checkout's pwd_git (what is under test) rather than whichever copy is installed."""
    env = {**os.environ, "NO_COLOR": "1"}
    if source:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOOL_REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def commit_count(root: Path) -> int:
    proc = run(root, "git", "rev-list", "--count", "HEAD")
    return int(proc.stdout) if proc.returncode == 0 else 0


def test_installed_hook_rejects_a_broken_commit_and_accepts_a_good_one(hooked_domain):
    root = hooked_domain
    config = (root / ".pre-commit-config.yaml").read_text()
    assert "entry: git-pwd validate" in config and "language: system" in config
    installed = run(root, "pre-commit", "install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (root / ".git/hooks/pre-commit").is_file()

    write(root, {"concepts/bad.yaml": BROKEN})
    git(root, "add", "concepts/bad.yaml")
    rejected = run(root, "git", "commit", "-m", "add a broken concept")
    output = rejected.stdout + rejected.stderr
    assert rejected.returncode != 0, output
    assert "concepts/bad.yaml:2:1: error: expected string, got integer 42" in output
    assert "Traceback" not in output
    assert commit_count(root) == 0
    assert (root / "concepts/bad.yaml").read_text() == BROKEN  # the hook changed nothing

    (root / "concepts/bad.yaml").write_text(concept("bad", relations="- predicate: is part of\n  object: a"))
    git(root, "add", "concepts/bad.yaml")
    accepted = run(root, "git", "commit", "-m", "add a good concept")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "pwd-git validate (knowledge base)" in accepted.stdout + accepted.stderr
    assert commit_count(root) == 1


def test_hook_checks_what_the_commit_contains_not_untracked_files(hooked_domain):
    root = hooked_domain
    assert run(root, "pre-commit", "install").returncode == 0
    first = run(root, "git", "commit", "-qm", "initial KB", source=True)
    assert first.returncode == 0, first.stdout + first.stderr

    # A broken scratch file that is not part of the commit does not block it...
    write(root, {"concepts/scratch.yaml": BROKEN})
    # ...nor does a broken edit left unstaged (pre-commit stashes it while hooks run).
    (root / "concepts/b.yaml").write_text(BROKEN.replace("id: bad", "id: b"))
    write(root, {"concepts/a.yaml": concept("a", relations="- predicate: is part of\n  object: b")
                 + "aliases: [ay]\n"})
    git(root, "add", "concepts/a.yaml")
    accepted = run(root, "git", "commit", "-m", "alias for a", source=True)
    output = accepted.stdout + accepted.stderr
    assert accepted.returncode == 0, output
    assert "pwd-git validate (knowledge base)" in output and "Passed" in output
    assert commit_count(root) == 2
    assert (root / "concepts/scratch.yaml").read_text() == BROKEN  # both left as they were
    assert "term: 42" in (root / "concepts/b.yaml").read_text()

    # A staged concept that relies on an untracked one would commit a broken KB: rejected.
    write(root, {"concepts/helper.yaml": concept("helper", relations="- predicate: is part of\n  object: a"),
                 "concepts/user.yaml": concept("user", relations="- predicate: is part of\n  object: helper")})
    git(root, "add", "concepts/user.yaml")
    rejected = run(root, "git", "commit", "-m", "user without its helper", source=True)
    output = rejected.stdout + rejected.stderr
    assert rejected.returncode != 0, output
    assert "concepts/user.yaml" in output and "'helper', which does not exist" in output
    assert "scratch.yaml" not in output and "Traceback" not in output
    assert commit_count(root) == 2

    git(root, "add", "concepts/helper.yaml")  # staging the helper fixes it
    fixed = run(root, "git", "commit", "-m", "user and helper", source=True)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert commit_count(root) == 3


def test_hook_only_runs_for_kb_files(hooked_domain):
    root = hooked_domain
    assert run(root, "pre-commit", "install").returncode == 0
    git(root, "commit", "-qm", "initial KB")
    write(root, {"README.md": "# notes\n"})
    git(root, "add", "README.md")
    proc = run(root, "git", "commit", "-m", "docs only")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(no files to check)Skipped" in proc.stdout + proc.stderr


def _try_repo(root: Path) -> subprocess.CompletedProcess[str]:
    """`pre-commit try-repo` against the tool repo's committed HEAD (what a domain would pin)."""
    if run(TOOL_REPO, "git", "cat-file", "-e", "HEAD:.pre-commit-hooks.yaml").returncode != 0:
        pytest.skip(".pre-commit-hooks.yaml is not committed in the tool repo's HEAD; try-repo clones HEAD")
    head = run(TOOL_REPO, "git", "rev-parse", "HEAD").stdout.strip()
    # An explicit --ref pins the committed HEAD (no shadow repo of uncommitted changes), so the
    # hook environment is built once per session and reused.
    proc = run(root, "pre-commit", "try-repo", str(TOOL_REPO), "pwd-validate", "--ref", head, "--all-files")
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 and "pwd-git validate (knowledge base)" not in output:
        if any(sign in output for sign in NETWORK_SIGNS):
            pytest.skip(f"pre-commit could not install the hook from PyPI: {output[-500:]}")
        pytest.fail(f"pre-commit try-repo failed before running the hook:\n{output[-3000:]}")
    return proc


def test_try_repo_hook_passes_a_good_kb_and_fails_a_broken_one(hooked_domain):
    root = hooked_domain
    good = _try_repo(root)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "pwd-git validate (knowledge base)" in good.stdout and "Passed" in good.stdout

    write(root, {"concepts/bad.yaml": BROKEN})
    git(root, "add", "concepts/bad.yaml")
    bad = _try_repo(root)
    output = bad.stdout + bad.stderr
    assert bad.returncode == 1, output
    assert "Failed" in output
    assert "concepts/bad.yaml:2:1: error: expected string, got integer 42" in output
    assert "Traceback" not in output

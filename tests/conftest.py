"""Shared fixtures: real git repos in temp dirs and an in-process CLI runner."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from pwd_git.cli import main

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch, tmp_path_factory):
    """Every test gets a git identity and an isolated global config and cache dir."""
    home = tmp_path_factory.mktemp("home")
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.delenv("PWD_GIT_DEBUG", raising=False)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


def run_cli(*args: str, cwd: str | Path) -> Result:
    """Run the real CLI entry point in-process, in `cwd`, capturing output and exit code."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(old)
    return Result(code, out.getvalue(), err.getvalue())


def git(cwd: str | Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root except git internals' caches: to assert nothing changed."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(".git/pwd/") and not rel.startswith(".git/index"):
            out[rel] = path.read_bytes()
    return out


CONFIG = """
name: tiny-domain
predicates:
  is part of: {functional: false}
  has color: {functional: true}
model: {base: tiny}
build: {ngram: 8, seed: 0}
"""


def concept(cid: str, ctype: str = "thing", relations: str = "") -> str:
    text = f"id: {cid}\nterm: {cid.replace('-', ' ')}\ntype: {ctype}\ndefinition: The {cid} concept, for tests.\n"
    if relations:
        text += "relations:\n" + textwrap.indent(textwrap.dedent(relations).strip(), "  ") + "\n"
    return text


@pytest.fixture
def domain(tmp_path) -> Path:
    """A small valid domain repo with one commit: a -> b -> c and a test chain over it."""
    root = tmp_path / "dom"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {
        "pwd.yaml": CONFIG,
        "concepts/a.yaml": concept("a", relations="- predicate: is part of\n  object: b"),
        "concepts/b.yaml": concept("b", relations="- predicate: is part of\n  object: c"),
        "concepts/c.yaml": concept("c", relations="- predicate: has color\n  value: blue"),
        "chains/a-to-c.yaml": "id: a-to-c\ntitle: a to c\nsplit: test\nsteps:\n  - a.is-part-of.b\n  - b.is-part-of.c\n",
    })
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial KB")
    return root


@pytest.fixture
def cli():
    return run_cli


PARTS = ["wheel", "axle", "frame", "saddle", "pedal", "chain-ring", "spoke", "hub"]
MACHINES = ["bicycle", "tricycle", "scooter", "unicycle", "wagon"]


def small_domain(root: Path, train: str = "{epochs: 2}", test: str = "{}", base: str = "tiny") -> Path:
    """A quick-to-train domain: 13 concepts, a two-hop test chain, committed with fresh shards."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    files = {"pwd.yaml": f"name: bikes\nmodel: {{base: {base}}}\ntrain: {train}\ntest: {test}\n"}
    for part in PARTS:
        files[f"concepts/parts/{part}.yaml"] = (
            f"id: {part}\nterm: {part.replace('-', ' ')}\ntype: part\n"
            f"definition: The {part.replace('-', ' ')} is a component used in small vehicles.\n")
    for machine in MACHINES:
        files[f"concepts/machines/{machine}.yaml"] = (
            f"id: {machine}\nterm: {machine}\ntype: machine\ndefinition: A {machine} is a human-powered vehicle.\n")
    files["concepts/parts/spoke.yaml"] += "relations:\n  - predicate: is part of\n    object: wheel\n"
    files["concepts/parts/wheel.yaml"] += "relations:\n  - predicate: is part of\n    object: bicycle\n"
    files["concepts/parts/pedal.yaml"] += "relations:\n  - predicate: is part of\n    object: tricycle\n"
    files["chains/spoke-to-bike.yaml"] = ("id: spoke-to-bike\ntitle: spokes end up in bicycles\nsplit: test\n"
                                          "steps: [spoke.is-part-of.wheel, wheel.is-part-of.bicycle]\n")
    write(root, files)
    assert run_cli("build", "-q", cwd=root).code == 0
    git(root, "add", "-A")
    git(root, "commit", "-qm", "bikes KB")
    return root


@pytest.fixture(scope="session")
def trained_example(tmp_path_factory):
    """The example domain, committed and run once per session (the expensive fixture)."""
    base = tmp_path_factory.mktemp("example")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PWD_GIT_CACHE", str(base / "cache"))
        for key, value in {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@e.x", "GIT_COMMITTER_NAME": "T",
                           "GIT_COMMITTER_EMAIL": "t@e.x", "GIT_CONFIG_GLOBAL": str(base / "gitconfig")}.items():
            mp.setenv(key, value)
        root = base / "cell-biology"
        assert run_cli("init", "--template", "example", str(root), cwd=base).code == 0
        assert run_cli("build", "-q", cwd=root).code == 0
        git(root, "add", "-A")
        git(root, "commit", "-qm", "example KB")
        result = run_cli("run", "-q", cwd=root)
        assert result.code in (0, 1), result.output
    return root, base / "cache"

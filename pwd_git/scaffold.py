"""`init` as a library call: create a domain repo from a shipped template."""

from __future__ import annotations

import shutil
from pathlib import Path

from pwd_git import notes
from pwd_git.errors import PwdError, quote
from pwd_git.git import Repo, no_work_tree_error, run_git
from pwd_git.gitconfig import configure_diff_driver, configure_lock_merge_driver
from pwd_git.kb.model import slug
from pwd_git.resources import template_names, templates_dir

#: Files every domain gets, whatever its template (pre-commit config, attributes, ignores).
COMMON = "domain-common"
NAME_PLACEHOLDER = "__DOMAIN_NAME__"


def init_domain(target: str | Path, template: str = "minimal") -> list[Path]:
    """Create (or complete) a domain at `target`; return the files written.

    Refuses, changing nothing, when `target` already holds a domain or any file the
    template would overwrite. `git init` runs unless `target` is already a repo's top.
    """
    target = Path(target).resolve()
    names = template_names()
    if template not in names:
        raise PwdError(f"unknown template {quote(template)}", hint=f"choose one of: {', '.join(names)}")
    if (target / "pwd.yaml").exists():
        raise PwdError(f"{target} already holds a domain (pwd.yaml exists)")
    if target.exists() and not target.is_dir():
        raise PwdError(f"{target} exists and is not a directory")
    probe = target if target.exists() else target.parent
    no_work_tree = no_work_tree_error(probe) if probe.is_dir() else None
    if no_work_tree is not None:  # `git init` here would nest a repository inside a git dir
        raise no_work_tree
    plan = _plan(templates_dir(), template)
    clashes = [rel for rel in plan if (target / rel).exists()]
    if clashes:
        raise PwdError(f"{target} already has {', '.join(sorted(clashes)[:5])}",
                       hint="choose an empty directory, or move those files away first")

    created_dir = not target.exists()
    needs_git = not _is_repo_top(target)
    written: list[Path] = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        if needs_git:
            run_git(["init", "--quiet", str(target)], target)
        for rel, source in plan.items():
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = source.read_bytes()
            if rel == "pwd.yaml":
                data = data.replace(NAME_PLACEHOLDER.encode(), slug(target.name).encode())
            dest.write_bytes(data)
            written.append(dest)
        repo = Repo.discover(target)
        configure_diff_driver(repo)
        configure_lock_merge_driver(repo)
        notes.setup(repo, remote=None)
    except BaseException:
        for path in reversed(written):
            path.unlink(missing_ok=True)
        if created_dir:
            shutil.rmtree(target, ignore_errors=True)
        elif needs_git:
            shutil.rmtree(target / ".git", ignore_errors=True)
        raise
    return written


def _plan(root: Path, template: str) -> dict[str, Path]:
    """Relative destination path -> shipped source file, template files winning over common ones."""
    plan: dict[str, Path] = {}
    for folder in (root / COMMON, root / template):
        for source in sorted(folder.rglob("*")):
            if source.is_file() and "__pycache__" not in source.parts:
                rel = source.relative_to(folder).as_posix()
                plan[rel.replace("dot-", ".", 1) if rel.startswith("dot-") else rel] = source
    return plan


def _is_repo_top(path: Path) -> bool:
    if not path.is_dir():
        return False
    proc = run_git(["rev-parse", "--show-toplevel"], path, check=False)
    return proc.returncode == 0 and Path(proc.stdout.decode().strip()).resolve() == path

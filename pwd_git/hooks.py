"""`git pwd hooks install|uninstall`: commit-triggered training and result sharing.

post-commit queues the commit and starts a detached worker; pre-push pushes the results
notes. Both coexist with other hooks (pre-commit's included): a hook already in place is
renamed `<hook>.pwd-previous` and run first by ours, and uninstall puts it back byte for
byte. Hooks go where git looks for them (core.hooksPath honoured).
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from pwd_git import tool
from pwd_git.errors import PwdError
from pwd_git.git import Repo, git_path
from pwd_git.kb.loader import Domain
from pwd_git.resources import hooks_dir

HOOKS = ("post-commit", "pre-push")
MARKER = "# pwd-git-hook:"
PREVIOUS = ".pwd-previous"
CONFIG = "hooks.json"


def installed_dir(repo: Repo) -> Path:
    return git_path(repo, "hooks")


def is_ours(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return any(line.startswith(MARKER) for line in fh.read(4096).splitlines())
    except OSError:
        return False


def render(name: str) -> str:
    """The hook script with this installation filled in: its interpreter by absolute path (so
    GUIs with another PATH work too), run isolated and importing pwd_git from its install
    (`pwd_git.tool`), never from the repository the hook runs in."""
    argv = tool.command()
    text = (hooks_dir() / name).read_text()
    return (text.replace("@PYTHON@", shlex.quote(argv[0]))
            .replace("@PACKAGE@", shlex.quote(str(tool.package_root())))
            .replace("@COMMAND@", '"$PWD_GIT_PYTHON" ' + shlex.join(argv[1:])))


def install(domain: Domain) -> list[str]:
    """Install both hooks and set up notes sharing; returns what was done, line by line."""
    from pwd_git import notes

    repo = domain.repo
    folder = installed_dir(repo)
    folder.mkdir(parents=True, exist_ok=True)
    done = [f"set {line}" for line in notes.setup(repo)]
    plans = []
    for name in HOOKS:
        path, previous = folder / name, folder / (name + PREVIOUS)
        if path.exists() and not is_ours(path) and previous.exists():
            raise PwdError(f"cannot install the {name} hook: both {path} and {previous} exist",
                           hint=f"{previous.name} is a hook saved by an earlier install; merge or remove one of them")
        plans.append((name, path, previous))
    for name, path, previous in plans:
        if path.exists() and not is_ours(path):
            os.replace(path, previous)
            done.append(f"kept the existing {name} hook as {previous.name} (ours runs it first)")
        _write_executable(path, render(name))
        done.append(f"installed {path}")
    (repo.pwd_dir() / CONFIG).write_text(json.dumps({"domain": domain.prefix}) + "\n")
    return done


def uninstall(repo: Repo) -> list[str]:
    """Remove our hooks and restore what was there before, exactly."""
    folder = installed_dir(repo)
    done = []
    for name in HOOKS:
        path, previous = folder / name, folder / (name + PREVIOUS)
        if is_ours(path):
            path.unlink()
            if previous.exists():
                os.replace(previous, path)
                done.append(f"restored the previous {name} hook")
            else:
                done.append(f"removed {path}")
        elif path.exists() and previous.exists():
            done.append(f"left {path} alone: it is not ours (another tool replaced it); "
                        f"{previous.name} is still there")
        elif previous.exists():
            os.replace(previous, path)
            done.append(f"restored the previous {name} hook")
    (repo.pwd_dir() / CONFIG).unlink(missing_ok=True)
    return done or ["no pwd-git hooks were installed"]


def status(repo: Repo) -> dict[str, bool]:
    folder = installed_dir(repo)
    return {name: is_ours(folder / name) for name in HOOKS}


def domain_prefix(repo: Repo) -> str:
    """The domain folder recorded at install time ('' = the repo top)."""
    try:
        return str(json.loads((repo.pwd_dir() / CONFIG).read_text()).get("domain", ""))
    except (OSError, ValueError):
        return ""


def _write_executable(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, path)


def post_commit(repo: Repo) -> str:
    """The post-commit hook's work: queue HEAD, start a detached worker. Fast: no build here.
    PWD_GIT_WORKER=0 only queues (for a rebase of many commits, say; run `git pwd worker` later)."""
    from pwd_git.jobs import enqueue, start_detached

    commit = repo.resolve("HEAD")
    queued = enqueue(repo, commit, domain_prefix(repo))
    if os.environ.get("PWD_GIT_WORKER", "1") != "0":
        start_detached(repo)
    return f"pwd-git: queued {commit[:10]} for build + train + test (`git pwd queue`)" if queued else ""


def pre_push(repo: Repo, remote: str) -> str:
    """The pre-push hook's work: push the results notes to `remote` when it is a named remote."""
    from pwd_git import notes

    if remote not in repo.git("remote").split():
        return f"pwd-git: not pushing results to {remote} (not a named remote; use `git pwd notes push --remote NAME`)"
    os.environ["PWD_GIT_PUSHING_NOTES"] = "1"  # our own `git push` of the notes must not re-enter this hook
    notes.push(repo, remote)
    return f"pwd-git: pushed results to {remote}"

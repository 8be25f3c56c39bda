"""How pwd-git starts itself again: the git hooks, the detached worker, bisect steps.

A domain repo is data, never code, and those children run inside it (the hooks and the
worker with the repo as working directory). So a child never imports by name from where it
happens to run: it is this interpreter, by absolute path, in isolated mode (`-I`: neither the
working directory nor PYTHONPATH nor the user site is on sys.path, no sitecustomize from
there), importing pwd_git from the folder this pwd_git was imported from (a wheel, an
editable install or a source checkout alike). A committed `pwd_git/`, `click.py` or
`sitecustomize.py` in the repo is never run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as `python -I -c BOOT ROOT ARGS...`: ROOT (where our pwd_git lives) goes on sys.path
# unless it is there already (site-packages), then the CLI runs with ARGS.
_BOOT = ("import sys; root = sys.argv.pop(1); sys.path[:0] = [] if root in sys.path else [root]; "
         "from pwd_git.cli import main; main()")


def package_root() -> Path:
    """The folder holding the running pwd_git package."""
    return Path(__file__).resolve().parent.parent


def interpreter() -> str:
    return os.path.abspath(sys.executable)


def command() -> list[str]:
    """argv that runs this installation's CLI: `[*command(), "worker", "--once"]`."""
    return [interpreter(), "-I", "-c", _BOOT, str(package_root())]

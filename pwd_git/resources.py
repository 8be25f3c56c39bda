"""Files that ship with the tool: domain templates and git hook scripts.

In a source checkout they live at the repo top (`templates/`, `hooks/`); an installed wheel
carries them inside the package (`pwd_git/_templates`, `pwd_git/_hooks`).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    for candidate in (_PACKAGE / f"_{name}", _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pwd-git is installed without its {name}/ folder")


def templates_dir() -> Path:
    return _shipped("templates")


def hooks_dir() -> Path:
    return _shipped("hooks")


def template_names() -> list[str]:
    """Domain scaffolds users can pass to `init --template` (shared files excluded)."""
    return sorted(p.name for p in templates_dir().iterdir()
                  if p.is_dir() and (p / "pwd.yaml").is_file())

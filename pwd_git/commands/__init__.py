"""One module per CLI verb; each defines a click command and calls the library API.

Verbs are imported only when used, so `git pwd validate` does not pay for importing
build, train or bisect (`VERBS` names where each lives; `COMMANDS` still imports them all).
"""

from __future__ import annotations

import importlib

#: verb -> (module under pwd_git.commands, attribute)
VERBS = {
    "init": ("init", "init"), "validate": ("validate", "validate"), "build": ("build", "build"),
    "status": ("status", "status"), "diff": ("diff", "diff"), "train": ("train", "train"), "test": ("test", "test"),
    "run": ("run", "run"), "log": ("log", "log"), "show": ("log", "show"), "notes": ("notes", "notes"),
    "diagnose": ("diagnose", "diagnose"), "patch": ("patch", "patch"),
    "repair": ("repair", "repair"),
    "extract": ("extract", "extract"), "import": ("extract", "import_"), "bisect": ("bisect", "bisect"),
    "bisect-step": ("bisect", "bisect_step"), "hooks": ("hooks", "hooks"), "queue": ("queue", "queue"),
    "worker": ("worker", "worker"), "textconv": ("textconv", "textconv"),
    "merge-lock": ("mergelock", "merge_lock"),
    "help": ("help", "help_"), "completion": ("completion", "completion"),
    "report": ("report", "report"), "export": ("export", "export"),
}


def load(verb: str):
    """The click command of `verb` (importing its module), or None for an unknown verb."""
    where = VERBS.get(verb)
    if where is None:
        return None
    return getattr(importlib.import_module(f"pwd_git.commands.{where[0]}"), where[1])


def __getattr__(name: str):
    if name == "COMMANDS":
        return [load(verb) for verb in VERBS]
    for module, attr in VERBS.values():
        if attr == name:
            return getattr(importlib.import_module(f"pwd_git.commands.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""`validate` as a library call: load the KB once, report diagnostics, optionally per path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pwd_git.errors import PwdError
from pwd_git.kb.diagnostics import ERROR, WARNING, Diagnostic
from pwd_git.kb.loader import Domain, load_revision, load_worktree
from pwd_git.kb.model import KB


@dataclass
class ValidationReport:
    kb: KB
    diagnostics: list[Diagnostic]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors


def validate(domain: Domain, *, rev: str | None = None, paths: list[str] | None = None,
             use_cache: bool = True) -> ValidationReport:
    """Validate the whole KB (references need it all); keep only diagnostics in `paths`."""
    kb, diags = load_revision(domain, rev) if rev else load_worktree(domain, use_cache=use_cache)
    if paths:
        wanted = [_kb_relative(domain, p) for p in paths]
        diags = [d for d in diags if any(w in ("", d.path) or d.path.startswith(w + "/") for w in wanted)]
    return ValidationReport(kb, diags)


def _kb_relative(domain: Domain, path: str) -> str:
    full = Path(path).resolve()
    try:
        rel = full.relative_to(domain.root).as_posix()
    except ValueError:
        raise PwdError(f"{path} is outside the domain at {domain.root}") from None
    return "" if rel == "." else rel

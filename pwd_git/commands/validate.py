"""`git pwd validate`: schema, references and lints for the whole KB, like a compiler."""

from __future__ import annotations

import os

import click

from pwd_git.errors import EXIT_FAILED, EXIT_OK
from pwd_git.output import echo_json, format_option

SHOWN_PER_CODE = 10  # a real KB can raise hundreds of one true but minor lint; the errors must stay visible


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--rev", metavar="REV", help="Validate a committed revision (read from git, no checkout).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--errors-only", is_flag=True,
              help="Print only the errors (the summary still counts the warnings): what the pre-commit hook shows.")
@click.option("--all", "show_all", is_flag=True,
              help=f"Print every warning (by default the text output shows the first {SHOWN_PER_CODE} of each kind "
                   "and counts the rest; --format json always lists all).")
@click.option("--no-cache", is_flag=True, help="Re-parse and re-check every file instead of using .git/pwd/cache.")
@click.option("--untracked/--no-untracked", default=None,
              help="Include KB files git does not track. Default: yes, except under pre-commit "
                   "(PRE_COMMIT=1), where only what the commit will contain is checked.")
@format_option("json")
def validate(paths: tuple[str, ...], rev: str | None, strict: bool, errors_only: bool, show_all: bool,
             no_cache: bool, untracked: bool | None, fmt: str) -> None:
    """Check the knowledge base: YAML, schemas, references, chains, lints.

    The whole KB is always checked (a deleted concept breaks relations in other
    files); PATHS only narrows which files' diagnostics are shown, and must exist.
    Errors are printed as `path:line:col: error: message`. Exit 0 when clean, 1 on
    errors (or warnings with --strict), 2 on usage errors. Runs are incremental:
    unchanged files are neither read nor parsed, and only the checks a change can
    affect are re-run (state in .git/pwd/cache).
    """
    from pwd_git.kb.loader import Domain
    from pwd_git.kb.validate import validate as run_validate

    if untracked is None:
        untracked = os.environ.get("PRE_COMMIT") != "1"
    domain = Domain.find(".")
    report = run_validate(domain, rev=rev, paths=list(paths) or None, use_cache=not no_cache, untracked=untracked)
    failed = bool(report.errors) or (strict and bool(report.warnings))
    shown = [d for d in report.diagnostics if d.severity == "error" or not errors_only or strict]
    if fmt == "json":
        echo_json({"ok": not failed, "summary": report.summary, "errors": len(report.errors),
                   "warnings": len(report.warnings), "diagnostics": [d.as_dict() for d in shown]})
    else:
        listed, hidden = (shown, {}) if show_all or strict else _capped(shown)
        lines = [d.render() for d in listed]
        lines += [f"... and {n} more {code} warning(s); `git pwd validate --all` lists them" for code, n in hidden.items()]
        click.echo("\n".join(lines) or None, nl=bool(lines))
        s = report.summary
        verdict = click.style("FAILED", fg="red") if failed else click.style("ok", fg="green")
        click.echo(f"{verdict}: {len(report.errors)} error(s), {len(report.warnings)} warning(s) in "
                   f"{report.files} files ({s['concepts']} concepts, {s['statements']} statements, "
                   f"{s['chains']} chains)")
    raise SystemExit(EXIT_FAILED if failed else EXIT_OK)


def _capped(diags: list) -> tuple[list, dict[str, int]]:
    """Every error and the first SHOWN_PER_CODE warnings of each code, in their order; and per
    code, how many warnings that leaves out."""
    counts: dict[str, int] = {}
    kept = []
    for d in diags:
        if d.severity != "error":
            counts[d.code] = counts.get(d.code, 0) + 1
        if d.severity == "error" or counts[d.code] <= SHOWN_PER_CODE:
            kept.append(d)
    return kept, {code: n - SHOWN_PER_CODE for code, n in counts.items() if n > SHOWN_PER_CODE}

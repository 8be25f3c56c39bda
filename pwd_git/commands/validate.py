"""`git pwd validate`: schema, references and lints for the whole KB, like a compiler."""

from __future__ import annotations

import click

from pwd_git.errors import EXIT_FAILED, EXIT_OK
from pwd_git.kb.loader import Domain
from pwd_git.kb.validate import validate as run_validate
from pwd_git.output import echo_json, format_option


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--rev", metavar="REV", help="Validate a committed revision (read from git, no checkout).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--no-cache", is_flag=True, help="Re-parse every file instead of using .git/pwd/cache.")
@format_option("json")
def validate(paths: tuple[str, ...], rev: str | None, strict: bool, no_cache: bool, fmt: str) -> None:
    """Check the knowledge base: YAML, schemas, references, chains, lints.

    The whole KB is always checked (a deleted concept breaks relations in other
    files); PATHS only narrows which files' diagnostics are shown. Errors are
    printed as `path:line:col: error: message`. Exit 0 when clean, 1 on errors
    (or warnings with --strict). Unchanged files are not re-parsed: results are
    cached by git blob OID.
    """
    domain = Domain.find(".")
    report = run_validate(domain, rev=rev, paths=list(paths) or None, use_cache=not no_cache)
    failed = bool(report.errors) or (strict and bool(report.warnings))
    if fmt == "json":
        echo_json({"ok": not failed, "summary": report.kb.summary(), "errors": len(report.errors),
                   "warnings": len(report.warnings), "diagnostics": [d.as_dict() for d in report.diagnostics]})
    else:
        for diag in report.diagnostics:
            click.echo(diag.render(), err=False)
        s = report.kb.summary()
        verdict = click.style("FAILED", fg="red") if failed else click.style("ok", fg="green")
        click.echo(f"{verdict}: {len(report.errors)} error(s), {len(report.warnings)} warning(s) in "
                   f"{len(report.kb.files)} files ({s['concepts']} concepts, {s['statements']} statements, "
                   f"{s['chains']} chains)")
    raise SystemExit(EXIT_FAILED if failed else EXIT_OK)

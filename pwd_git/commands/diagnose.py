"""`git pwd diagnose`: trace failed benchmark items to KB nodes, like a compiler's errors."""

from __future__ import annotations

import click

from pwd_git.errors import EXIT_FAILED
from pwd_git.kb.loader import Domain
from pwd_git.output import echo_json, format_option, log_to_stderr


@click.command()
@click.argument("rev", default="HEAD")
@click.option("--run-key", metavar="KEY", help="Diagnose the results of another run (see `git pwd show`).")
@click.option("--no-run", is_flag=True, help="Fail instead of running the tests when REV has no results.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@format_option("json", "sarif")
def diagnose(rev: str, run_key: str | None, no_run: bool, quiet: bool, fmt: str) -> None:
    """Explain REV's failed benchmark items in terms of the KB.

    For each failed multi-hop (L3) item, the probes of every concept and statement on
    its path are checked: a failing probe is a concept gap at that node (the earliest
    on the path is the root); all probes passing while the chain item fails is a
    reasoning-chain break. Each node comes with its data evidence (training records:
    missing / thin / contradictory / present) and its path:line, ranked by how many
    failed items it explains. Reads the results note on REV (runs the tests first when
    there is none). Exit 0 when there is nothing to fix, 1 otherwise.
    """
    from pwd_git.repair.diagnose import diagnose as run_diagnose

    domain = Domain.find(".")
    result = run_diagnose(domain, rev, key=run_key, run_if_missing=not no_run,
                          log=log_to_stderr(not quiet and fmt == "text"))
    if fmt == "json":
        echo_json({"commit": result.commit, "run_key": result.run_key, "failed_items": result.failed_items,
                   "findings": [f.as_dict() for f in result.findings]})
    elif fmt == "sarif":
        from pwd_git.repair.sarif import to_sarif

        echo_json(to_sarif(result, domain.prefix))
    else:
        for f in result.findings:
            root = " (root)" if f.root_of else ""
            click.echo(f"{f.location}: {f.kind}: {f.message()}{root}")
        gaps = sum(f.kind == "concept-gap" for f in result.findings)
        breaks = len(result.findings) - gaps
        click.echo(f"{len(result.failed_items)} failed item(s) on {result.commit[:10]}: {gaps} concept gap(s), "
                   f"{breaks} chain break(s)")
    raise SystemExit(EXIT_FAILED if result.findings else 0)

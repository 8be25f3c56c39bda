"""`git pwd extract`: corpus documents -> KB nodes with verified quotes, on a branch."""

from __future__ import annotations

import click

from pwd_git.git import current_branch
from pwd_git.kb.loader import Domain
from pwd_git.output import echo_json, format_option, log_to_stderr

MAX_LISTED = 50


@click.command()
@click.argument("paths", nargs=-1, metavar="[PATHS]...")
@click.option("--rev", default="HEAD", show_default=True, help="Commit whose corpus and KB to extract from.")
@click.option("--branch", metavar="NAME", help="Branch to create (default: pwd/extract/<rev>-<digest>).")
@click.option("--dry-run", is_flag=True, help="Show what would be extracted, dropped and proposed; create nothing.")
@click.option("--open-pr", is_flag=True, help="Push the branch and open a pull request (GITHUB_TOKEN or GH_TOKEN).")
@click.option("--remote", default="origin", show_default=True, help="Remote to push to.")
@click.option("--base", "base_branch", metavar="BRANCH", help="PR base branch (default: the current branch).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@format_option("json")
def extract(paths: tuple[str, ...], rev: str, branch: str | None, dry_run: bool, open_pr: bool, remote: str,
            base_branch: str | None, quiet: bool, fmt: str) -> None:
    """Extract concepts and statements from the corpus into KB files, on a new branch.

    Reads the documents under corpus/ (pwd.yaml `extract.corpus`: txt, md, html, pdf) as
    committed at REV, extracts with the `extract.backend` (patterns: offline and
    deterministic), keeps every node whose quote occurs verbatim in its document, and commits
    concepts/extracted/*.yaml plus extract.lock.json on branch pwd/extract/... . Files a
    person wrote or edited are never rewritten: additions to them are listed as proposals.
    With PATHS, only those documents are (re-)extracted; the others stay as last extracted.
    Your checked-out branch, index and uncommitted work are never touched.
    """
    from pwd_git.extract.run import extract as run_extract
    from pwd_git.extract.run import pr_body

    domain = Domain.find(".")
    log = log_to_stderr(not quiet and fmt == "text")
    result = run_extract(domain, paths, rev=rev, branch=branch, dry_run=dry_run, log=log)
    info = {**result.as_dict(), "dry_run": dry_run, "pr": None, "body_file": None}
    if fmt == "text":
        _print(result, dry_run)
    if result.branch and not dry_run:
        body = pr_body(result)
        body_file = domain.repo.pwd_dir() / "extract" / "prs" / (result.branch.replace("/", "_") + ".md")
        body_file.parent.mkdir(parents=True, exist_ok=True)
        body_file.write_text(body)
        info["body_file"] = str(body_file)
        if fmt == "text":
            click.echo(f"pull-request body: {body_file}")
        if open_pr:
            from pwd_git.repair import forge

            say = (lambda m: click.echo(m)) if fmt == "text" else (lambda m: click.echo(m, err=True))
            p = result.plan
            title = f"pwd extract: {len(p.concepts)} concept(s), {len(p.statements)} statement(s) from {result.base[:10]}"
            info["pr"] = forge.publish(domain.repo, remote, result.branch, base_branch or current_branch(domain.repo)
                                       or "main", title, body, say)
    if fmt == "json":
        echo_json(info)


def _print(result, dry_run: bool) -> None:
    p = result.plan
    for d in result.documents:
        detail = d.reason if d.status == "skipped" else f"{d.chunks} chunk(s), {d.candidates} candidate(s)"
        click.echo(f"{d.path}: {d.status}: {detail}")
    for path in result.uncommitted:
        click.echo(f"{path}: not committed, so not extracted (commit it first)")
    counts = result.drop_counts()
    if counts:
        click.echo(f"dropped {len(p.dropped)}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for d in p.dropped[:MAX_LISTED]:
            click.echo(f"  {d.doc}: {d.reason}: {d.detail}" + (f' ("{d.quote[:80]}")' if d.quote else ""))
        if len(p.dropped) > MAX_LISTED:
            click.echo(f"  ... and {len(p.dropped) - MAX_LISTED} more (--format json lists all)")
    if p.proposals:
        click.echo(f"proposed for files a person owns (not written) {len(p.proposals)}:")
        for x in p.proposals[:MAX_LISTED]:
            click.echo(f"  {x.path}: {x.node}: {x.change} ({x.doc}: \"{x.quote[:80]}\")")
    for path, why in sorted(p.kept.items()):
        click.echo(f"{path}: {why}")
    for path in p.released:
        click.echo(f"{path}: changed by a person since extraction wrote it: left alone from now on")
    for path in sorted(p.files):
        click.echo(f"{'M' if path in p.modified else 'A'} {path}")
    for path in p.removed:
        click.echo(f"D {path}")
    summary = f"{len(p.concepts)} concept(s), {len(p.statements)} statement(s), {len(p.chains)} chain(s)"
    if not result.changed or (result.yields_nothing and not result.found_nothing):
        click.echo(f"nothing new: the KB at {result.base[:10]} already holds this extraction ({summary})")
    elif result.yields_nothing:
        click.echo(f"nothing to commit: {result.nothing()}")
    elif result.existing_branch:
        click.echo(f"already extracted on branch {result.branch} ({result.commit[:10]}): {summary}")
    elif dry_run:
        click.echo(f"would commit {summary} on branch {result.branch}")
    else:
        click.echo(f"committed {summary} on branch {result.branch} ({result.commit[:10]})")
        click.echo(f"review it with `git pwd diff {result.base[:10]} {result.branch}`; merge it like any branch")



@click.command("import")
@click.argument("paths", nargs=-1, required=True, metavar="FILE...")
@click.option("--rev", default="HEAD", show_default=True, help="Commit whose corpus and KB to import from.")
@click.option("--branch", metavar="NAME", help="Branch to create (default: pwd/extract/<rev>-<digest>).")
@click.option("--dry-run", is_flag=True, help="Show what would be imported, dropped and proposed; create nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@format_option("json")
@click.pass_context
def import_(ctx: click.Context, paths: tuple[str, ...], rev: str, branch: str | None, dry_run: bool, quiet: bool,
            fmt: str) -> None:
    """Import triples from CSV/TSV (subject, predicate, object columns) or RDF (Turtle,
    N-Triples, JSON-LD) files in the corpus, on a new branch.

    The same as `git pwd extract FILE...` for structured files: rows become concepts
    (`type` + `definition` rows) and statements, each quoting its row; see docs/extract.md.
    """
    from pwd_git.errors import PwdError, quote
    from pwd_git.extract.corpus import STRUCTURED, TEXT_SUFFIXES

    for p in paths:
        if TEXT_SUFFIXES.get("." + p.rpartition(".")[2].lower()) not in STRUCTURED:
            raise PwdError(f"{quote(p)} is not a CSV, TSV or RDF file", hint="use `git pwd extract` for prose documents")
    ctx.invoke(extract, paths=paths, rev=rev, branch=branch, dry_run=dry_run, open_pr=False, remote="origin",
               base_branch=None, quiet=quiet, fmt=fmt)

"""`git pwd patch`: write a targeted data patch on a branch and open a pull request."""

from __future__ import annotations

import click

from pwd_git.git import current_branch
from pwd_git.kb.loader import Domain
from pwd_git.output import StepProgress, echo_json, format_option, log_to_stderr


@click.command()
@click.argument("rev", default="HEAD")
@click.option("--limit", type=click.IntRange(min=1),
              help="Patch at most N diagnosed nodes (ranked by items explained). A partial patch can tilt a "
                   "small model towards the patched nodes; check with `test --baseline`.")
@click.option("--branch", metavar="NAME", help="Branch to create (default: pwd/patch/<rev>-<node>).")
@click.option("--train-mode", type=click.Choice(["scratch", "continue"]),
              help="Also set train.mode in the patch commit: `continue` fine-tunes REV's model on the new "
                   "examples plus replay of old data, so what it already knew stays.")
@click.option("--include", "include", multiple=True, type=click.Choice(["not-learned"]),
              help="Also patch nodes whose data is adequate but not learned (by default only data gaps and chain "
                   "breaks are patched: where the data is at fault).")
@click.option("--open-pr", is_flag=True, help="Push the branch and open a pull request (GITHUB_TOKEN or GH_TOKEN).")
@click.option("--remote", default="origin", show_default=True, help="Remote to push to.")
@click.option("--base", "base_branch", metavar="BRANCH", help="PR base branch (default: the current branch).")
@click.option("--dry-run", is_flag=True, help="Show the patch and the PR body; create nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@format_option("json")
def patch(rev: str, limit: int | None, branch: str | None, train_mode: str | None, include: tuple[str, ...],
          open_pr: bool, remote: str,
          base_branch: str | None, dry_run: bool, quiet: bool, fmt: str) -> None:
    """Repair the data behind REV's failures, on a new branch.

    Runs the diagnosis and patches where the data is at fault (data gaps and chain breaks
    that beat the model's noise; --include not-learned adds the rest), writing training
    examples under patches/ generated from those KB nodes (more surface forms and contrastive examples for data gaps;
    step-by-step compositions over other paths with the same predicate pattern for
    chain breaks; contradictions are reported, not papered over), rebuilds shards/ and
    commits both on branch pwd/patch/... . Your checked-out branch, index and
    uncommitted work are never touched. Then `git pwd run pwd/patch/...` to check it;
    its comparison with REV says how many of the items the patch targets now pass. A
    from-scratch run re-rolls what the model knew, and on a large KB that noise can be
    bigger than the patch's effect: --train-mode continue fine-tunes REV's model on the
    patch with replay, as `git pwd repair` does.
    """
    from pwd_git.repair.patch import make_patch
    from pwd_git.repair.prbody import render_body

    domain = Domain.find(".")
    log = log_to_stderr(not quiet and fmt == "text")
    progress = StepProgress(not quiet and fmt == "text")  # when REV has no result yet, the diagnosis trains
    try:
        result = make_patch(domain, rev, limit=limit, branch=branch, train_mode=train_mode, dry_run=dry_run,
                            include=include, log=log, on_step=progress)
    finally:
        progress.close()
    body = render_body(result)
    body_file = domain.repo.pwd_dir() / "patches" / (result.branch.replace("/", "_") + ".md")
    body_file.parent.mkdir(parents=True, exist_ok=True)
    body_file.write_text(body)
    info = {"branch": result.branch, "commit": result.commit, "patch_file": result.path, "examples": result.examples,
            "patched": [f.as_dict() for f in result.patched],
            "skipped": [{"node": s.finding.node, "reason": s.reason} for s in result.skipped],
            "expected_flips": [i["id"] for i in result.expected_flips], "body_file": str(body_file), "pr": None}
    if fmt == "text":
        if dry_run:
            click.echo(body)
        click.echo(f"{'would write' if dry_run else 'wrote'} {result.examples} examples for {len(result.patched)} node(s) "
                   f"to {result.path}" + ("" if dry_run else f" on branch {result.branch} ({result.commit[:10]})"))
        for s in result.skipped:
            click.echo(f"{s.finding.location}: not patched: {s.reason}")
        click.echo(f"pull-request body: {body_file}")
        if not dry_run:
            click.echo(_next_step(domain, result))
    if open_pr and not dry_run:
        info["pr"] = _publish(domain, result, body, remote, base_branch or current_branch(domain.repo) or "main", fmt)
    if fmt == "json":
        echo_json(info)


def _next_step(domain: Domain, result) -> str:
    """How to check the patch, and what its training mode means for that check."""
    from pwd_git.revision import at

    mode = (at(domain, result.commit).config.get("train") or {}).get("mode", "scratch")
    step = f"next: git pwd run {result.branch}"
    if mode == "continue":
        return step + " (fine-tunes the model of " + result.diagnosis.commit[:10] + " on the patch, with replay)"
    return (step + " (retrains from scratch, which re-rolls what the model knew: its item-level noise can "
            "hide the patch's effect; --train-mode continue fine-tunes the current model instead, as "
            "`git pwd repair` does)")


def _publish(domain: Domain, result, body: str, remote: str, base: str, fmt: str) -> str | None:
    from pwd_git.repair import forge

    say = (lambda m: click.echo(m)) if fmt == "text" else (lambda m: click.echo(m, err=True))
    title = f"pwd patch: repair {len(result.patched)} node(s) diagnosed on {result.diagnosis.commit[:10]}"
    return forge.publish(domain.repo, remote, result.branch, base, title, body, say)

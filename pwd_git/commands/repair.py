"""`git pwd repair`: diagnose, patch, fine-tune and test in rounds, on one branch."""

from __future__ import annotations

import click

from pwd_git.errors import EXIT_FAILED
from pwd_git.git import current_branch
from pwd_git.kb.loader import Domain
from pwd_git.output import echo_json, format_option, log_to_stderr


@click.command()
@click.argument("rev", default="HEAD")
@click.option("--rounds", type=click.IntRange(min=1), help="At most N rounds (default: repair.rounds, else 3).")
@click.option("--branch", metavar="NAME", help="Branch to grow (default: pwd/repair/<rev>).")
@click.option("--continue", "resume", is_flag=True, help="Resume an existing repair branch from its tip.")
@click.option("--include", "include", multiple=True, type=click.Choice(["not-learned"]),
              help="Also patch nodes whose data is adequate but not learned, as `patch --include` does "
                   "(default: repair.include, else only data gaps and chain breaks).")
@click.option("--open-pr", is_flag=True, help="Push the branch and open one pull request with a table of the rounds.")
@click.option("--remote", default="origin", show_default=True, help="Remote to push to.")
@click.option("--base", "base_branch", metavar="BRANCH", help="PR base branch (default: the current branch).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@format_option("json")
def repair(rev: str, rounds: int | None, branch: str | None, resume: bool, include: tuple[str, ...], open_pr: bool,
           remote: str, base_branch: str | None, quiet: bool, fmt: str) -> None:
    """Repair REV's data in rounds, each one commit on branch pwd/repair/<rev>.

    REV needs a result (`git pwd test --rev REV`). Each round diagnoses the last kept commit,
    patches its data gaps and chain breaks (as `git pwd patch` does), fine-tunes the previous
    model on the new examples plus replay (train.mode: continue), tests, and compares item by
    item with the previous round. A round is kept only when it is significantly better (exact
    McNemar, test.alpha) and breaks at most repair.max_broken (default 10%) of the passing and
    of the control items. The loop stops when the thresholds hold and nothing is left to fix,
    at the first round that is not kept, or after --rounds. Your checkout, index and current
    branch are never touched; Ctrl-C keeps the completed rounds. Exit 0 when the thresholds
    hold at the end, 1 when they do not, 2 on bad input.
    """
    from pwd_git.repair.loop import levels_text
    from pwd_git.repair.loop import repair as run_repair

    domain = Domain.find(".")
    log = log_to_stderr(not quiet and fmt == "text")
    result = run_repair(domain, rev, rounds=rounds, branch=branch, resume=resume, include=include or None, log=log)
    info = {**result.as_dict(), "pr": None}
    if fmt == "text":
        click.echo(f"start {result.start[:10]}: {levels_text(result.start_metrics)}")
        for r in result.rounds:
            where = f" -> {r.commit[:10]}" if r.commit else ""
            metrics = levels_text(r.metrics) if r.metrics else "no result"
            click.echo(f"round {r.number} {r.outcome}{where}: {len(r.patched)} node(s), {r.examples} examples; "
                       f"{metrics}; {len(r.fixed)} fixed, {len(r.broken)} broken of {r.passing_before}"
                       + ("" if r.p_value is None else f" (p={r.p_value:.4f})"))
        click.echo(result.stop)
        if result.tip:
            click.echo(f"branch {result.branch} at {result.tip[:10]} (try it: git pwd log {result.branch})")
    if open_pr and result.kept:
        info["pr"] = _publish(domain, result, remote, base_branch or current_branch(domain.repo) or "main", fmt)
    elif open_pr and fmt == "text":
        click.echo("no round was kept: no pull request")
    if fmt == "json":
        echo_json(info)
    if result.error is not None:
        raise result.error
    raise SystemExit(0 if result.thresholds_ok else EXIT_FAILED)


def _publish(domain: Domain, result, remote: str, base: str, fmt: str) -> str | None:
    from pwd_git.repair import forge
    from pwd_git.repair.prbody import render_repair_body

    say = (lambda m: click.echo(m)) if fmt == "text" else (lambda m: click.echo(m, err=True))
    body = render_repair_body(result)
    body_file = domain.repo.pwd_dir() / "patches" / (result.branch.replace("/", "_") + ".md")
    body_file.parent.mkdir(parents=True, exist_ok=True)
    body_file.write_text(body)
    title = f"pwd repair: {len(result.kept)} round(s) from {result.start[:10]}"
    return forge.publish(domain.repo, remote, result.branch, base, title, body, say)

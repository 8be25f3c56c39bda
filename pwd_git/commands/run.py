"""`git pwd run`: build, train and test — the pipeline a commit triggers."""

from __future__ import annotations

import click

from pwd_git.errors import EXIT_FAILED
from pwd_git.kb.loader import Domain
from pwd_git.output import StepProgress, echo_json, format_option, log_to_stderr


@click.command()
@click.argument("rev", required=False)
@click.option("--baseline", metavar="REV",
              help="Compare with this revision, `auto` or `none` (default: test.baseline, else auto).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@format_option("json")
def run(rev: str | None, baseline: str | None, quiet: bool, fmt: str) -> None:
    """Build (or check shards/), train and test REV (default: the working tree).

    For a commit, shards are built from the object store and nothing in the working
    tree changes; for the working tree, shards/ must be fresh (`git pwd build`).
    Exit code as `git pwd test`.
    """
    from pwd_git.build.shards import build
    from pwd_git.commands.test import print_report
    from pwd_git.evaluate.run import evaluate
    from pwd_git.train.pipeline import shards_for

    domain = Domain.find(".")
    log = log_to_stderr(not quiet and fmt == "text")
    if rev:
        result = build(domain, rev, to_worktree=False)
        log(f"built {rev} ({'cached' if result.cached else 'compiled'}, key {result.key.key[:12]})")
    else:
        shards_for(domain, None)  # refuses stale shards with the command to fix them
        log("shards/ is fresh")
    progress = StepProgress(not quiet and fmt == "text")
    try:
        report = evaluate(domain, rev, baseline=baseline, log=log, on_step=progress)
    finally:
        progress.close()
    if fmt == "json":
        echo_json({**report.entry, "verdict": report.verdict.as_dict(),
                   "recorded_on": report.commit if report.recorded else None})
    else:
        print_report(report)
    raise SystemExit(0 if report.verdict.ok else EXIT_FAILED)

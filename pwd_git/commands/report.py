"""`git pwd report`: a static HTML dashboard of the results notes."""

from __future__ import annotations

from pathlib import Path

import click

from pwd_git.kb.loader import Domain
from pwd_git.output import echo_json, format_option
from pwd_git.report import DEFAULT_LIMIT, build_site


@click.command()
@click.argument("rev_range", default="HEAD", metavar="[REV-RANGE]")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Folder to write index.html into (default: .git/pwd/report).")
@click.option("-n", "--max-count", default=DEFAULT_LIMIT, show_default=True, type=click.IntRange(min=1),
              help="How many commits of the range (first parent, newest first).")
@click.option("--run-key", metavar="KEY", help="Only results of this run (see `git pwd show`).")
@format_option("json")
def report(rev_range: str, out_dir: Path | None, max_count: int, run_key: str | None, fmt: str) -> None:
    """Write a self-contained HTML report of REV-RANGE's results (default HEAD).

    Metric history per commit (acc, acc_norm, control, each level) with verdicts, a concept x
    commit heatmap, the latest diagnosis with links to each finding's line (on the forge when
    origin is GitHub or GitLab), the KB's size, repair rounds and stored bisect conclusions.
    One file, no script, nothing fetched: open it from disk or publish it (CI templates
    upload it to Pages). Long histories are drawn as at most 200 points per series (means of consecutive commits).
    """
    summary = build_site(Domain.find("."), rev_range, out_dir, limit=max_count, run_key=run_key)
    if fmt == "json":
        echo_json(summary)
        return
    click.echo(f"wrote {summary['path']}: {summary['results']} result(s) on {summary['commits']} commit(s)"
               + ("" if summary["results"] else "; record results with `git pwd run`"))
    click.echo(f"open {summary['url']}")

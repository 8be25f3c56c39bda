"""`git pwd log` and `git pwd show`: results from git notes."""

from __future__ import annotations

import click

from pwd_git.kb.loader import Domain
from pwd_git.metrics import Metric
from pwd_git.output import echo_json, format_option
from pwd_git.results import history
from pwd_git.revision import at


def _metrics(entry: dict | None) -> dict:
    """The metrics of a (schema-checked) note line; a line from another tool may have none."""
    return (entry or {}).get("metrics") or {}


COLUMNS = ("acc", "L1", "L2", "L3", "control")  # names of the one metrics grammar (pwd_git/metrics.py)


def _cell(entry: dict | None, name: str) -> str:
    value = Metric(name).value(_metrics(entry))
    return "-" if value is None else f"{value:.2f}"


@click.command()
@click.argument("rev_range", default="HEAD", metavar="[REV-RANGE]")
@click.option("-n", "--max-count", default=30, show_default=True, help="How many commits.")
@click.option("--all", "all_branches", is_flag=True,
              help="Every local branch (patch and repair branches too), newest first, like `git log --branches`.")
@format_option("json")
def log(rev_range: str, max_count: int, all_branches: bool, fmt: str) -> None:
    """Results per commit (newest first): accuracy per level, control, verdict.

    A commit with no note of its own shows a result recorded on another commit with the
    same build and run key, marked `=`: the model would be identical.
    """
    if all_branches and rev_range != "HEAD":
        raise click.UsageError("--all takes no REV-RANGE")
    rows = history(Domain.find("."), None if all_branches else rev_range, max_count)
    if fmt == "json":
        echo_json([{"commit": r.commit, "date": r.date, "subject": r.subject, "reused_from": r.reused_from,
                    "result": r.entry} for r in rows])
        return
    heads = " ".join(f"{'ctrl' if c == 'control' else c:>5}" for c in COLUMNS)
    click.echo(f"{'commit':10}  {'date':10}  {heads}  {'verdict':7}  subject")
    for r in rows:
        e = r.entry
        cells = " ".join(f"{_cell(e, c):>5}" for c in COLUMNS)
        verdict = (e.get("verdict", "?") + ("=" if r.reused_from else "")) if e else "-"
        click.echo(f"{r.commit[:10]}  {r.date}  {cells}  {verdict:7}  {r.subject[:60]}")


@click.command()
@click.argument("rev", default="HEAD")
@format_option("json")
def show(rev: str, fmt: str) -> None:
    """Every recorded result on REV, with per-level metrics and failed items."""
    domain = Domain.find(".")
    commit = domain.repo.resolve(rev)
    entries = at(domain, commit).results()
    if fmt == "json":
        echo_json({"commit": commit, "results": entries})
        return
    if not entries:
        click.echo(f"no results recorded on {commit[:10]}; run `git pwd test --rev {rev}`")
        return
    for e in entries:
        m = _metrics(e)
        click.echo(f"{commit[:10]}  {e.get('time', '?')}  run {e.get('run_key', '?')}  verdict {e.get('verdict', '?')}")
        click.echo(f"  acc {m.get('acc', 0):.3f}  acc_norm {m.get('acc_norm', 0):.3f}  n={m.get('n', 0)}")
        for level, v in m.get("levels", {}).items():
            click.echo(f"  {level}: {v['acc']:.3f} (n={v['n']})")
        if m.get("control"):
            click.echo(f"  control: {m['control']['acc']:.3f} (n={m['control']['n']})")
        failed = e.get("failed", [])
        click.echo(f"  failed items ({len(failed)}): {' '.join(failed[:12])}{' ...' if len(failed) > 12 else ''}")

"""`git pwd test`: run the benchmark as a unit-test suite and record the result."""

from __future__ import annotations

import click

from pwd_git.errors import EXIT_FAILED
from pwd_git.evaluate.verdict import levels_at_chance
from pwd_git.kb.loader import Domain
from pwd_git.output import StepProgress, echo_json, format_option, item_line, log_to_stderr


def print_report(report, verbose: bool = False) -> None:
    entry, verdict = report.entry, report.verdict
    m = entry["metrics"]
    levels = "  ".join(f"{lvl} {v['acc']:.2f} (n={v['n']})" for lvl, v in m["levels"].items())
    click.echo(f"acc {m['acc']:.3f}  acc_norm {m['acc_norm']:.3f}  n={m['n']}   {levels}")
    if m.get("control"):
        click.echo(f"control (out of domain): acc {m['control']['acc']:.3f} (n={m['control']['n']})")
    if report.reused_from:
        click.echo(f"(result reused from {report.reused_from[:10]}: same build and run key)")
    for failure in verdict.threshold_failures:
        click.echo(f"threshold: {failure}")
    for weak in levels_at_chance(list(report.items.values()), report.per_item, report.alpha):
        click.echo(f"warning: {weak.level} {weak.acc:.2f} is no better than guessing ({weak.chance:.2f} by chance, "
                   f"n={weak.n}, p={weak.p_value:.2f}); `git pwd diagnose` says why")
    if verdict.p_value is not None:
        click.echo(f"against baseline {str(verdict.baseline)[:10]}: {len(verdict.regressed_items)} item(s) regressed, "
                   f"{len(verdict.fixed_items)} fixed (paired McNemar test of a regression: p={verdict.p_value:.4f})")
        targeted = (entry.get("baseline") or {}).get("targeted") or []
        if targeted:
            hit = sum(report.per_item.get(i, False) for i in targeted)
            fixed = set(verdict.fixed_items)
            click.echo(f"patch targets: {hit} of the {len(targeted)} failed item(s) the new patch examples were "
                       f"written to fix now pass; elsewhere {len(fixed - set(targeted))} fixed, "
                       f"{len(verdict.regressed_items)} regressed")
        weak = sorted(c for c, v in m["concepts"].items() if v["acc"] < 1.0)
        shown = len(verdict.regressed_items) if verbose else 10
        for item_id in verdict.regressed_items[:shown]:
            item = report.items.get(item_id)
            click.echo(f"  regressed: {item_line(item) if item else item_id}")
        if len(verdict.regressed_items) > shown:
            click.echo(f"  ... and {len(verdict.regressed_items) - shown} more (-v or --format json lists all)")
        if verdict.regressed_items and weak:
            click.echo(f"  concepts with failures: {', '.join(weak[:15])}")
    if not report.recorded:
        where = "not recorded" + (f": {report.differs}" if report.differs else "")
        if report.was:
            where += f"; the note on {report.commit[:10]} says {_judged(report.was)}"
    else:
        where = f"recorded on {report.commit[:10]}"
        if report.was:
            where += f" as its latest verdict (it was {_judged(report.was)})"
    status = click.style("PASS", fg="green") if verdict.ok else click.style("FAIL", fg="red")
    click.echo(f"{status}  ({len(entry['failed'])} of {m['n']} items failed; {where})")


def _judged(judgment: dict) -> str:
    """An earlier verdict of a note line, in words: `pass against 1a2b3c4d5e`."""
    baseline = (judgment.get("baseline") or {}).get("commit")
    return f"{judgment.get('verdict')} " + (f"against {str(baseline)[:10]}" if baseline else "by its thresholds alone")


@click.command()
@click.option("--rev", metavar="REV", help="Test a commit (default: the working tree, recorded on HEAD if equal).")
@click.option("--baseline", metavar="REV", help="Compare item by item with this revision, `auto` (the nearest ancestor "
              "with a result) or `none` (default: test.baseline, else auto).")
@click.option("--no-record", is_flag=True, help="Do not write the result to git notes.")
@click.option("-v", "--verbose", is_flag=True, help="List every regressed item.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@format_option("json")
def test(rev: str | None, baseline: str | None, no_record: bool, verbose: bool, quiet: bool, fmt: str) -> None:
    """Score the benchmark and judge it like a unit-test run.

    Every benchmark item is multiple choice, scored by log-likelihood (acc and
    acc_norm), batched, and reported per level (L1/L2/L3), concept and chain. The
    result is appended as one JSON line to the git note on the commit
    (refs/notes/pwd/results). Exit 0 when test.thresholds in pwd.yaml hold and no
    regression against the baseline beyond noise (exact McNemar test on the items
    both runs share, test.alpha); exit 1 otherwise. Trains first if needed.
    """
    from pwd_git.evaluate.run import evaluate

    progress = StepProgress(not quiet and fmt == "text")
    try:
        report = evaluate(Domain.find("."), rev, baseline=baseline, record=not no_record,
                          log=log_to_stderr(not quiet and fmt == "text"), on_step=progress)
    finally:
        progress.close()
    if fmt == "json":
        echo_json({**report.entry, "verdict": report.verdict.as_dict(),
                   "recorded_on": report.commit if report.recorded else None})
    else:
        print_report(report, verbose)
    raise SystemExit(0 if report.verdict.ok else EXIT_FAILED)

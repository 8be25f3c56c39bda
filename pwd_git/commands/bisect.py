"""`git pwd bisect`: the data commit that made the model regress (and the hidden step verb)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from pwd_git.errors import EXIT_FAILED
from pwd_git.kb.loader import Domain
from pwd_git.metrics import SYNTAX
from pwd_git.output import StepProgress, echo_json, format_option, item_line, log_to_stderr

_SOURCES = {"model-cache": "scored with a cached model", "notes": "answered from notes",
            "reused": "reused (same KB state)", "skipped": "skipped"}


@click.command()
@click.argument("good")
@click.argument("bad")
@click.option("--metric", default="acc", show_default=True, metavar="M",
              help=f"{SYNTAX}: the items that decide good or bad.")
@click.option("--threshold", type=float, metavar="T",
              help="Also call a commit bad when the metric falls below T (GOOD must reach it).")
@click.option("--no-train", is_flag=True, help="Answer from recorded results (git notes) only; skip the rest.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@format_option("json")
def bisect(good: str, bad: str, metric: str, threshold: float | None, no_train: bool, quiet: bool, fmt: str) -> None:
    """Find the first commit between GOOD and BAD whose model regressed.

    Drives real `git bisect run` (first parent only: a merge is one step) in a
    temporary worktree, so your checkout, branch and uncommitted changes are never
    touched. Each step answers from a recorded result (git notes) when one matches the
    commit's KB state, reuses the verdict of a commit with the same KB state, and only
    otherwise builds, trains and tests the commit from the object store (recording a
    note). A commit is bad when its items regress significantly against GOOD's (the
    `test` rule: one-sided exact McNemar at test.alpha) or the metric falls below
    --threshold; a suggestive but not significant drop is skipped, never guessed.
    The repo is always restored (`git bisect reset`, worktree removed). The
    conclusion is kept as a note in refs/notes/pwd/bisect on the first bad commit
    (on BAD when it cannot be pinned down), which `git pwd report` lists and
    `git pwd notes push` shares.

    Exit 0 when the first bad commit is found; 1 when it cannot be pinned down (only
    skipped commits left) or BAD is not worse than GOOD; 2 on bad input.
    """
    from pwd_git.bisect import bisect as run_bisect

    domain = Domain.find(".")
    progress = StepProgress(not quiet and fmt == "text")
    try:
        report = run_bisect(domain, good, bad, metric=metric, threshold=threshold, no_train=no_train,
                            log=log_to_stderr(not quiet and fmt == "text"), on_step=progress)
    finally:
        progress.close()
    if fmt == "json":
        echo_json(report.as_dict())
    else:
        _print(report)
    if report.first_bad is None:
        raise SystemExit(EXIT_FAILED)


def _print(report) -> None:
    fb = report.first_bad
    if fb is None:
        click.echo("could not pin down the first bad commit: only skipped commits are left. It is one of:")
        reasons = {s["commit"]: s["reason"] for s in report.steps if s["verdict"] == "skip"}
        for commit in report.candidates:
            click.echo(f"  {commit[:10]}" + (f"  (skipped: {reasons[commit]})" if commit in reasons else ""))
    else:
        click.echo(click.style(f"first bad commit: {fb['commit']}", fg="red", bold=True))
        click.echo(f"    {fb['subject']}")
        click.echo(f"    Author: {fb['author']}")
        click.echo(f"    Date:   {fb['date']}")
        if report.verdict:
            click.echo(f"    verdict: {report.verdict['reason']}")
        _print_changes(report)
        _print_flips(report)
    counts = report.counts
    done = "".join(f", {counts[k]} {label}" for k, label in _SOURCES.items() if counts.get(k))
    click.echo(f"\ncost: {report.commits_in_range} commit(s) in range, {report.kb_states} distinct KB state(s); "
               f"{report.trained} trained{done}")
    click.echo("\ngit bisect log:")
    for line in report.bisect_log.strip().splitlines():
        click.echo(f"  {line}")
    if report.stored:
        click.echo(f"\nconclusion stored: {report.stored['ref']} on {report.stored['commit'][:10]}")


def _print_changes(report) -> None:
    parent = report.first_bad["parent"]
    click.echo(f"\nwhat changed ({parent[:10]} -> {report.first_bad['commit'][:10]}):")
    for line in report.config_changes:
        click.echo(f"  pwd.yaml  {line}")
    diff = report.kb_diff or {}
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for node in diff.get("nodes", []):
        click.echo(f"  {marks[node['change']]} {node['kind']} {node['id']}  ({node['location']})")
    for cid, delta in (diff.get("train_deltas") or {}).items():
        click.echo(f"  training records for {cid}: {delta:+d}")
    if diff.get("patches_added") or diff.get("patches_removed"):
        click.echo(f"  patch examples: +{len(diff['patches_added'])} -{len(diff['patches_removed'])}")
    if diff.get("bench_added") or diff.get("bench_removed"):
        click.echo(f"  benchmark: +{len(diff['bench_added'])} -{len(diff['bench_removed'])} items")
    if not (report.config_changes or diff.get("nodes") or diff.get("train_deltas") or diff.get("patches_added")
            or diff.get("patches_removed")):
        click.echo("  no KB node, pwd.yaml or patch example change (other KB files only)")


def _print_flips(report) -> None:
    flips = report.flipped
    if "skipped" in flips:
        click.echo(f"\nflipped items not computed: {flips['skipped']}")
        return
    click.echo(f"\n{report.metric} items that flipped at {report.first_bad['commit'][:10]}, against its parent "
               f"{flips['parent'][:10]} ({flips['common']} item(s) both have): {len(flips['regressed'])} pass -> fail, "
               f"{len(flips['fixed'])} fail -> pass")
    if flips["not_at_good"]:
        click.echo(f"  {flips['not_at_good']} of the pass -> fail items are not in GOOD's benchmark (new, or a new id "
                   "since GOOD): the verdict against GOOD does not count them")
    for item in flips["regressed"][:15]:
        click.echo(f"  - {item_line(item)}")
    if len(flips["regressed"]) > 15:
        click.echo(f"  ... and {len(flips['regressed']) - 15} more (--format json lists all)")
    for item in flips["fixed"][:5]:
        click.echo(f"  + {item['level']} {item['id'][:12]}  {item['source']}")
    if flips["concepts"]:
        click.echo("concepts: " + ", ".join(f"{cid} {_acc(v['before'])} -> {_acc(v['after'])}"
                                            for cid, v in list(flips["concepts"].items())[:12]))


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@click.command("bisect-step", hidden=True)
@click.option("--state", "state_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
def bisect_step(state_path: Path) -> None:
    """Internal: one `git bisect run` step (0 good, 1 bad, 125 skip, 128 abort)."""
    import signal

    from pwd_git.bisect import ABORT, run_step

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)  # so partial model-cache entries are cleaned up
    try:
        code, line = run_step(state_path)
        with contextlib.suppress(OSError):  # the answer is the exit code; the line is for the session's log
            click.echo(line)
    except KeyboardInterrupt:
        code = ABORT + 2
    except BaseException as exc:  # any other exit code would read as "bad" to git bisect
        code = ABORT
        with contextlib.suppress(OSError):  # a closed pipe must not turn the abort into exit 0 ("good")
            click.echo(f"pwd-bisect: step failed: {exc}", err=True)
    raise SystemExit(code)

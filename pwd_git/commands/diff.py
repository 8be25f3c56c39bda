"""`git pwd diff`: what a data change means, in KB terms rather than YAML lines."""

from __future__ import annotations

import click

from pwd_git.kb.loader import Domain
from pwd_git.kbdiff import diff_revisions
from pwd_git.output import echo_json, format_option

_MARK = {"added": click.style("+", fg="green"), "removed": click.style("-", fg="red"), "changed": click.style("~", fg="yellow")}


@click.command()
@click.argument("old", metavar="A")
@click.argument("new", metavar="[B]", required=False)
@click.option("--stat", is_flag=True, help="Only the summary lines, no field diffs or item lists.")
@format_option("json")
def diff(old: str, new: str | None, stat: bool, fmt: str) -> None:
    """Semantic diff of the KB between revision A and B (default: the working tree).

    Lists concepts, statements and chains added (+), removed (-) and changed (~)
    with field-level unified diffs, the pwd.yaml settings and patch examples that
    changed, the change in training records per concept, and the benchmark items
    added or removed. Exit 0 always (like `git diff`).
    """
    result = diff_revisions(Domain.find("."), old, new)
    if fmt == "json":
        echo_json(result.as_dict())
        return
    if result.empty:
        click.echo(f"no KB changes between {result.old} and {result.new}")
        return
    for node in result.nodes:
        click.echo(f"{_MARK[node.change]} {node.kind} {node.id}  ({node.location})")
        if node.diff and not stat:
            click.echo("\n".join("    " + line for line in node.diff.splitlines()))
    for setting in result.settings:
        click.echo(f"{_MARK[setting.change]} pwd.yaml {setting}")
    if result.patches_added or result.patches_removed:
        click.echo(f"patch examples: +{len(result.patches_added)} -{len(result.patches_removed)}")
        if not stat:
            for mark, examples in (("+", result.patches_added), ("-", result.patches_removed)):
                for ex in examples:
                    click.echo(f"  {mark} {ex['location']} {ex['kind'] or 'example'} ({', '.join(ex['concepts'])})")
    if result.data_skipped:
        click.echo(f"training records and benchmark items not compared: {result.data_skipped}")
    if result.train_deltas:
        click.echo("training records per concept:")
        for cid, delta in result.train_deltas.items():
            click.echo(f"  {cid}: {delta:+d}")
    if not result.data_skipped:
        click.echo(f"benchmark: +{len(result.bench_added)} -{len(result.bench_removed)} items")
    if not stat:
        for item in result.bench_added:
            click.echo(f"  + {item['level']} {item['id']} {item['question']}")
        for item in result.bench_removed:
            click.echo(f"  - {item['level']} {item['id']} {item['question']}")

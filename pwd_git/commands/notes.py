"""`git pwd notes setup|push|pull`: share results and bisect conclusions (git notes) with a remote."""

from __future__ import annotations

import click

from pwd_git import notes as results_notes
from pwd_git.kb.loader import Domain
from pwd_git.output import echo_json, format_option


@click.group()
def notes() -> None:
    """Share test results and bisect conclusions (refs/notes/pwd/results, refs/notes/pwd/bisect)."""


@notes.command()
@click.option("--remote", default="origin", show_default=True)
@format_option("json")
def setup(remote: str, fmt: str) -> None:
    """Configure cat_sort_uniq merging, `git log` display and the fetch refspec."""
    done = results_notes.setup(Domain.find(".").repo, remote)
    if fmt == "json":
        echo_json({"remote": remote, "set": done})
        return
    for line in done:
        click.echo(f"set {line}")


@notes.command()
@click.option("--remote", default="origin", show_default=True)
@format_option("json")
def pull(remote: str, fmt: str) -> None:
    """Fetch the remote's notes and merge them into ours (cat_sort_uniq)."""
    got = results_notes.pull(Domain.find(".").repo, remote)
    if fmt == "json":
        echo_json({"remote": remote, "merged": bool(got), "refs": got})
        return
    click.echo(f"merged {', '.join(got)} from {remote}" if got else f"{remote} has no results yet")


@notes.command()
@click.option("--remote", default="origin", show_default=True)
@click.option("--retries", default=5, show_default=True)
@format_option("json")
def push(remote: str, retries: int, fmt: str) -> None:
    """Fetch, merge and push the notes; retries when the push is rejected. Never forces."""
    attempts = results_notes.push(Domain.find(".").repo, remote, retries)
    if fmt == "json":
        echo_json({"remote": remote, "pushed": True, "attempts": attempts})
        return
    click.echo(f"pushed results to {remote}" + (f" after {attempts} attempts" if attempts > 1 else ""))

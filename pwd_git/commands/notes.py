"""`git pwd notes setup|push|pull`: share results (git notes) with a remote."""

from __future__ import annotations

import click

from pwd_git import notes as results_notes
from pwd_git.kb.loader import Domain


@click.group()
def notes() -> None:
    """Share test results stored in refs/notes/pwd/results."""


@notes.command()
@click.option("--remote", default="origin", show_default=True)
def setup(remote: str) -> None:
    """Configure cat_sort_uniq merging, `git log` display and the fetch refspec."""
    for line in results_notes.setup(Domain.find(".").repo, remote):
        click.echo(f"set {line}")


@notes.command()
@click.option("--remote", default="origin", show_default=True)
def pull(remote: str) -> None:
    """Fetch the remote's results and merge them into ours (cat_sort_uniq)."""
    got = results_notes.pull(Domain.find(".").repo, remote)
    click.echo("merged results from " + remote if got else f"{remote} has no results yet")


@notes.command()
@click.option("--remote", default="origin", show_default=True)
@click.option("--retries", default=5, show_default=True)
def push(remote: str, retries: int) -> None:
    """Fetch, merge and push results; retries when the push is rejected. Never forces."""
    attempts = results_notes.push(Domain.find(".").repo, remote, retries)
    click.echo(f"pushed results to {remote}" + (f" after {attempts} attempts" if attempts > 1 else ""))

"""`git pwd init`: scaffold a domain repo from a template."""

from __future__ import annotations

from pathlib import Path

import click

from pwd_git.output import echo_json, format_option
from pwd_git.resources import template_names
from pwd_git.scaffold import init_domain


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("-t", "--template", default="minimal", show_default=True, metavar="NAME",
              help=f"Domain scaffold: {', '.join(template_names())}. 'example' is a complete cell-biology KB.")
@format_option("json")
def init(directory: str, template: str, fmt: str) -> None:
    """Create a domain repo in DIRECTORY (default: here).

    Runs `git init` when needed and writes pwd.yaml, concepts/, chains/, patches/,
    a .pre-commit-config.yaml that validates the KB on every commit, and a
    .gitattributes marking shards/ as generated. Nothing is committed.
    """
    written = init_domain(directory, template)
    if fmt == "json":
        root = Path(directory).resolve()
        echo_json({"directory": str(root), "template": template,
                   "files": sorted(path.relative_to(root).as_posix() for path in written)})
        return
    click.echo(f"Created {template} domain in {click.format_filename(directory)} ({len(written)} files).")
    click.echo("Next: git pwd validate  &&  git add -A && git commit -m 'Initial KB'")

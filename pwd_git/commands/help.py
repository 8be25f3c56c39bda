"""`git pwd help [VERB...]`: click's help, since `git pwd --help` is git's (it opens the man page)."""

from __future__ import annotations

import click

from pwd_git.errors import PwdError, quote


@click.command("help")
@click.argument("verb", nargs=-1)
@click.pass_context
def help_(ctx: click.Context, verb: tuple[str, ...]) -> None:
    """Print the help of git pwd or of VERB (`git pwd help hooks install`).

    `git pwd --help` and `git help pwd` open the git-pwd(1) man page instead: git
    turns them into `man git-pwd`.
    """
    sub = ctx.find_root()
    for name in verb:
        command = sub.command.get_command(sub, name) if isinstance(sub.command, click.Group) else None
        if command is None:
            raise PwdError(f"no verb {quote(' '.join(verb))}", hint="`git pwd help` lists them")
        sub = click.Context(command, info_name=name, parent=sub)
    click.echo(sub.get_help())

"""`git pwd completion bash|zsh`: shell completion that hooks into git's completion of `git pwd`."""

from __future__ import annotations

import click


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (`git pwd <TAB>`, git-pwd, pwd-git).

    \b
    bash:  eval "$(git pwd completion bash)"          in ~/.bashrc, after git's completion
    zsh:   git pwd completion zsh > ~/.zfunc/_git-pwd  with ~/.zfunc on $fpath before compinit

    The package also installs both scripts under its prefix, in
    share/bash-completion/completions (loaded on demand by bash-completion from a
    system-wide or `pip install --user` install) and share/zsh/site-functions.
    """
    from pwd_git.completion import SCRIPTS

    click.echo(SCRIPTS[shell], nl=False)

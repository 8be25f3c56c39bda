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

    The package also installs both scripts into share/bash-completion/completions and
    share/zsh/site-functions, where a system-wide or `pip install --user` install is
    found without any setup.
    """
    from pwd_git.completion import SCRIPTS

    click.echo(SCRIPTS[shell], nl=False)

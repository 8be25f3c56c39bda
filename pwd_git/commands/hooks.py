"""`git pwd hooks install|uninstall|status|ci`: train and test on every commit, share results."""

from __future__ import annotations

import click

from pwd_git.kb.loader import Domain
from pwd_git.output import echo_json, format_option


@click.group()
def hooks() -> None:
    """Commit-triggered training: git hooks and CI templates.

    \b
    post-commit  queues the new commit and starts a background worker that builds,
                 trains and tests it (`git pwd queue` shows it); the commit never waits
    pre-push     pushes the results (git notes) along with your push
    """


@hooks.command()
@format_option("json")
def install(fmt: str) -> None:
    """Install the post-commit and pre-push hooks and set up notes sharing.

    An existing hook (pre-commit's, or your own) is kept as <hook>.pwd-previous and
    run first; `git pwd hooks uninstall` puts it back exactly.
    """
    from pwd_git.hooks import install as do_install

    _say(do_install(Domain.find(".")), fmt)


@hooks.command()
@format_option("json")
def uninstall(fmt: str) -> None:
    """Remove the hooks and restore whatever was there before."""
    from pwd_git.git import Repo
    from pwd_git.hooks import uninstall as do_uninstall

    _say(do_uninstall(Repo.discover(".")), fmt)


def _say(done: list[str], fmt: str) -> None:
    """What install or uninstall did: a line each, or {"done": [...]}."""
    if fmt == "json":
        echo_json({"done": done})
        return
    for line in done:
        click.echo(line)


@hooks.command("status")
@format_option("json")
def hooks_status(fmt: str) -> None:
    """Which pwd-git hooks are installed."""
    from pwd_git.git import Repo
    from pwd_git.hooks import installed_dir, status

    repo = Repo.discover(".")
    hooks = {name: {"installed": ours, "path": str(installed_dir(repo) / name)} for name, ours in status(repo).items()}
    if fmt == "json":
        echo_json({"hooks": hooks})
        return
    for name, hook in hooks.items():
        click.echo(f"{name}: {'installed' if hook['installed'] else 'not installed'} ({hook['path']})")


@hooks.command()
@click.argument("forge", type=click.Choice(["github", "gitlab"]))
def ci(forge: str) -> None:
    """Print a CI template that tests pushed commits and pushes the notes.

    \b
    git pwd hooks ci github > .github/workflows/pwd.yml
    git pwd hooks ci gitlab >> .gitlab-ci.yml
    """
    from pwd_git.resources import templates_dir

    name = {"github": "github-workflow.yml", "gitlab": "gitlab-ci.yml"}[forge]
    click.echo((templates_dir() / "ci" / name).read_text(), nl=False)


@hooks.command("run", hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("hook", type=click.Choice(["post-commit", "pre-push"]))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run_hook(hook: str, args: tuple[str, ...]) -> None:
    """Internal: the body of an installed hook. Never fails the git operation."""
    from pwd_git.errors import PwdError
    from pwd_git.git import Repo
    from pwd_git.hooks import post_commit, pre_push

    try:
        repo = Repo.discover(".")
        message = post_commit(repo) if hook == "post-commit" else pre_push(repo, args[0] if args else "origin")
    except PwdError as exc:
        message = f"pwd-git: {hook} hook: {exc.message}"
    if message:
        click.echo(message, err=True)

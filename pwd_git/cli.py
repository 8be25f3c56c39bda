"""The `pwd-git` / `git pwd` command line: a thin click layer over the library API.

Each verb lives in its own module under `pwd_git/commands/`. This module only wires them
up and turns errors into one clear line and an exit code (tracebacks only with --debug).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import click

from pwd_git import __version__
from pwd_git import commands as _commands
from pwd_git.completion import COMPLETE_VAR
from pwd_git.errors import EXIT_USAGE, PwdError, quote
from pwd_git.model import quiet_libraries

HELP = """Programming with Data, git-native: fine-tune language models on a domain's knowledge
the way you build software.

\b
  knowledge base (YAML in git)   = source code
  git pwd build                  = compile data: KB -> training shards + benchmark
  git pwd train                  = compile the model
  git pwd test                   = run the benchmark as unit tests (results in git notes)
  git pwd diagnose / patch       = debug: trace failures to KB nodes, write data patches
  git pwd bisect                 = find the data commit that broke the model

Start with `git pwd init --template example demo && cd demo && git pwd validate`.
Run `git pwd VERB --help` for any verb. Exit codes: 0 ok, 1 check failed, 2 usage error.
"""


class _LazyGroup(click.Group):
    """Imports a verb's module only when that verb runs (or help lists them all)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_commands.VERBS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self.commands.get(name) or _commands.load(name)


@click.group(cls=_LazyGroup, help=HELP,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="pwd-git")
@click.option("--debug", is_flag=True, envvar="PWD_GIT_DEBUG", help="Show full tracebacks on errors.")
@click.option("-C", "directory", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Run as if started in DIR (like `git -C`).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, directory: str | None) -> None:
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if directory:
        if not os.path.isdir(directory):
            raise PwdError(f"cannot change to {quote(directory)}: no such directory")
        os.chdir(directory)


class _StderrWarnings(logging.Handler):
    """The library's warnings (logging) as `warning: ...` lines on stderr, each said once per
    command even when the same note is read several times."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.said: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.levelname.lower()}: {record.getMessage()}"
        if line not in self.said:
            self.said.add(line)
            click.echo(line, err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of `pwd-git`, `git-pwd` and `python -m pwd_git`."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or bool(os.environ.get("PWD_GIT_DEBUG"))
    quiet_libraries(debug)
    warnings = _StderrWarnings()
    logging.getLogger("pwd_git").addHandler(warnings)
    try:
        code = _run(argv, debug)
    finally:
        logging.getLogger("pwd_git").removeHandler(warnings)
    sys.exit(code if isinstance(code, int) else 0)


def _run(argv: list[str], debug: bool) -> object:
    """The verb's exit code, with every error turned into one message and a code."""
    from pwd_git.revision import scope

    try:
        with scope():
            code = cli.main(args=argv, prog_name="git pwd", complete_var=COMPLETE_VAR, standalone_mode=False)
    except PwdError as exc:
        if debug:
            traceback.print_exc()
        click.echo(exc.render(), err=True)
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        code = 130
    except BrokenPipeError:
        code = 0
    except Exception as exc:
        if debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc}\n  hint: rerun with --debug for a traceback and "
                   "report it", err=True)
        code = EXIT_USAGE + 1
    return code

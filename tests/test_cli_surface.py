"""`git pwd` as a good git subcommand: quiet libraries, progress without a terminal, JSON
output, the man page and shell completion."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PARTS, git, small_domain


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PWD_GIT_DEBUG", "PYTHONWARNINGS")}
    return {**env, **extra}


# --- third-party warnings: silenced unless --debug ---------------------------------------------

_NOISE = """
import logging, sys, warnings
from pwd_git.model import quiet_libraries
quiet_libraries(debug=sys.argv[1] == "debug")
warnings.warn_explicit("library warning", FutureWarning, "modeling.py", 1, module="peft.tuners.lora")
logging.getLogger("transformers.modeling_utils").warning("library log record")
logging.getLogger("transformers.modeling_utils").error("library error record")
"""


@pytest.mark.parametrize("mode", ["quiet", "debug"])
def test_third_party_warnings_and_logs_show_only_with_debug(mode):
    err = subprocess.run([sys.executable, "-c", _NOISE, mode], capture_output=True, text=True, env=_env(),
                         check=True).stderr
    assert "library error record" in err  # errors always show
    shown = "library warning" in err, "library log record" in err
    assert shown == ((True, True) if mode == "debug" else (False, False)), err


def test_training_a_hugging_face_base_prints_nothing_of_the_libraries(tmp_path):
    """A real `git pwd train` on a local HF base (peft LoRA): stderr holds only our own lines."""
    from pwd_git.model.tiny import build_model, train_tokenizer

    root = small_domain(tmp_path / "d", train="{epochs: 1, batch_size: 16}", base="./base-model")
    tokenizer = train_tokenizer(["a small vehicle has a wheel and a frame"] * 20 + PARTS, 300)
    build_model(tokenizer, {"n_layer": 1, "n_embd": 32, "n_head": 2}).save_pretrained(root / "base-model")
    tokenizer.save_pretrained(root / "base-model")
    env = _env(PWD_GIT_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "pwd_git", "train", "-q"], cwd=root, capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    # our own one-line warnings only (this base has no chat template: docs/training.md)
    assert [line for line in done.stderr.splitlines() if not line.startswith("warning: ")] == [], done.stderr
    assert "Warning" not in done.stderr


# --- progress without a terminal ---------------------------------------------------------------

_STEP_LINE = re.compile(r"^train: step (\d+)/(\d+) \(\d+%\), loss [\d.]+, [\d:]+ elapsed, ETA (?:[\d:]+|--:--)$")


@pytest.mark.parametrize(("seconds", "every_step"), [("0", True), ("3600", False)])
def test_training_without_a_terminal_prints_plain_progress_lines(tmp_path, seconds, every_step):
    """stderr is a pipe (as in CI): plain lines at the first step, every N seconds and the last step."""
    root = small_domain(tmp_path / "d", train="{epochs: 2, batch_size: 4}")
    env = _env(PWD_GIT_CACHE=str(tmp_path / "cache"), PWD_GIT_PROGRESS_SECONDS=seconds)
    done = subprocess.run([sys.executable, "-m", "pwd_git", "train"], cwd=root, capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    steps = [m.groups() for m in map(_STEP_LINE.match, done.stderr.splitlines()) if m]
    total = int(steps[0][1])
    assert total > 2 and steps[0][0] == "1" and steps[-1][0] == str(total), done.stderr
    assert len(steps) == (total if every_step else 2), done.stderr
    assert "\r" not in done.stderr  # no bar redraws in a log file
    # elapsed counts from the training's first step (it once counted from the machine's boot)
    elapsed = re.findall(r"(\d+:\d\d(?::\d\d)?) elapsed", done.stderr)
    assert elapsed and elapsed[0] == "00:00" and all(e.count(":") == 1 for e in elapsed), done.stderr


# --- --format json on every verb whose output is data ------------------------------------------

#: Visible commands whose output is not data: a CI template, a shell script, help text.
NOT_DATA = {"hooks ci", "completion", "help"}


def _leaves(group, prefix: str = ""):
    import click

    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command.hidden:
            continue
        if isinstance(command, click.Group):
            yield from _leaves(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_visible_verb_that_prints_data_has_format_json():
    from pwd_git.cli import cli

    missing = [name for name, command in _leaves(cli) if name not in NOT_DATA
               and not any(p.name == "fmt" and "json" in getattr(p.type, "choices", ()) for p in command.params)]
    assert missing == []


def test_init_json_lists_the_files_written(tmp_path, cli):
    res = cli("init", "--format", "json", "demo", cwd=tmp_path)
    assert res.code == 0, res.output
    info = json.loads(res.out)
    assert info["directory"] == str(tmp_path / "demo") and info["template"] == "minimal"
    assert "pwd.yaml" in info["files"] and all((tmp_path / "demo" / f).is_file() for f in info["files"])


def test_hooks_json_install_status_uninstall(domain, cli):
    installed = json.loads(cli("hooks", "install", "--format", "json", cwd=domain).out)
    assert any("post-commit" in line for line in installed["done"])
    hooks = json.loads(cli("hooks", "status", "--format", "json", cwd=domain).out)["hooks"]
    assert set(hooks) == {"post-commit", "pre-push"} and all(h["installed"] for h in hooks.values())
    assert all(Path(h["path"]).is_file() for h in hooks.values())
    removed = json.loads(cli("hooks", "uninstall", "--format", "json", cwd=domain).out)
    assert len(removed["done"]) == 2
    assert not any(h["installed"] for h in json.loads(cli("hooks", "status", "--format", "json", cwd=domain).out)
                   ["hooks"].values())


def test_notes_json_setup_pull_push(domain, cli, tmp_path):
    git(tmp_path, "init", "-q", "--bare", str(tmp_path / "origin.git"))
    git(domain, "remote", "add", "origin", str(tmp_path / "origin.git"))
    setup = json.loads(cli("notes", "setup", "--format", "json", cwd=domain).out)
    assert setup["remote"] == "origin" and "notes.pwd/results.mergeStrategy=cat_sort_uniq" in setup["set"]
    assert json.loads(cli("notes", "pull", "--format", "json", cwd=domain).out) == {"remote": "origin", "merged": False,
                                                                                  "refs": []}
    pushed = json.loads(cli("notes", "push", "--format", "json", cwd=domain).out)
    assert pushed == {"remote": "origin", "pushed": True, "attempts": 1}


def test_worker_json_summary_and_detach(domain, cli):
    from pwd_git.lock import PidLock

    res = cli("worker", "--once", "--format", "json", cwd=domain)
    assert res.code == 0 and json.loads(res.out) == {"done": 0, "failed": 0, "requeued": 0}
    with PidLock(domain / ".git" / "pwd" / "worker.lock"):
        detached = json.loads(cli("worker", "--detach", "--format", "json", cwd=domain).out)
    assert detached["started"] is False and detached["pid"] == os.getpid() and detached["log"].endswith("worker.log")


# --- the man page: `git pwd --help`, `git help pwd` --------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent)  # where the installed `git-pwd` script lives


def test_checked_in_share_files_are_what_the_code_generates():
    from pwd_git.manpage import shared_data

    stale = [rel for rel, text in shared_data().items() if not (ROOT / rel).is_file() or (ROOT / rel).read_text() != text]
    assert stale == [], "regenerate with `python -m pwd_git.manpage --write` and commit share/"


def test_the_wheel_installs_every_share_file():
    import tomllib

    from pwd_git.manpage import shared_data

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    installed = config["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    assert installed == {rel: rel for rel in shared_data()}


def test_the_man_page_documents_every_visible_verb():
    from pwd_git.cli import cli
    from pwd_git.manpage import render

    page = render()
    for name, _command in _leaves(cli):
        assert f'.SS "git pwd {name}'.replace("-", "\\-") in page, name


@pytest.mark.skipif(shutil.which("man") is None, reason="man (man-db) is not installed")
@pytest.mark.parametrize("argv", [["pwd", "--help"], ["help", "pwd"]])
def test_git_help_opens_the_generated_man_page(tmp_path, argv):
    """git turns `git pwd --help` into `git help pwd`, which runs `man git-pwd`."""
    env = _env(MANPATH=str(ROOT / "share" / "man"), MANPAGER="cat", PAGER="cat", MANWIDTH="80",
               PATH=BIN + os.pathsep + os.environ["PATH"])
    done = subprocess.run(["git", *argv], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "GIT-PWD(1)" in done.stdout and "git pwd build [OPTIONS]" in done.stdout and "EXIT STATUS" in done.stdout


def test_help_verb_and_dash_dash_help_print_the_click_help(tmp_path, cli):
    top = cli("help", cwd=tmp_path)
    assert top.code == 0 and top.out == cli("--help", cwd=tmp_path).out and "Usage: git pwd" in top.out
    verb = cli("help", "hooks", "install", cwd=tmp_path)
    assert verb.code == 0 and verb.out == cli("hooks", "install", "--help", cwd=tmp_path).out
    assert "Usage: git pwd hooks install" in verb.out
    unknown = cli("help", "hooks", "nope", cwd=tmp_path)
    assert unknown.code == 2 and "'hooks nope'" in unknown.err and "Traceback" not in unknown.output


# --- shell completion hooked into git's ----------------------------------------------------------

GIT_COMPLETION = Path("/usr/share/bash-completion/completions/git")

_COMPLETE = """
source "$1"; shift
eval "$(git-pwd completion bash)"
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
if [[ $1 == git ]]; then __git_wrap__git_main; else _pwd_git; fi
printf '%s\\n' "${COMPREPLY[@]}"
"""


def _complete(tmp_path, *words: str) -> list[str]:
    env = _env(PATH=BIN + os.pathsep + os.environ["PATH"])
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", _COMPLETE, "complete", str(GIT_COMPLETION), *words],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.skipif(not GIT_COMPLETION.is_file(), reason=f"git's bash completion ({GIT_COMPLETION}) is not installed")
@pytest.mark.skipif(shutil.which("git-pwd", path=BIN) is None, reason="the git-pwd script is not installed next to python")
def test_bash_completion_of_git_pwd_goes_through_gits_completion(tmp_path):
    assert _complete(tmp_path, "git", "pwd", "bu") == ["build"]
    assert {"--rev", "--check", "--format", "--quiet"} <= set(_complete(tmp_path, "git", "pwd", "build", "--"))
    assert {"install", "status", "uninstall"} <= set(_complete(tmp_path, "git", "pwd", "hooks", ""))
    assert _complete(tmp_path, "git", "-C", ".", "pwd", "vali") == ["validate"]
    assert "textconv" not in _complete(tmp_path, "git", "pwd", "")  # hidden verbs stay hidden
    assert _complete(tmp_path, "git-pwd", "diag") == ["diagnose"]  # the script called directly


def test_completion_variable_has_no_space(tmp_path):
    """click would derive `_GIT PWD_COMPLETE` from `git pwd`: the tool answers a fixed variable."""
    from pwd_git.completion import COMPLETE_VAR

    env = _env(**{COMPLETE_VAR: "bash_complete", "COMP_WORDS": "git-pwd sta", "COMP_CWORD": "1"})
    done = subprocess.run([sys.executable, "-m", "pwd_git"], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["plain,status"], done.stdout + done.stderr


_ZSH_TAB = """
zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z "PS1='> '; fpath=($1 \\$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w -n z $'git pwd bu\\t'
zpty -r -m z out '*pwd build *' && print -r -- "completed: $out[-20,-1]"
zpty -d z
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
@pytest.mark.skipif(shutil.which("git-pwd", path=BIN) is None, reason="the git-pwd script is not installed next to python")
def test_zsh_completion_of_git_pwd_goes_through_zshs_git_completion(tmp_path):
    """An interactive zsh (in a pty) with the script on $fpath completes `git pwd bu<TAB>`."""
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "_git-pwd").write_text(subprocess.run([sys.executable, "-m", "pwd_git", "completion", "zsh"],
                                                       capture_output=True, text=True, check=True).stdout)
    env = _env(PATH=BIN + os.pathsep + os.environ["PATH"], TERM="dumb", HOME=str(tmp_path))
    done = subprocess.run(["zsh", "-f", "-c", _ZSH_TAB, "zsh", str(functions)], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=60)
    assert "completed:" in done.stdout and "pwd build" in done.stdout, done.stdout + done.stderr

"""`git pwd` as a good git subcommand: quiet libraries, progress without a terminal, JSON
output, the man page and shell completion."""

from __future__ import annotations

import json
import os
import re
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
    assert done.stderr == ""


# --- progress without a terminal ---------------------------------------------------------------

_STEP_LINE = re.compile(r"^train: step (\d+)/(\d+) \(\d+%\), loss [\d.]+, [\d:]+ elapsed, ETA [\d:]+$")


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
    assert json.loads(cli("notes", "pull", "--format", "json", cwd=domain).out) == {"remote": "origin", "merged": False}
    pushed = json.loads(cli("notes", "push", "--format", "json", cwd=domain).out)
    assert pushed == {"remote": "origin", "pushed": True, "attempts": 1}


def test_worker_json_summary_and_detach(domain, cli):
    from pwd_git.lock import PidLock

    res = cli("worker", "--once", "--format", "json", cwd=domain)
    assert res.code == 0 and json.loads(res.out) == {"done": 0, "failed": 0, "requeued": 0}
    with PidLock(domain / ".git" / "pwd" / "worker.lock"):
        detached = json.loads(cli("worker", "--detach", "--format", "json", cwd=domain).out)
    assert detached["started"] is False and detached["pid"] == os.getpid() and detached["log"].endswith("worker.log")

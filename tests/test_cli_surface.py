"""`git pwd` as a good git subcommand: quiet libraries, progress without a terminal, JSON
output, the man page and shell completion."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import PARTS, small_domain


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

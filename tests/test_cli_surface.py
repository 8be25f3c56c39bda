"""`git pwd` as a good git subcommand: quiet libraries, progress without a terminal, JSON
output, the man page and shell completion."""

from __future__ import annotations

import os
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

#!/usr/bin/env bash
# Create .venv (once) with pwd-git and what it needs: CPU torch, transformers, peft, test tools.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again (it only installs what is missing).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PWD_GIT_VENV:-$here/.venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.pwd-git-installed"
if [[ ! -f "$stamp" || "$here/pyproject.toml" -nt "$stamp" ]]; then
  # torch pinned first: its CPU wheel is small; an unpinned torch pulls GBs of CUDA packages.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check torch==2.13.0
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$here[train,test]"
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"

#!/usr/bin/env bash
# Refresh requirements/lock.txt: resolve pyproject.toml's [train,test,extract] extras plus
# requirements/lock.in to today's newest releases for every supported Python (3.10+), with hashes.
# torch's version comes from requirements/torch.txt; its CUDA runtime packages are not locked
# (they belong to the torch build a machine installs). Then run `bash scripts/test.sh`.
# Usage: bash scripts/lock.sh [uv pip compile options, e.g. --exclude-newer 2026-11-01]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
uv_version=0.13.8
tools="${PWD_GIT_LOCK_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/pwd-git/lock-tools-$uv_version}"
if [[ ! -x "$tools/bin/uv" ]]; then
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$uv_version"
fi
compile() {
  "$tools/bin/uv" pip compile --quiet pyproject.toml requirements/lock.in --extra train --extra test --extra extract \
    --constraint requirements/torch.txt --universal --python-version 3.10 \
    --no-header --no-annotate "$@"
}
# The packages only a CUDA build of torch needs: leave them to the torch install.
skip=()
while read -r name; do skip+=(--no-emit-package "$name"); done < <(
  compile --no-emit-package torch "$@" | grep -oE '^(nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+|triton)==' | tr -d '=' | sort -u)
inputs=$(python3 scripts/lock_inputs.py)
{
  echo "# Locked by scripts/lock.sh (uv $uv_version) from pyproject.toml [train,test,extract] + requirements/lock.in."
  echo "# inputs: $inputs"
  echo "# Installed hash-checked by scripts/bootstrap.sh; torch: requirements/torch.txt. Do not edit by hand."
  compile --generate-hashes --no-emit-package torch "${skip[@]}" "$@"
} > requirements/lock.txt.tmp
mv requirements/lock.txt.tmp requirements/lock.txt
grep -cE '^[a-z0-9]' requirements/lock.txt | xargs printf 'requirements/lock.txt: %s pinned packages\n'

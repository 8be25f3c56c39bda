#!/usr/bin/env bash
# Create the venv (default .venv, or $PWD_GIT_VENV) with pwd-git and exactly the locked versions of
# what it needs: requirements/lock.txt (hash-checked), then torch from requirements/torch.txt.
# Sourced by scripts/demo.sh and scripts/test.sh. Re-running is a no-op until the lock, torch pin or
# pyproject.toml change; then a venv this script made is rebuilt from scratch, so it never drifts.
# PWD_GIT_LATEST=1 (scripts/test.sh --latest) installs today's newest releases instead of the lock.
# PWD_GIT_TORCH overrides the torch requirement (e.g. a CUDA build of the pinned version).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
latest="${PWD_GIT_LATEST:-0}"
if [[ $latest == 1 ]]; then venv="${PWD_GIT_VENV:-$here/.venv-latest}"; else venv="${PWD_GIT_VENV:-$here/.venv}"; fi
torch_req="${PWD_GIT_TORCH:-$(grep -E '^torch' "$here/requirements/torch.txt")}"
want="$(cat "$here/requirements/lock.txt" "$here/pyproject.toml" | sha256sum | cut -c1-16) $torch_req latest=$latest"
stamp="$venv/.pwd-git-installed"
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  if [[ -f $stamp ]]; then rm -rf "$venv"; fi   # ours and out of date: rebuild, never patch in place
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input)
  if [[ $latest == 1 ]]; then
    echo "bootstrap: installing the newest releases into $venv (not the lock)" >&2
    "${pip[@]}" --upgrade --upgrade-strategy eager torch -e "$here[train,test,extract]"
  else
    echo "bootstrap: installing requirements/lock.txt into $venv" >&2
    "${pip[@]}" --require-hashes --no-deps -r "$here/requirements/lock.txt"
    "${pip[@]}" "$torch_req"            # deps already satisfied by the lock; CUDA builds add their runtime
    "${pip[@]}" --no-deps --no-build-isolation -e "$here"
  fi
  "$venv/bin/python" -m pip check --disable-pip-version-check >&2
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"

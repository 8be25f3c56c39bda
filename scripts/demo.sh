#!/usr/bin/env bash
# The main job end to end on the bundled example domain, with the embedded tiny model:
# init -> validate -> build -> commit -> train + test (results in git notes) -> log
# -> diagnose -> patch (branch) -> retrain + test against the baseline -> bisect a regression.
# Usage: bash scripts/demo.sh [WORKDIR]   (default: a fresh temp dir)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh
work="${1:-$(mktemp -d -t pwd-demo-XXXX)}"
rm -rf "$work/cell-biology"
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-pwd-git demo}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-demo@example.com}"
export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME}" GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}"
export PWD_GIT_CACHE="${PWD_GIT_CACHE:-$work/cache}"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step git pwd init --template example "$work/cell-biology"
cd "$work/cell-biology"
step git pwd validate
step git pwd build
step git add -A
step git commit -q -m "Cell biology KB: 55 concepts, 119 statements, 27 chains"
step git pwd run || true              # exit 1 = some benchmark items fail: the model has bugs
step git pwd log

# Debug: trace failures to KB nodes, write a targeted data patch on a branch, retrain, compare.
step git pwd diagnose || true         # exit 1 = there is something to fix
step git pwd patch --branch pwd/patch/demo --train-mode continue  # every diagnosed node; fine-tune HEAD's model on the fix + replay
step git pwd diff HEAD pwd/patch/demo --stat
step git pwd run pwd/patch/demo --baseline HEAD || true
step git pwd log pwd/patch/demo

# Bisect: a history where one commit quietly cuts the training budget; find it.
echo "Notes for reviewers." >> README.md && git add README.md && git commit -q -m "docs: reviewer notes"
sed -i 's/^train: {}/train: {epochs: 1}/' pwd.yaml && git commit -q -am "train: faster CI runs"
echo "More notes." >> README.md && git commit -q -am "docs: more notes"
step git pwd bisect HEAD~3 HEAD --metric L2 --threshold 0.5 || true
printf '\nDemo domain left in %s\n' "$work/cell-biology"

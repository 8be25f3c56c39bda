#!/usr/bin/env bash
# The whole test suite (lint + pytest), from a fresh machine with python3 and git, on the locked
# versions (requirements/lock.txt). `bash scripts/test.sh --latest [PYTEST ARGS]` runs it on today's
# newest releases instead (in .venv-latest), to see drift before a lock refresh makes it everyone's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ${1:-} == --latest ]]; then
  shift
  export PWD_GIT_LATEST=1
fi
source scripts/bootstrap.sh
ruff check pwd_git tests benchmarks
python -m pytest -q "$@"

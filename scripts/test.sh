#!/usr/bin/env bash
# The whole test suite (lint + pytest), from a fresh machine with python3 and git.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh
ruff check pwd_git tests benchmarks
python -m pytest -q "$@"

#!/usr/bin/env bash
# The test suite: installs the system packages the tests need (PostgreSQL, Chromium) when
# missing, sets up .venv on first use, then runs pytest (extra arguments go to pytest).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/system_deps.sh" --test
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec "${CALLQA_VENV:-$ROOT/.venv}/bin/python" -m pytest "$@"

#!/usr/bin/env bash
# The test suite: sets up .venv on first use, then runs pytest (extra arguments go to pytest).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec "${CALLQA_VENV:-$ROOT/.venv}/bin/python" -m pytest "$@"

#!/usr/bin/env bash
# The test suite: installs the system packages the tests need (PostgreSQL, Chromium) when
# missing, sets up .venv on first use, then runs pytest (extra arguments go to pytest).
#   bash scripts/test.sh [PYTEST_ARGS...]         every test (what CI runs: .ci/run), spread over one
#       pytest-xdist worker per core, each test module on one worker (-n auto --dist loadfile:
#       a module's fixtures are set up once); give -n N yourself to choose (-n 0: one process)
#   bash scripts/test.sh --fast [PYTEST_ARGS...]  the quick unit pass (about 3 minutes on 2 cores):
#       leaves out the tests marked slow (pytest -m "not slow"; the marker is described in
#       pyproject.toml: real models over whole recordings, the CLI, worker processes, Ray, a
#       browser, PostgreSQL, or more than ~2 s)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MARK=()
if [[ "${1:-}" == "--fast" ]]; then
    shift
    MARK=(-m "not slow")
fi
PARALLEL=(-n auto --dist loadfile)
for arg in "$@"; do
    case "$arg" in -n|-n*|--numprocesses|--numprocesses=*) PARALLEL=() ;; esac
done
"$ROOT/scripts/system_deps.sh" --test
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec "${CALLQA_VENV:-$ROOT/.venv}/bin/python" -m pytest ${PARALLEL[@]+"${PARALLEL[@]}"} ${MARK[@]+"${MARK[@]}"} "$@"

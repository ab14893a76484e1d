#!/usr/bin/env bash
# Debian packages callqa needs from the system, installed when missing (idempotent; nothing is
# configured system-wide). Always: Python's venv module. With --test, also what the tests use:
# PostgreSQL's server programs (the review tests start a throwaway server of their own) and
# Debian's Chromium (the browser tests drive it with Playwright; no browser is downloaded).
# Runs apt-get as root, through sudo otherwise; says what to install when it cannot.
set -euo pipefail
need=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "${1:-}" = "--test" ]; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "callqa: please install these system packages first: ${need[*]}" >&2
    exit 1
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "callqa: these Debian packages are missing and installing them needs root: ${need[*]}" >&2
        exit 1
    fi
fi
echo "callqa: installing system packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"

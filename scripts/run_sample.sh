#!/usr/bin/env bash
# The main job on the samples: sets up .venv on first use, then runs callqa on the sample
# recordings (recordings_sample/ into out/sample) and on the sample e-mail threads and chats
# (interactions_sample/ into out/sample_written). Re-runs skip what is already done. The exit
# code is the first non-zero one of the two runs (see `callqa run --help`).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh" || exit $?
CALLQA="${CALLQA_VENV:-$ROOT/.venv}/bin/callqa"
"$CALLQA" run "$ROOT/recordings_sample/manifest.csv" --out "$ROOT/out/sample" "$@"
calls=$?
"$CALLQA" run "$ROOT/interactions_sample" --out "$ROOT/out/sample_written" "$@"
written=$?
if [ "$calls" -ne 0 ]; then exit "$calls"; fi
exit "$written"

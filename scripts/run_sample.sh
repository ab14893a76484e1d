#!/usr/bin/env bash
# The main job on the sample recordings: sets up .venv on first use, then runs callqa on
# recordings_sample/ into out/sample (re-runs skip calls already done).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
exec "${CALLQA_VENV:-$ROOT/.venv}/bin/callqa" run "$ROOT/recordings_sample/manifest.csv" --out "$ROOT/out/sample" "$@"

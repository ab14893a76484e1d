#!/usr/bin/env bash
# The main job on the samples: sets up .venv on first use, then runs callqa on the sample
# recordings (recordings_sample/ into out/sample) and on the sample e-mail threads and chats
# (interactions_sample/ into out/sample_written). Re-runs skip what is already done. Then the
# managers' view of both: the sample surveys and ACD records joined to the calls, the weekly
# report with coaching pages (out/sample/report/) and the Voice-of-the-Customer insights
# (out/sample/insights/, out/sample_written/insights/). The exit code is the first non-zero one
# of the two runs (see `callqa run --help`), else of the insight steps.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh" || exit $?
CALLQA="${CALLQA_VENV:-$ROOT/.venv}/bin/callqa"
"$CALLQA" run "$ROOT/recordings_sample/manifest.csv" --out "$ROOT/out/sample" "$@"
calls=$?
"$CALLQA" run "$ROOT/interactions_sample" --out "$ROOT/out/sample_written" "$@"
written=$?
if [ "$calls" -ne 0 ]; then exit "$calls"; fi
if [ "$written" -ne 0 ]; then exit "$written"; fi
"$CALLQA" import surveys "$ROOT/out/sample" "$ROOT/recordings_sample/surveys.csv" || exit $?
"$CALLQA" import acd "$ROOT/out/sample" "$ROOT/recordings_sample/acd.csv" || exit $?
"$CALLQA" report "$ROOT/out/sample" --period week --out "$ROOT/out/sample/report" || exit $?
"$CALLQA" insights "$ROOT/out/sample" --out "$ROOT/out/sample/insights" || exit $?
"$CALLQA" insights "$ROOT/out/sample_written" --out "$ROOT/out/sample_written/insights"

#!/usr/bin/env bash
# Create or update the project's virtual environment in .venv (idempotent, offline-safe:
# everything comes from PyPI or local wheels; no model is downloaded, the models ship in
# packages). Re-installs only when pyproject.toml or this script changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CALLQA_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
OPENAI_WHISPER="openai-whisper==20250625"

# Python's venv module, from Debian when missing.
"$ROOT/scripts/system_deps.sh"

stamp_of() { cat "$ROOT/pyproject.toml" "$ROOT/scripts/bootstrap.sh" | sha256sum | cut -d' ' -f1; }

if [ ! -x "$VENV/bin/python" ]; then
    echo "callqa: creating the environment in $VENV (first use; a few minutes)" >&2
    "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.callqa-installed"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(stamp_of)" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # torch first and pinned: a bare 'torch' requirement could pull a multi-GB GPU build.
    "$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test]"
    "$VENV/bin/python" -m pip install --quiet --no-deps "$OPENAI_WHISPER"
    stamp_of > "$STAMP"
fi

# The real two-speaker telephone recording that ships in the pyannote.audio wheel (with its
# reference RTTM and transcript), for the diarization test and the benchmarks: unpacked from
# the wheel, not installed (pyannote.audio is not a dependency).
SAMPLE_DIR="$VENV/share/callqa/pyannote-sample"
if [ ! -f "$SAMPLE_DIR/sample.stm" ]; then
    tmp="$(mktemp -d)"
    "$VENV/bin/python" -m pip download --quiet --no-deps "pyannote.audio==4.0.7" -d "$tmp"
    "$VENV/bin/python" - "$tmp" "$SAMPLE_DIR" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("pyannote_audio-*.whl"))
out = pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in ("sample.wav", "sample.rttm", "sample.stm"):
        (out / name).write_bytes(z.read(f"pyannote/audio/sample/{name}"))
PY
    rm -rf "$tmp"
fi

"""Model adapters: speech recognition backends, voice activity detection, packaged weights.

Nothing here downloads: every model comes from a package that ships its weights or from a
local path the user configures.
"""

import os

# Offline by construction: set before any heavy import reaches for a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

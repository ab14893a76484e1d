"""Speech recognition of a decoded call: voice-activity regions and word-timed transcription
(the recogniser itself is a model adapter in models/asr*.py)."""

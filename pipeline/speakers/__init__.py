"""Who speaks: channels of stereo calls, diarization turns of mono ones, and which speaker is the
agent and which the customer (roles)."""

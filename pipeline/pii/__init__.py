"""Personal data: found in the words (``text``), masked in everything written, and toned out of
the audio a reviewer may play (``audio``)."""

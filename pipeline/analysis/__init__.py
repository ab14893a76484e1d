"""The analysis stage, the same for every source: conversation metrics, sentiment, the scorecard
items answered by their detectors (``detectors/``), and the scores."""

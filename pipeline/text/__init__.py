"""Text helpers shared by the stages: normalisation for matching and scoring, spoken numbers."""

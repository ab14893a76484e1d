"""Insight for managers over a run folder's interactions: the insight store, contact topics,
repeat contacts, surveys and ACD data joined, KPI goals and reports."""

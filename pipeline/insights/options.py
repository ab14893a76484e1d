"""Options of insight for managers (the ``insights`` section). None of them changes a call's
results: they decide how the archive's results are read, grouped and reported."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.errors import check_options


@dataclass
class TopicOptions:
    """How contact reasons are grouped into topics (``insights.topics``)."""

    min_topic_size: int = 3
    """Fewest contact reasons a topic holds; smaller groups are left as outliers. Over many
    reasons the clustering raises it to 1/(4 x max_topics) of the distinct reasons clustered
    (pipeline/insights/topics.py), so that a large archive is not cut into micro-topics."""
    max_topics: int = 50
    """Most topics kept (the largest)."""
    label_words: int = 3
    """Words in a topic's readable label."""
    min_similarity: float = 0.35
    """A contact reason joins the nearest topic when its embedding's cosine similarity to the
    topic's centroid is at least this (reasons outside the clustered sample, and outliers of
    the clustering); else it stays without a topic."""


@dataclass
class InsightsOptions:
    """The ``insights`` section: topics, repeat contacts, baselines, surveys and ACD matching,
    KPI goals."""

    topics: TopicOptions = field(default_factory=TopicOptions)
    repeat_days: int = 7
    """A contact by the same customer within this many days of an earlier one is a repeat
    contact (and the earlier one not resolved at first contact)."""
    baseline_days: int = 28
    """The baseline period: this many days before the reported period (unless given)."""
    match_tolerance_s: float = 120.0
    """A survey or ACD row without a call id matches the call of the same customer number that
    started within this many seconds of the row's time."""
    min_sample: int = 10
    """Fewest interactions behind a figure before it is shown as a trend or a difference
    (fewer: shown with its count and marked too few to judge)."""
    goals: dict[str, str] = field(default_factory=dict)
    """KPI goals for every team, e.g. ``{qa_score: ">= 0.85", csat: ">= 4.2", hold_s: "<= 60"}``."""
    team_goals: dict[str, dict[str, str]] = field(default_factory=dict)
    """Goals of one team (by team name) over the ones above."""


def validate(options: InsightsOptions) -> None:
    topics = options.topics
    check_options("insights.topics", topics, [
        (topics.min_topic_size >= 2, "min_topic_size", "an integer >= 2"),
        (topics.max_topics >= 1, "max_topics", "an integer >= 1"),
        (1 <= topics.label_words <= 10, "label_words", "an integer from 1 to 10"),
        (-1.0 <= topics.min_similarity <= 1.0, "min_similarity", "a cosine similarity from -1 to 1"),
    ])
    check_options("insights", options, [
        (options.repeat_days >= 1, "repeat_days", "days >= 1"),
        (options.baseline_days >= 1, "baseline_days", "days >= 1"),
        (options.match_tolerance_s >= 0, "match_tolerance_s", "seconds >= 0"),
        (options.min_sample >= 2, "min_sample", "an integer >= 2"),
    ])

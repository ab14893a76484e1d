"""Configuration: YAML files and ``--set`` overrides loaded into validated, typed options.

Each stage owns one options dataclass (``AudioOptions`` here, ``VadOptions`` in models/vad.py,
``AsrOptions`` in models/base.py, ``RunOptions`` here). ``configs/default.yaml`` documents every
key. An unknown key or a bad value is a :class:`ConfigError` naming the file, the key and what
is allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from models import diarize, sentiment, vad
from models.asr import ASR_BACKENDS
from models.base import AsrOptions
from models.diarize import DiarizationOptions
from models.sentiment import SentimentOptions
from models.vad import VadOptions
from pipeline.analysis import conversation
from pipeline.pii import text as pii
from pipeline.speakers import roles
from pipeline.analysis.scorecard import ScorecardOptions, check_calibration, template_path, templates_in_use
from pipeline.analysis.conversation import ConversationOptions
from pipeline.analysis import written
from pipeline.analysis.written import ChannelOptions
from pipeline.errors import ConfigError, check_options, coerce_value
from pipeline.pii.text import PiiOptions
from pipeline.review import options as review_options
from pipeline.review.options import ReviewOptions
from pipeline.live import options as live_options
from pipeline.live.options import LiveOptions
from pipeline.analysis.contact import ContactOptions
from pipeline.insights import options as insights_options
from pipeline.insights.goals import check_goals
from pipeline.insights.options import InsightsOptions
from pipeline.run.executors import EXECUTORS
from pipeline.speakers.roles import RoleOptions
from pipeline.speakers.stage import SpeakerOptions

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


@dataclass
class AudioOptions:
    """How recordings are read (the ``audio`` section)."""

    max_duration_s: float = 14400.0
    """Recordings longer than this fail with TooLongError before they are decoded."""


@dataclass
class RunOptions:
    """How the batch runs (the ``run`` section). None of these change a call's results."""

    workers: int = 0
    """Worker processes (Ray actors with ``executor: ray``), each with its own models; 0 =
    automatic (pipeline.run.executors.resolve_split: one per core at one thread each, as many as
    memory holds; on Ray, the cluster's CPUs divided by ``asr.threads``)."""
    executor: str = "local"
    """``local`` (this machine) or ``ray`` (a Ray cluster, pipeline/run/executors.py)."""
    ray_address: str | None = None
    """With ``executor: ray``: the cluster to join (``auto``, ``HOST:6379``, ``ray://HOST:10001``);
    null starts a Ray instance on this machine for the run."""
    progress_every_s: float = 2.0
    """How often ``run.json`` and ``summary.csv`` are rewritten while a batch runs."""
    rehash: bool = False
    """Hash every recording to check it is unchanged, even when its size and modification time
    match the index of processed calls (``OUT/.callqa-index.sqlite``)."""
    stage_cache: str | None = None
    """A folder keeping each call's transcript and speakers by their inputs
    (pipeline/run/stage_cache.py), so that a change to the scorecard, detectors, sentiment or PII
    options, or a manual speaker override, re-scores calls without transcribing them again.
    null: off (its entries hold unredacted words)."""


@dataclass
class Config:
    """The effective configuration of a run."""

    audio: AudioOptions = field(default_factory=AudioOptions)
    vad: VadOptions = field(default_factory=VadOptions)
    asr: AsrOptions = field(default_factory=AsrOptions)
    speakers: SpeakerOptions = field(default_factory=SpeakerOptions)
    diarization: DiarizationOptions = field(default_factory=DiarizationOptions)
    roles: RoleOptions = field(default_factory=RoleOptions)
    scorecard: ScorecardOptions = field(default_factory=ScorecardOptions)
    sentiment: SentimentOptions = field(default_factory=SentimentOptions)
    conversation: ConversationOptions = field(default_factory=ConversationOptions)
    pii: PiiOptions = field(default_factory=PiiOptions)
    channels: ChannelOptions = field(default_factory=ChannelOptions)
    contact: ContactOptions = field(default_factory=ContactOptions)
    run: RunOptions = field(default_factory=RunOptions)
    review: ReviewOptions = field(default_factory=ReviewOptions)
    live: LiveOptions = field(default_factory=LiveOptions)
    insights: InsightsOptions = field(default_factory=InsightsOptions)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def result_dict(self) -> dict[str, Any]:
        """Every option that can change a call's results (not the ``run``, ``review``, ``live`` or ``insights`` sections, threads, or
        where the speaker overrides live), with the scorecard template's content hash."""
        d = self.to_dict()
        d.pop("run")
        d.pop("review")  # what the web app serves, not what a run writes
        d.pop("live")  # where the live server keeps streamed calls
        d.pop("insights")  # how the archive's results are reported
        if not self.scorecard.calibration:  # none fitted: the detectors' own confidences, as before the option
            d["scorecard"].pop("calibration")
        d["asr"].pop("threads")
        d["speakers"].pop("overrides_file")  # manual overrides are applied without redoing a call
        if self.scorecard.enabled:  # the templates' content, not only their names, decides the answers
            d["scorecard"]["template_sha256"] = hashlib.sha256(template_path(self.scorecard).read_bytes()).hexdigest()
            others = [p for p in templates_in_use(self.scorecard, self.channel_templates()) if p != template_path(self.scorecard)]
            if others:
                d["scorecard"]["templates_sha256"] = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in others}
        return d

    def channel_templates(self) -> dict[str, str | None]:
        """The configured template of each written channel (null: its default)."""
        return {"email": self.channels.email.scorecard, "chat": self.channels.chat.scorecard}

    def result_hash(self) -> str:
        """Hash of :meth:`result_dict`."""
        blob = json.dumps(self.result_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Allowed values beyond the type: key -> (check, description of what is allowed).
_CHOICES: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "audio.max_duration_s": (lambda v: v > 0, "a number of seconds > 0"),
    "vad.threshold": (lambda v: 0 < v < 1, "a probability between 0 and 1 (exclusive)"),
    "vad.neg_threshold": (lambda v: v is None or 0 < v < 1, "null or a probability between 0 and 1"),
    "vad.min_speech_duration_ms": (lambda v: v >= 0, "milliseconds >= 0"),
    "vad.min_silence_duration_ms": (lambda v: v >= 0, "milliseconds >= 0"),
    "vad.speech_pad_ms": (lambda v: v >= 0, "milliseconds >= 0"),
    "vad.max_speech_duration_s": (lambda v: v > 0, "seconds > 0"),
    "asr.backend": (lambda v: v in ASR_BACKENDS, " or ".join(ASR_BACKENDS.names())),
    "asr.model": (lambda v: bool(v.strip()), "a packaged model name (tiny.en, base) or a local path"),
    "asr.language": (
        lambda v: v is None or (2 <= len(v) <= 3 and v.isalpha() and v.islower()),
        "null (detect) or a lowercase language code such as en, es, de",
    ),
    "asr.beam_size": (lambda v: 1 <= v <= 16, "an integer from 1 to 16"),
    "asr.compute_type": (
        lambda v: v in ("default", "auto", "float32", "int8", "int8_float32", "int16", "float16", "int8_float16", "bfloat16", "int8_bfloat16"),
        "float32, int8, int8_float32, int16, float16, int8_float16, bfloat16, int8_bfloat16, auto or default",
    ),
    "asr.threads": (lambda v: v >= 0, "0 (automatic) or a positive number of threads"),
    "asr.no_speech_threshold": (lambda v: 0 <= v <= 1, "a probability between 0 and 1"),
    "asr.log_prob_threshold": (lambda v: v <= 0, "a log-probability <= 0"),
    "asr.compression_ratio_threshold": (lambda v: v > 0, "a ratio > 0"),
    "asr.noisy_model": (lambda v: v is None or bool(v.strip()),
                        "null or a packaged model name (tiny.en, base) or a local path"),
    "asr.noisy_below_db": (lambda v: v > 0, "decibels > 0"),
    "asr.noisy_below_db_mono": (lambda v: v > 0, "decibels > 0"),
    "asr.redecode_gap_s": (lambda v: v >= 0, "seconds >= 0 (0 = off)"),
    "asr.temperatures": (
        lambda v: len(v) > 0 and all(0 <= t <= 2 for t in v), "a non-empty list of temperatures from 0 to 2"
    ),
    "asr.seed": (lambda v: 0 <= v < 2**63, "an integer >= 0"),
    "speakers.agent_channel": (lambda v: v in ("left", "right", "auto"), "left, right or auto"),
    "speakers.queue_agent_channel": (
        lambda v: all(c in ("left", "right", "auto") for c in v.values()), "a mapping of queue name to left, right or auto"
    ),
    "speakers.identical_channels_correlation": (lambda v: 0 < v <= 1, "a correlation between 0 and 1"),
    "speakers.silent_channel_dbfs": (lambda v: v < 0, "a level in dBFS below 0"),
    "speakers.crosstalk_margin_db": (lambda v: v > 0, "decibels > 0"),
    "speakers.background_floor_db": (lambda v: v > 0, "decibels > 0"),
    "speakers.background_below_db": (lambda v: v > 0, "decibels > 0"),
    "speakers.background_min_probability": (lambda v: 0 <= v < 1, "a probability from 0 to below 1"),
    "speakers.background_utterance_share": (lambda v: 0 <= v < 1, "a share from 0 to below 1"),
    "run.workers": (lambda v: 0 <= v <= 256, "an integer from 0 (automatic) to 256"),
    "run.executor": (lambda v: v in EXECUTORS, " or ".join(EXECUTORS.names())),
    "run.progress_every_s": (lambda v: v > 0, "seconds > 0"),
}


def _apply(config: Config, data: Any, source: str) -> None:
    """Apply a mapping of sections onto ``config``, validating every key."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    sections = {f.name for f in dataclasses.fields(config)}
    for section, values in data.items():
        if section not in sections:
            raise ConfigError(f"{source}: unknown section '{section}'; allowed: {', '.join(sorted(sections))}")
        opts = getattr(config, section)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section '{section}' must be a mapping of keys")
        for key, value in values.items():
            _set_key(opts, section, key, value, source)


def _set_key(opts: Any, section: str, key: str, value: Any, source: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(opts)}
    dotted = f"{section}.{key}"
    if key not in fields:
        raise ConfigError(f"{source}: unknown key '{dotted}'; allowed in '{section}': {', '.join(fields)}")
    hints = typing.get_type_hints(type(opts))
    where = f"{source}: {dotted}"
    if dataclasses.is_dataclass(hints[key]):  # a sub-section (channels.email): its keys one by one
        if value is None:
            return
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: must be a mapping of keys")
        for sub, sub_value in value.items():
            _set_key(getattr(opts, key), dotted, sub, sub_value, source)
        return
    value = coerce_value(value, hints[key], where)
    check = _CHOICES.get(dotted)
    if check is not None and value is not None and not check[0](value):
        raise ConfigError(f"{where}: {value!r} is not allowed; allowed: {check[1]}")
    setattr(opts, key, value)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror or e}") from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``section.key=value``; the value is read as YAML (``null``, ``0.3``, ``true``...).
    A key of a sub-section (``channels.email.agent_domains=[example.com]``) comes back as the
    sub-section's name with a mapping (``email``, ``{"agent_domains": [...]}``)."""
    if "=" not in text:
        raise ConfigError(f"--set {text}: expected section.key=value")
    dotted, raw = text.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"--set {text}: the key must be section.key, e.g. asr.beam_size")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text}: cannot read value: {e}") from e
    for name in reversed(parts[2:]):
        value = {name: value}
    return parts[0], parts[1], value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then ``configs/default.yaml``-style file ``path`` (if given), then ``--set`` overrides."""
    config = Config()
    set_by: dict[str, str] = {}  # section.key -> the file or --set that gave its value
    if path is not None:
        data = _read_yaml(Path(path))
        _apply(config, data, str(path))
        set_by.update({f"{s}.{k}": str(path) for s, values in (data or {}).items() for k in (values or {})})
    for text in overrides or []:
        section, key, value = parse_override(text)
        _apply(config, {section: {key: value}}, f"--set {text}")
        set_by[text.split("=", 1)[0].strip()] = f"--set {text}"
    try:
        validate_config(config)
    except ConfigError as e:  # name where the refused value came from, as _set_key does
        key = str(e).split(":", 1)[0]
        givers = [k for k in set_by if key == k or key.startswith(k + ".")]  # a sub-section given whole
        if givers:
            raise ConfigError(f"{set_by[max(givers, key=len)]}: {e}") from e
        raise
    return config


def validate_config(config: Config) -> None:
    """Every section's checks (ranges, and keys that must agree with each other), and the
    scorecard template (loaded once here so that a bad one stops the run before any call is
    processed). What the options name on disk is found by pipeline/run/preflight.py."""
    vad.validate(config.vad)
    check_options("asr", config.asr, [
        (config.asr.backend != "openai-whisper" or config.asr.compute_type in ("float32", "default"), "compute_type",
         "float32 or default with the openai-whisper backend (it runs float32 on the CPU)"),
    ])
    diarize.validate(config.diarization)
    roles.validate(config.roles)
    sentiment.validate(config.sentiment)
    conversation.validate(config.conversation)
    pii.validate(config.pii)
    written.validate(config.channels)
    review_options.validate(config.review)
    live_options.validate(config.live)
    insights_options.validate(config.insights)
    check_goals(config.insights.goals, config.insights.team_goals)  # KPI names and goal expressions
    check_calibration(config.scorecard.calibration)
    if config.scorecard.enabled:
        from pipeline.analysis.scorecard import load_scorecard

        default = template_path(config.scorecard)
        for path in templates_in_use(config.scorecard, config.channel_templates()):
            try:
                load_scorecard(path)
            except ConfigError as e:
                key = "scorecard.template" if path == default else next(
                    (f"scorecard.by_queue.{q}" for q, p in config.scorecard.by_queue.items() if Path(p) == path),
                    next((f"channels.{c}.scorecard" for c, p in config.channel_templates().items() if p and Path(p) == path),
                         "scorecard"))
                raise ConfigError(f"{key}: {e}") from e

"""Config loading: defaults, YAML files, --set overrides, and errors that name file and key."""

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG, Config, load_config
from pipeline.errors import ConfigError


def test_default_yaml_documents_every_option_with_its_default():
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    defaults = Config().to_dict()
    assert data == defaults
    text = DEFAULT_CONFIG.read_text()
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory()):
            # every key has a comment line right above it or above its group
            idx = text.index(f"  {f.name}:")
            assert "#" in text[max(0, idx - 400) : idx], f"{section.name}.{f.name} is undocumented"


def test_loading_default_yaml_equals_builtin_defaults():
    assert load_config(DEFAULT_CONFIG) == Config()


def test_overrides_are_typed_and_applied_in_order(tmp_path: Path):
    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text("asr:\n  beam_size: 3\nvad:\n  threshold: 0.4\n")
    cfg = load_config(cfg_file, ["asr.beam_size=5", "asr.language=null", "vad.enabled=false", "audio.max_duration_s=60"])
    assert cfg.asr.beam_size == 5
    assert cfg.asr.language is None
    assert cfg.vad.enabled is False
    assert cfg.vad.threshold == 0.4
    assert cfg.audio.max_duration_s == 60.0 and isinstance(cfg.audio.max_duration_s, float)


@pytest.mark.parametrize(
    "content, words",
    [
        ("asr:\n  beam_sizes: 3\n", ["my.yaml", "asr.beam_sizes", "beam_size"]),
        ("asr:\n  beam_size: 0\n", ["my.yaml", "asr.beam_size", "1 to 16"]),
        ("asr:\n  beam_size: three\n", ["my.yaml", "asr.beam_size", "integer"]),
        ("vad:\n  threshold: 1.5\n", ["my.yaml", "vad.threshold", "between 0 and 1"]),
        ("vad:\n  enabled: 1\n", ["my.yaml", "vad.enabled", "true/false"]),
        ("asr:\n  backend: whisperx\n", ["my.yaml", "asr.backend", "faster-whisper or openai-whisper"]),
        ("speaker:\n  x: 1\n", ["my.yaml", "unknown section 'speaker'", "speakers"]),
        ("speakers:\n  agent_channel: middle\n", ["my.yaml", "speakers.agent_channel", "left, right or auto"]),
        ("speakers:\n  queue_agent_channel: {billing: up}\n", ["my.yaml", "speakers.queue_agent_channel", "left, right or auto"]),
        ("speakers:\n  queue_agent_channel: [billing]\n", ["my.yaml", "speakers.queue_agent_channel", "mapping"]),
        ("asr: [1, 2]\n", ["my.yaml", "'asr' must be a mapping"]),
        ("asr:\n  beam_size: [\n", ["my.yaml", "not valid YAML"]),
    ],
)
def test_bad_config_names_file_key_and_allowed(tmp_path: Path, content: str, words: list[str]):
    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_config(cfg_file)
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize("override", ["asr.beam_size", "beam_size=3", "asr.nope=1", "run.workers=-1"])
def test_bad_override_is_an_error_naming_it(override: str):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert override.split("=")[0] in str(err.value)


def test_missing_config_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")


def test_result_hash_ignores_workers_and_threads_but_not_model_settings():
    base = load_config(None).result_hash()
    assert load_config(None, ["run.workers=4", "asr.threads=3"]).result_hash() == base
    assert load_config(None, ["asr.beam_size=5"]).result_hash() != base
    assert load_config(None, ["vad.threshold=0.5"]).result_hash() != base
    assert load_config(None, ["speakers.overrides_file=/tmp/o.csv"]).result_hash() == base
    assert load_config(None, ["speakers.agent_channel=left"]).result_hash() != base


def test_queue_agent_channels_load_as_a_mapping(tmp_path: Path):
    cfg_file = tmp_path / "q.yaml"
    cfg_file.write_text("speakers:\n  queue_agent_channel:\n    billing: left\n    sales: right\n")
    assert load_config(cfg_file).speakers.queue_agent_channel == {"billing": "left", "sales": "right"}


NEGATIVE_IS_VALID = {
    # key: the absurd value tried instead of -1, for keys where a negative value is valid
    "asr.log_prob_threshold": 0.5,  # a log-probability (<= 0)
    "speakers.silent_channel_dbfs": 3.0,  # a level in dBFS (below 0)
    "diarization.merge_threshold": -2.0,  # a cosine similarity (-1 is one)
    "roles.min_similarity": -2.0,  # a cosine similarity
}
"""Keys where a negative number is a valid setting, with the absurd value tried instead."""

FREE_TEXT = {
    "roles.company": "any company name",
    "run.ray_address": "checked by Ray when it connects (auto, HOST:6379, ray://HOST:10001)",
}
"""Text keys no value of which can be refused before the run."""


def _keys(*types: type) -> list[str]:
    """``section.key`` of every option whose type (or ``X | None``) is one of ``types`` (lists
    and mappings are left out: their values are checked one by one)."""
    keys = []
    for section in dataclasses.fields(Config):
        opts = section.default_factory()
        hints = typing.get_type_hints(type(opts))
        for f in dataclasses.fields(opts):
            if typing.get_origin(hints[f.name]) in (list, dict):
                continue
            inner = [a for a in typing.get_args(hints[f.name]) if a is not type(None)] or [hints[f.name]]
            if len(inner) == 1 and inner[0] in types:
                keys.append(f"{section.name}.{f.name}")
    return keys


def test_the_key_walks_find_every_section():
    numeric = _keys(int, float)
    assert {k.split(".")[0] for k in numeric} >= {"audio", "vad", "asr", "speakers", "diarization", "roles",
                                                    "sentiment", "conversation", "pii", "run"}
    assert set(NEGATIVE_IS_VALID) <= set(numeric) and set(FREE_TEXT) <= set(_keys(str))


@pytest.mark.parametrize("key", _keys(int, float))
def test_every_numeric_key_refuses_an_absurd_value_naming_the_key(key: str):
    value = NEGATIVE_IS_VALID.get(key, -1)
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"{key}={value}"])
    assert f"{key}: " in str(err.value)  # the key itself, not only the --set text


@pytest.mark.parametrize("key", [k for k in _keys(str) if k not in FREE_TEXT])
def test_every_text_key_refuses_a_value_that_names_nothing(key: str):
    """Refused as the config loads (a choice, a code) or by the preflight (a model, a path)."""
    from pipeline.run.preflight import preflight

    companion = {"diarization.pyannote_pipeline": ["diarization.backend=pyannote"],
                 "sentiment.model": []}.get(key, [])
    with pytest.raises(ConfigError) as err:
        preflight(load_config(None, [*companion, f"{key}=/dev/null/nothing"]))
    assert f"{key}: " in str(err.value) or f"{key}=" in str(err.value)


def test_a_refused_combination_names_the_file_that_set_it(tmp_path: Path):
    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text("diarization:\n  max_speakers: 2\n  min_speakers: 3\n")
    with pytest.raises(ConfigError, match=r"my\.yaml: diarization\.max_speakers: 2 is not allowed"):
        load_config(cfg_file)
    with pytest.raises(ConfigError, match=r"^--set vad\.neg_threshold=0\.5: vad\.neg_threshold"):
        load_config(None, ["vad.neg_threshold=0.5"])

"""Detectors and conditions from another package (entry points): loaded, used, recorded.

The plugin is tests/plugins/callqa_example_plugin; each test declares its entry points in a
``*.dist-info`` written to a temporary folder on sys.path, which is what importlib.metadata
reads for an installed package.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline.analysis.detectors import CONDITIONS, DETECTORS, PLUGINS, make_detector
from pipeline.analysis.detectors import plugins as plugin_module
from pipeline.analysis.detectors.context import CallContext, CallFacts
from pipeline.errors import ConfigError
from pipeline.analysis.scorecard import load_scorecard

PLUGIN_SOURCE = Path(__file__).resolve().parent.parent / "plugins"

ENTRY_POINTS = """\
[callqa.detectors]
keyword_count = callqa_example_plugin:KeywordCountDetector

[callqa.na_conditions]
short_call = callqa_example_plugin:short_call
"""

TEMPLATE = """\
name: Plugin test
version: "2"
sections:
  - id: courtesy
    name: Courtesy
    items:
      - id: courtesy.please
        question: Does the agent say please twice?
        detector: keyword_count
        params: {keywords: [please], at_least: 2}
        na_when: short_call
      - id: courtesy.thanks
        question: Does the agent thank the customer?
        detector: phrase
        params: {words: ["thank*"]}
"""

EXPECTED = [
    {"distribution": "callqa-example-plugin", "version": "0.1.0", "group": "callqa.detectors", "name": "keyword_count",
     "entry_point": "callqa_example_plugin:KeywordCountDetector"},
    {"distribution": "callqa-example-plugin", "version": "0.1.0", "group": "callqa.na_conditions", "name": "short_call",
     "entry_point": "callqa_example_plugin:short_call"},
]


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``install(entry_points_text)`` makes the example plugin look installed with those entry
    points, for this test only (the registries are put back afterwards)."""
    saved = dict(DETECTORS), dict(CONDITIONS), dict(PLUGINS)
    monkeypatch.setattr(plugin_module, "_loaded", False)

    def install(entry_points: str = ENTRY_POINTS) -> None:
        dist = tmp_path / "site" / "callqa_example_plugin-0.1.0.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: callqa-example-plugin\nVersion: 0.1.0\n")
        (dist / "entry_points.txt").write_text(entry_points)
        monkeypatch.syspath_prepend(str(PLUGIN_SOURCE))
        monkeypatch.syspath_prepend(str(dist.parent))

    yield install
    for registry, before in zip((DETECTORS, CONDITIONS, PLUGINS), saved):
        registry.clear()
        registry.update(before)
    sys.modules.pop("callqa_example_plugin", None)


def template(tmp_path: Path) -> Path:
    path = tmp_path / "plugin_card.yaml"
    path.write_text(TEMPLATE)
    return path


def test_a_plugin_detector_and_condition_answer_items_and_are_recorded(installed, tmp_path):
    installed()
    card = load_scorecard(template(tmp_path))
    assert card.plugins == EXPECTED
    assert card.describe()["plugins"] == EXPECTED
    item = card.items[0]
    from pipeline.interaction.utterances import Utterance, Word

    words = [Word(w, i * 0.4, i * 0.4 + 0.3, 0.9) for i, w in enumerate("Please hold, and please wait.".split())]
    utterances = [Utterance("u0001", 0, 0.0, 2.0, "Please hold, and please wait.", words, "S0", "agent")]
    detector = make_detector(item)
    assert detector(CallContext(utterances, CallFacts(60.0, True, {}, None), None)).answer == "yes"
    assert detector(CallContext(utterances, CallFacts(20.0, True, {}, None), None)).answer == "na"  # short_call


def test_a_template_of_built_in_detectors_records_no_plugin(installed):
    installed()
    card = load_scorecard()
    assert card.plugins == [] and "plugins" not in card.describe()


def test_call_provenance_and_the_evaluation_report_show_the_plugin(installed, tmp_path):
    installed()
    from pipeline.run.call import CallProcessor
    from pipeline.config import Config
    from pipeline.evaluation.report_html import render_html

    config = Config()
    config.scorecard.template = str(template(tmp_path))
    processor = CallProcessor(config, tmp_path / "work")
    assert processor.provenance({})["plugins"] == EXPECTED
    html = render_html({"scorecard_template": processor.analysis.card.describe(), "data": {}})
    assert "plugins: callqa-example-plugin 0.1.0 (keyword_count), callqa-example-plugin 0.1.0 (short_call)" in html


def test_the_detector_listing_names_the_plugin(installed, capsys):
    installed()
    from pipeline.cli import main

    assert main(["scorecard", "detectors"]) == 0
    out = capsys.readouterr().out
    assert "keyword_count [plugin callqa-example-plugin 0.1.0]: Yes when the role says the keywords" in out
    assert "short_call [plugin callqa-example-plugin 0.1.0]" in out and "phrase: " in out


@pytest.mark.parametrize("entry_points, message", [
    ("[callqa.detectors]\nbroken = callqa_example_plugin.missing:Nope\n",
     "plugin entry point 'broken = callqa_example_plugin.missing:Nope' (group callqa.detectors, "
     "callqa-example-plugin 0.1.0): cannot be loaded: ModuleNotFoundError"),
    ("[callqa.detectors]\nshort = callqa_example_plugin:short_call\n",
     "is not a subclass of pipeline.analysis.detectors.Detector"),
    ("[callqa.detectors]\nphrase = callqa_example_plugin:KeywordCountDetector\n",
     "there is already a detector 'phrase'"),
    ("[callqa.na_conditions]\nno_customer_speech = callqa_example_plugin:short_call\n",
     "there is already a condition 'no_customer_speech'"),
])
def test_a_broken_plugin_is_a_config_error_naming_the_entry_point(installed, tmp_path, entry_points, message):
    installed(entry_points)
    with pytest.raises(ConfigError, match="plugin entry point") as e:
        load_scorecard()
    assert message in str(e.value)

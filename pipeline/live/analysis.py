"""Live analysis: the batch pipeline's analysis stage over what a call in progress has said so far,
and the alerts a supervisor gets from it and from the call's sound.

In the recognition worker, every :data:`ANALYSE_EVERY_S` a call whose confirmed words changed is
analysed as the batch pipeline analyses a finished call (``AnalysisStage.run``: the scorecard
template of its queue, every detector, sentiment, PII found and masked), on the confirmed words cut
into utterances per party: the items answered so far, with their evidence, and the transcript with
its PII masked are what the server shows. Alerts from the words (:func:`word_alerts`): a scorecard
item of ``live.alert_items`` answered no (a prohibited phrase ...), the customer's sentiment turned
negative. Alerts from the sound, in the server (:class:`SoundWatch`): a long silence or hold, both
parties talking at once, a call running long.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.live.options import PARTIES, LiveOptions

ANALYSE_EVERY_S = 1.0
"""Wall-clock seconds between two analyses of one call (while its confirmed words change)."""

MAX_GAP_S = 1.5
"""A party's live words further apart than this start a new utterance (as in the batch
pipeline's ``MAX_GAP_IN_UTTERANCE_S``)."""

CHANNEL = {"agent": 0, "customer": 1}
"""The channel of each party in the archived recording (agent left)."""

_DIGIT = re.compile(r"\d")


def group_words(party: str, words: list[dict[str, Any]], first_id: int = 1) -> list[dict[str, Any]]:
    """A party's words (``{word, start, end, confirmed}``) as utterances, cut at pauses of
    :data:`MAX_GAP_S`: ``{id, role, start, end, text, words}``."""
    out: list[dict[str, Any]] = []
    group: list[dict[str, Any]] = []
    for w in [*words, None]:
        if group and (w is None or w["start"] - group[-1]["end"] > MAX_GAP_S):
            out.append({"id": f"{party[0]}{first_id + len(out):04d}", "role": party, "start": group[0]["start"],
                        "end": group[-1]["end"], "text": " ".join(x["word"] for x in group), "words": group})
            group = []
        if w is not None:
            group.append(w)
    return out


def mask_partial(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unconfirmed words as shown before the PII step has seen them: any word holding a digit
    masked (account and card numbers are read out digit by digit)."""
    return [{**w, "word": "[NUMBER]"} if _DIGIT.search(w["word"]) else w for w in words]


def analyse(stage: Any, config: Any, confirmed: dict[str, list[dict[str, Any]]], duration_s: float,
            meta: dict[str, str]) -> dict[str, Any]:
    """The analysis of a call so far (see the module docstring): ``utterances`` (PII masked,
    words confirmed), ``items`` (id, question, answer, confidence, evidence) and ``sentiment``."""
    from models.records import Word
    from pipeline.analysis.detectors.context import CallFacts
    from pipeline.interaction.record import STREAM
    from pipeline.interaction.utterances import Utterance

    utterances = []
    for party in PARTIES:
        for u in group_words(party, confirmed[party]):
            utterances.append(Utterance(u["id"], CHANNEL[party], u["start"], u["end"], u["text"],
                                        [Word(w["word"], w["start"], w["end"], 1.0) for w in u["words"]],
                                        speaker=party, role=party))
    utterances.sort(key=lambda u: (u.start, u.id))
    facts = CallFacts(duration_s=duration_s, stereo=True, metadata=dict(meta),
                      company=meta.get("company") or config.roles.company, source=STREAM)
    blocks, written, _spans = stage.run(utterances, facts)
    card = blocks.get("scorecard") or {}
    return {
        "utterances": [{"id": u.id, "role": u.role, "start": round(u.start, 3), "end": round(u.end, 3), "text": u.text,
                        "words": [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3), "confirmed": True}
                                  for w in u.words]} for u in written],
        "items": [{k: item[k] for k in ("id", "question", "answer", "confidence", "evidence")}
                  for item in card.get("items", [])],
        "sentiment": {k: v for k, v in (blocks.get("sentiment") or {}).items() if k != "quarters"},
    }


def word_alerts(result: dict[str, Any], options: LiveOptions, negative_threshold: float) -> list[dict[str, Any]]:
    """Alerts from an analysis of the call so far: each item of ``live.alert_items`` answered
    no (with its evidence), and the customer's last turns negative (``live.alert_negative_sentiment``)."""
    alerts = []
    for item in result["items"]:
        if item["id"] in options.alert_items and item["answer"] == "no":
            at = min((e.get("start", 0.0) for e in item["evidence"] if e.get("start") is not None), default=None)
            alerts.append({"kind": "item", "key": f"item:{item['id']}", "at": at,
                           "message": f"{item['id']}: {item['question']}", "evidence": item["evidence"]})
    turns = [t for t in result["sentiment"].get("turns", []) if t["role"] == "customer"]
    if options.alert_negative_sentiment and turns:
        last = turns[-2:]
        if sum(t["score"] for t in last) / len(last) <= negative_threshold and turns[-1]["label"] == "negative":
            quote = next((u["text"] for u in result["utterances"] if u["id"] == turns[-1]["utterance_id"]), "")
            alerts.append({"kind": "sentiment", "key": "sentiment:customer", "at": turns[-1]["start"],
                           "message": "the customer's sentiment turned negative",
                           "evidence": [{"quote": quote, "start": turns[-1]["start"], "score": turns[-1]["score"]}]})
    return alerts


LOUD_DBFS = -40.0
"""A 20 ms chunk of a party louder than this carries speech (or music on hold)."""
HANGOVER_S = 0.3
"""A party is still talking this long after its last loud chunk (the dips inside speech)."""


@dataclass
class SoundWatch:
    """Alerts from a live call's sound, chunk by chunk: silence of both parties for
    ``alert_silence_s``, both talking at once for ``alert_crosstalk_s``, the call longer than
    ``alert_long_call_s`` (each raised once per occurrence; a silence or cross-talk that goes on
    is one alert whose end moves)."""

    options: LiveOptions
    last_loud: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTIES, 0.0))
    loud_until: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTIES, -1.0))
    both_since: float | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    _silence: dict[str, Any] | None = None
    _crosstalk: dict[str, Any] | None = None
    _long: bool = False

    def chunk(self, party: str, start_s: float, pcm: np.ndarray) -> None:
        """``pcm`` (int16) of ``party`` placed at ``start_s`` in the call."""
        end_s = start_s + pcm.size / 8000
        rms = math.sqrt(float(np.mean(pcm.astype(np.float64) ** 2))) / 32768 if pcm.size else 0.0
        loud = rms > 0 and 20 * math.log10(rms) > LOUD_DBFS
        if loud:
            self.last_loud[party] = max(self.last_loud[party], end_s)
            self.loud_until[party] = max(self.loud_until[party], end_s)
            self._silence = None
        now = max(end_s, *self.last_loud.values())
        quiet_since = max(self.last_loud.values())
        if self.options.alert_silence_s and now - quiet_since >= self.options.alert_silence_s:
            if self._silence is None:
                self._silence = {"kind": "silence", "key": f"silence:{quiet_since:.1f}", "at": round(quiet_since, 2),
                                 "message": "nobody has spoken", "evidence": [{"start": round(quiet_since, 2)}]}
                self.alerts.append(self._silence)
            self._silence["evidence"][0]["end"] = round(now, 2)
        other = PARTIES[1 - PARTIES.index(party)]
        talking = start_s - self.last_loud[party] <= HANGOVER_S
        if talking and start_s - self.loud_until[other] <= HANGOVER_S:
            self.both_since = start_s if self.both_since is None else self.both_since
            if self.options.alert_crosstalk_s and end_s - self.both_since >= self.options.alert_crosstalk_s:
                if self._crosstalk is None:
                    self._crosstalk = {"kind": "crosstalk", "key": f"crosstalk:{self.both_since:.1f}",
                                       "at": round(self.both_since, 2), "message": "both parties talking at once",
                                       "evidence": [{"start": round(self.both_since, 2)}]}
                    self.alerts.append(self._crosstalk)
                self._crosstalk["evidence"][0]["end"] = round(end_s, 2)
        elif not talking:
            self.both_since, self._crosstalk = None, None
        if self.options.alert_long_call_s and not self._long and end_s >= self.options.alert_long_call_s:
            self._long = True
            self.alerts.append({"kind": "long_call", "key": "long_call", "at": round(end_s, 2),
                                "message": f"the call has gone on for {self.options.alert_long_call_s:g} s",
                                "evidence": [{"start": round(end_s, 2)}]})

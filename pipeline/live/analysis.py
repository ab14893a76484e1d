"""Live analysis: the batch pipeline's analysis stage over what a call in progress has said so far,
and the alerts a supervisor gets from it and from the call's sound.

In the recognition worker, every :data:`ANALYSE_EVERY_S` a call whose confirmed words changed is
analysed as the batch pipeline analyses a finished call (``AnalysisStage.run``: the scorecard
template of its queue, every detector, sentiment, PII found and masked), on the confirmed words cut
into utterances per party: the items answered so far, with their evidence, and the transcript with
its PII masked are what the server shows. Alerts from the words (:meth:`AlertBook.words`): a
scorecard item of ``live.alert_items`` answered no (a prohibited phrase ...), the customer's
sentiment turned negative. Alerts from the sound, in the server (:class:`SoundWatch`): a long
silence or hold, both parties talking at once, a call running long. Each call keeps every alert it
raised in its :class:`AlertBook`, open until its condition ends or a supervisor acknowledges it.
"""

from __future__ import annotations

import math
import re
import threading
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


def _negative(turns: list[dict[str, Any]], i: int, negative_threshold: float) -> bool:
    """Whether the customer's turns are negative as of their ``i``-th turn: the mean score of that
    turn and the one before it at most ``negative_threshold``, and that turn labelled negative."""
    last = turns[max(0, i - 1):i + 1]
    return sum(t["score"] for t in last) / len(last) <= negative_threshold and turns[i]["label"] == "negative"


def word_alerts(result: dict[str, Any], options: LiveOptions, negative_threshold: float) -> list[dict[str, Any]]:
    """The word alerts whose condition holds in an analysis of the call so far: each item of
    ``live.alert_items`` answered no (with its evidence), and the customer's last turns negative
    (``live.alert_negative_sentiment``). What a call keeps of them over time is :class:`AlertBook`."""
    alerts = []
    for item in result["items"]:
        if item["id"] in options.alert_items and item["answer"] == "no":
            at = min((e.get("start", 0.0) for e in item["evidence"] if e.get("start") is not None), default=None)
            alerts.append({"kind": "item", "key": f"item:{item['id']}", "at": at,
                           "message": f"{item['id']}: {item['question']}", "evidence": item["evidence"]})
    turns = [t for t in result["sentiment"].get("turns", []) if t["role"] == "customer"]
    if options.alert_negative_sentiment and turns and _negative(turns, len(turns) - 1, negative_threshold):
        alerts.append({"kind": "sentiment", "key": "sentiment:customer", "at": turns[-1]["start"],
                       "message": "the customer's sentiment turned negative",
                       "evidence": [_turn_evidence(result, turns[-1])]})
    return alerts


def _turn_evidence(result: dict[str, Any], turn: dict[str, Any]) -> dict[str, Any]:
    quote = next((u["text"] for u in result["utterances"] if u["id"] == turn["utterance_id"]), "")
    return {"quote": quote, "start": turn["start"], "score": turn["score"]}


CONDITION = "condition"
"""``closed_by`` of an alert whose condition ended (else the user name of who acknowledged it)."""
SOUND_KINDS = ("silence", "crosstalk", "long_call")
"""The kinds of alert from the sound: closed (by their condition) when the call ends."""
MAX_SENTIMENT_EVIDENCE = 6
"""A negative-sentiment alert shows the turn that opened it and the latest ones, this many in all."""
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._:~-]")


class NoSuchAlert(KeyError):
    """No alert of the call has this key."""


class AlertClosed(Exception):
    """An alert was acknowledged that is closed already (``alert``: it as it is)."""

    def __init__(self, alert: dict[str, Any]):
        super().__init__(f"alert {alert['key']} was closed at {alert['closed_at']} s by {alert['closed_by']}")
        self.alert = alert


class AlertBook:
    """Every alert of one live call, open or closed, with its lifecycle; safe to use from the
    event loop (the sound, chunk by chunk) and threads (the analyses, acknowledgements).

    Each alert: ``kind`` (``item``, ``sentiment``, ``silence``, ``crosstalk``, ``long_call``),
    ``key`` (stable and unique within the call; a later occurrence of the same condition gets a
    new one), ``at`` (its moment: where its condition began, for a negative sentiment the
    customer's latest negative turn), ``message``, ``evidence``, ``state`` (``open`` or
    ``closed``), ``opened_at`` (seconds into the call where its condition began), ``closed_at``
    and ``closed_by`` (null while open; :data:`CONDITION` when the condition ended, else the
    user name of the supervisor who acknowledged it, ``closed_at`` then being the call's moment
    of the acknowledgement). Nothing raised is ever dropped; all times are seconds into the call,
    taken from the call's audio and words (never the clock), so the same audio and analyses give
    the same history.

    Closing rules: a silence closes when someone makes a sound again, cross-talk when one party
    stops, a negative sentiment when the customer's latest turns are no longer negative (a relapse
    is a new alert), an item answered no only when acknowledged (evidence of the item after
    that is a new alert), a long call when acknowledged or when the call ends; the sound's
    alerts all close when the call ends (:meth:`end`). Any open alert may be acknowledged.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._alerts: dict[str, dict[str, Any]] = {}
        self._items: dict[str, dict[str, Any]] = {}
        """Per item id: ``key`` of its latest alert, ``since`` (the evidence it shows starts
        there), ``covered`` (the latest evidence start any of its alerts showed)."""
        self._sentiment: str | None = None
        """The alert of the customer's negative stretch going on (acknowledged or not)."""
        self._sentiment_after = -math.inf
        """The call's moment the last negative stretch ended: a new one starts after it."""
        self._seen: tuple[Any, Any] | None = None

    # --- raising and closing ------------------------------------------------------------------

    def raise_alert(self, kind: str, key: str, at: float, message: str, evidence: list[dict[str, Any]]) -> str:
        """A new open alert (``key`` made unique within the call); its key."""
        with self.lock:
            base = _KEY_UNSAFE.sub("_", key)
            key, n = base, 1
            while key in self._alerts:
                n += 1
                key = f"{base}~{n}"
            at = round(float(at), 3)
            self._alerts[key] = {"kind": kind, "key": key, "at": at, "message": message,
                                 "evidence": [dict(e) for e in evidence], "state": "open", "opened_at": at,
                                 "closed_at": None, "closed_by": None}
            return key

    def close(self, key: str, at: float, by: str = CONDITION) -> bool:
        """Close an open alert at the call's moment ``at`` (not before it opened); False when it
        was closed already (it stays as it was) or is unknown."""
        with self.lock:
            alert = self._alerts.get(key)
            if alert is None or alert["state"] != "open":
                return False
            alert.update(state="closed", closed_at=round(max(float(at), alert["opened_at"]), 3), closed_by=by)
            return True

    def stretch(self, key: str, end: float) -> None:
        """An open alert's condition goes on: its (first) evidence ends at ``end`` now. A closed
        alert stays as it was closed."""
        with self.lock:
            alert = self._alerts[key]
            if alert["state"] == "open":
                alert["evidence"][0]["end"] = end

    def acknowledge(self, key: str, user: str, at: float) -> dict[str, Any]:
        """A supervisor acknowledged the alert at the call's moment ``at``: closed by ``user``.
        :class:`NoSuchAlert` for an unknown key, :class:`AlertClosed` for one closed already."""
        with self.lock:
            alert = self._alerts.get(key)
            if alert is None:
                raise NoSuchAlert(key)
            if not self.close(key, at, user):
                raise AlertClosed(self._copy(alert))
            return self._copy(alert)

    def end(self, at: float) -> None:
        """The call ended at ``at``: its sound's open alerts close (their condition is over)."""
        with self.lock:
            for key, alert in self._alerts.items():
                if alert["kind"] in SOUND_KINDS:
                    self.close(key, at)

    # --- reading ---------------------------------------------------------------------------------

    @staticmethod
    def _copy(alert: dict[str, Any]) -> dict[str, Any]:
        return {**alert, "evidence": [dict(e) for e in alert["evidence"]]}

    def get(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            alert = self._alerts.get(key)
            return None if alert is None else self._copy(alert)

    def listed(self) -> list[dict[str, Any]]:
        """Every alert (copies), in the order their conditions began."""
        with self.lock:
            alerts = [self._copy(a) for a in self._alerts.values()]
        return sorted(alerts, key=lambda a: (a["opened_at"], a["key"]))

    def counts(self) -> tuple[int, int]:
        """The number of open alerts and of all."""
        with self.lock:
            return sum(a["state"] == "open" for a in self._alerts.values()), len(self._alerts)

    # --- the words ---------------------------------------------------------------------------------

    def words(self, result: dict[str, Any] | None, options: LiveOptions, negative_threshold: float) -> None:
        """Bring the word alerts up to an analysis of the call so far (``utterances``, ``items``,
        ``sentiment``; one with an ``error``, or none yet, changes nothing). An analysis read
        before changes nothing either, so this may be called as often as the call is looked at."""
        if not result or "error" in result or result.get("items") is None or "utterances" not in result:
            return
        with self.lock:
            seen = (result["items"], result.get("sentiment"))
            if self._seen is not None and seen[0] is self._seen[0] and seen[1] is self._seen[1]:
                return
            self._seen = seen
            self._item_alerts(result, options)
            if options.alert_negative_sentiment:
                self._sentiment_alerts(result, negative_threshold)

    def _item_alerts(self, result: dict[str, Any], options: LiveOptions) -> None:
        for item in result["items"]:
            if item["id"] not in options.alert_items or item["answer"] != "no":
                continue
            evidence = item.get("evidence") or []
            starts = [e["start"] for e in evidence if e.get("start") is not None]
            message = f"{item['id']}: {item['question']}"
            track = self._items.get(item["id"])
            if track is None:
                at = min(starts) if starts else _analysed_until(result)
                key = self.raise_alert("item", f"item:{item['id']}", at, message, evidence)
                self._items[item["id"]] = {"key": key, "since": -math.inf, "covered": max(starts, default=at)}
                continue
            alert = self._alerts[track["key"]]
            if alert["state"] == "open":  # its evidence as the item's answer now has it
                shown = [e for e in evidence if e.get("start") is None or e["start"] >= track["since"]]
                if shown:
                    alert["evidence"] = [dict(e) for e in shown]
                track["covered"] = max(track["covered"], *starts) if starts else track["covered"]
                continue
            new = [e for e in evidence if e.get("start") is not None and e["start"] > track["covered"]]
            if new:  # acknowledged, and the item has evidence since: a new occurrence
                at = min(e["start"] for e in new)
                key = self.raise_alert("item", f"item:{item['id']}:{at:.1f}", at, message, new)
                self._items[item["id"]] = {"key": key, "since": at, "covered": max(e["start"] for e in new)}

    def _sentiment_alerts(self, result: dict[str, Any], negative_threshold: float) -> None:
        """The customer's turns replayed in order: a negative stretch opens where its first
        negative turn starts and closes where the first turn that is not starts."""
        turns = [t for t in (result.get("sentiment") or {}).get("turns", []) if t["role"] == "customer"]
        flags = [(t, _negative(turns, i, negative_threshold)) for i, t in enumerate(turns)]
        if self._sentiment is not None:
            opened = self._alerts[self._sentiment]["opened_at"]
            end = next((t["start"] for t, negative in flags if not negative and t["start"] > opened), None)
            if end is None and flags and not flags[-1][1]:  # the turn that opened it is negative no more
                end = max(opened, flags[-1][0]["start"])
            if end is None:
                self._sentiment_evidence(result, [t for t, negative in flags if negative and t["start"] >= opened])
                return
            self._sentiment_evidence(result, [t for t, negative in flags if negative and opened <= t["start"] < end])
            self.close(self._sentiment, end)
            self._sentiment, self._sentiment_after = None, end
        stretch: list[dict[str, Any]] = []
        for t, negative in flags:
            if t["start"] <= self._sentiment_after:
                continue
            if negative:
                if self._sentiment is None:
                    self._sentiment = self.raise_alert("sentiment", f"sentiment:{t['start']:.1f}", t["start"],
                                                       "the customer's sentiment turned negative", [])
                stretch.append(t)
            elif self._sentiment is not None:
                self._sentiment_evidence(result, stretch)
                self.close(self._sentiment, t["start"])
                self._sentiment, self._sentiment_after, stretch = None, t["start"], []
        if self._sentiment is not None:
            self._sentiment_evidence(result, stretch)

    def _sentiment_evidence(self, result: dict[str, Any], stretch: list[dict[str, Any]]) -> None:
        """The running negative stretch's alert shows its first turn and its latest ones; its
        ``at`` is its latest negative turn."""
        if not stretch or self._sentiment is None or self._alerts[self._sentiment]["state"] != "open":
            return  # an acknowledged alert stays as it was acknowledged
        keep = MAX_SENTIMENT_EVIDENCE
        shown = stretch if len(stretch) <= keep else [stretch[0], *stretch[1 - keep:]]
        alert = self._alerts[self._sentiment]
        alert["evidence"] = [_turn_evidence(result, t) for t in shown]
        alert["at"] = round(max(alert["opened_at"], stretch[-1]["start"]), 3)


def _analysed_until(result: dict[str, Any]) -> float:
    """The call's moment an analysis reaches (the end of its last utterance; 0 before any)."""
    return max((u["end"] for u in result["utterances"] if u.get("end") is not None), default=0.0)


LOUD_DBFS = -40.0
"""A 20 ms chunk of a party louder than this carries speech (or music on hold)."""
HANGOVER_S = 0.3
"""A party is still talking this long after its last loud chunk (the dips inside speech)."""


@dataclass
class SoundWatch:
    """Alerts from a live call's sound, chunk by chunk, into the call's :class:`AlertBook`:
    silence of both parties for ``alert_silence_s`` (closed when either makes a sound again),
    both talking at once for ``alert_crosstalk_s`` (closed when one stops), the call longer than
    ``alert_long_call_s`` (closed when acknowledged or when the call ends). Each is raised once
    per occurrence: a silence or cross-talk that goes on is one alert whose evidence's end moves."""

    options: LiveOptions
    book: AlertBook = field(default_factory=AlertBook)
    last_loud: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTIES, 0.0))
    loud_until: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTIES, -1.0))
    both_since: float | None = None
    raised: list[str] = field(default_factory=list)
    """The keys of the alerts raised, in order."""
    _silence: str | None = None
    _crosstalk: str | None = None
    _long: bool = False

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """The alerts raised from the sound (copies), in the order they were raised."""
        return [a for a in (self.book.get(k) for k in self.raised) if a is not None]

    def _raise(self, kind: str, key: str, at: float, message: str, evidence: list[dict[str, Any]]) -> str:
        key = self.book.raise_alert(kind, key, at, message, evidence)
        self.raised.append(key)
        return key

    def chunk(self, party: str, start_s: float, pcm: np.ndarray) -> None:
        """``pcm`` (int16) of ``party`` placed at ``start_s`` in the call."""
        end_s = start_s + pcm.size / 8000
        rms = math.sqrt(float(np.mean(pcm.astype(np.float64) ** 2))) / 32768 if pcm.size else 0.0
        loud = rms > 0 and 20 * math.log10(rms) > LOUD_DBFS
        if loud:
            self.last_loud[party] = max(self.last_loud[party], end_s)
            self.loud_until[party] = max(self.loud_until[party], end_s)
            if self._silence is not None:  # someone speaks again
                self.book.stretch(self._silence, round(start_s, 2))
                self.book.close(self._silence, start_s)
                self._silence = None
        now = max(end_s, *self.last_loud.values())
        quiet_since = max(self.last_loud.values())
        if self.options.alert_silence_s and now - quiet_since >= self.options.alert_silence_s:
            if self._silence is None:
                self._silence = self._raise("silence", f"silence:{quiet_since:.1f}", round(quiet_since, 2),
                                            "nobody has spoken", [{"start": round(quiet_since, 2)}])
            self.book.stretch(self._silence, round(now, 2))
        other = PARTIES[1 - PARTIES.index(party)]
        talking = start_s - self.last_loud[party] <= HANGOVER_S
        if talking and start_s - self.loud_until[other] <= HANGOVER_S:
            self.both_since = start_s if self.both_since is None else self.both_since
            if self.options.alert_crosstalk_s and end_s - self.both_since >= self.options.alert_crosstalk_s:
                if self._crosstalk is None:
                    self._crosstalk = self._raise("crosstalk", f"crosstalk:{self.both_since:.1f}",
                                                  round(self.both_since, 2), "both parties talking at once",
                                                  [{"start": round(self.both_since, 2)}])
                self.book.stretch(self._crosstalk, round(end_s, 2))
        elif not talking:
            if self._crosstalk is not None:  # this party stopped (at its last sound)
                self.book.close(self._crosstalk, self.last_loud[party])
            self.both_since, self._crosstalk = None, None
        if self.options.alert_long_call_s and not self._long and end_s >= self.options.alert_long_call_s:
            self._long = True
            self._raise("long_call", "long_call", round(end_s, 2),
                        f"the call has gone on for {self.options.alert_long_call_s:g} s", [{"start": round(end_s, 2)}])

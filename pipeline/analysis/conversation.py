"""Conversation metrics of one call: talk time, silences, holds, interruptions, talk speed.

The timing facts QA items and dashboards need (as Amazon Transcribe Call Analytics reports
them), computed from the words' times and roles after the speaker stage.

Speech is measured on **talk spurts**: the union of one role's word spans, pauses shorter
than ``bridge_gap_s`` inside that role's speech bridged (a breath between two words is still
talking). An utterance without word times counts as one spurt over its whole span.

Interruptions are found in two ways:

- **overlap** (stereo calls, or any call whose parties overlap in the word times): a spurt of
  one party starts inside the other party's spurt, and both go on speaking together for at
  least ``interruption_min_overlap_s``. A **backchannel** is not an interruption: a spurt of
  at most ``backchannel_max_words`` words that ends while the other party is still speaking
  ("mhm", "okay, right") leaves the floor with them.
- **cut-off** (mono calls): the speaker stage gives overlapping speech to one speaker, so an
  overlap never shows. What does show, on the processed sample calls around every true
  interruption, is that the recogniser heard one continuous stretch of speech and the speaker
  stage cut it at a word: a change of speaker with no pause (at most ``mono_max_gap_s``;
  ordinary turn-taking leaves 0.15 s or more), the words before the change ending mid-sentence
  (no final ``.``, ``?`` or ``!``). Over overlapping speech the diarizer often flips back and
  forth for a word or two; changes within ``mono_burst_s`` of the first are one event, from
  the party holding the floor before it to the party holding it after it.
  Limits: the cue depends on the recogniser's punctuation. A quick reply inside one
  recognised segment, whose previous sentence the recogniser left unpunctuated, looks the same
  (a false interruption); an interruption whose overlapped words the recogniser dropped, or
  that came after a finished sentence, is missed; the overlap length is unknown (``None``).
  A speaker change placed one word early ("...can | they? Okay, ...") looks like a cut too;
  treating a sentence-final first word as the earlier speaker's removed those false cases on
  the sample calls but lost as many true ones (where overlap garbled that word), so it is not
  done.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from pipeline.errors import check_options
from pipeline.interaction.utterances import Utterance, Word

ROLES = ("agent", "customer")
"""Roles always reported, even when they did not speak."""

UNKNOWN = "unknown"
"""Role of speech the speaker stage could not attribute; it counts as talk but never
interrupts or is interrupted."""

FINAL_PUNCTUATION = (".", "?", "!", "\u2026")
"""A word ending with one of these ends a sentence (Whisper's ``...`` for trailing off too)."""

EVIDENCE_WORDS = 6
"""Words quoted on each side of an interruption."""


def _plain(value: Any) -> Any:
    """JSON form of a record's field: times and ratios rounded to milliseconds / 3 places."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v.to_dict() if hasattr(v, "to_dict") else _plain(v) for v in value]
    return value


def _record_dict(record: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(record, f.name)) for f in fields(record)}


@dataclass
class ConversationOptions:
    """Conversation metrics (the ``conversation`` section of the config)."""

    min_silence_s: float = 2.0
    """Pauses between two stretches of speech (nobody talking) at least this long are listed
    as silences. Silence before the first word and after the last counts as non-talk time
    only."""
    dead_air_s: float = 10.0
    """A silence longer than this is dead air (``experience.dead_air``)."""
    hold_min_s: float = 5.0
    """A silence at least this long is a hold candidate (a silent hold, or hold music the
    recogniser gave no words); the hold-etiquette detector decides from what was said around
    it."""
    bridge_gap_s: float = 0.5
    """Pauses shorter than this between two words of the same role count as that role's talk
    time (seconds)."""
    interruption_min_overlap_s: float = 0.5
    """Overlap method: a party interrupts when its talk spurt starts while the other party's
    spurt is under way and both then speak together for at least this long, i.e. the
    interrupted party goes on talking at least this many seconds after the interrupter's
    first word starts (and the interrupter is still speaking then)."""
    backchannel_max_words: int = 3
    """A spurt of at most this many words that ends before the other party stops is a
    backchannel ("mhm", "okay, I see"), not an interruption, and not a turn."""
    mono_max_gap_s: float = 0.1
    """Cut-off method (mono): a change of speaker with at most this pause between the last
    word of one and the first word of the other is a cut inside continuous speech."""
    mono_burst_s: float = 1.0
    """Cut-off method (mono): further changes of speaker within this many seconds of a
    cut, each with no pause, are the same overlap (the diarizer flipping over mixed
    speech)."""
    mono_min_cut_in_words: int = 3
    """Mono: a cut-in of fewer words than this (a fragment, often a word the diarizer gave to
    the wrong speaker) is no interruption: an interrupter takes the floor."""


def validate(options: ConversationOptions) -> None:
    """Raise ConfigError naming the first option out of range."""
    checks = [
        (options.min_silence_s > 0, "min_silence_s", "seconds > 0"),
        (options.dead_air_s > 0, "dead_air_s", "seconds > 0"),
        (options.hold_min_s > 0, "hold_min_s", "seconds > 0"),
        (0 <= options.bridge_gap_s < options.min_silence_s, "bridge_gap_s", "seconds >= 0 and below min_silence_s"),
        (options.interruption_min_overlap_s > 0, "interruption_min_overlap_s", "seconds > 0"),
        (isinstance(options.backchannel_max_words, int) and options.backchannel_max_words >= 0,
         "backchannel_max_words", "a whole number of words >= 0"),
        (0 <= options.mono_max_gap_s <= 1, "mono_max_gap_s", "between 0 and 1 seconds"),
        (options.mono_burst_s >= 0, "mono_burst_s", "seconds >= 0"),
        (isinstance(options.mono_min_cut_in_words, int) and options.mono_min_cut_in_words >= 1,
         "mono_min_cut_in_words", "a whole number of words >= 1"),
    ]
    check_options("conversation", options, checks)


@dataclass
class Silence:
    """A stretch with nobody speaking, between the speech of ``before_role`` and
    ``after_role``."""

    start: float
    end: float
    before_role: str
    after_role: str

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return _record_dict(self) | {"duration_s": _plain(self.duration_s)}


@dataclass
class Interruption:
    """Role ``by`` starts speaking at ``start`` while role ``over`` is still speaking.

    ``how`` is ``overlap`` (seen in the word times; ``overlap_s`` is how long both spoke) or
    ``cut-off`` (mono: the other's speech cut mid-sentence with no pause; ``overlap_s`` is
    unknown). ``evidence`` quotes the words on both sides.
    """

    start: float
    by: str
    over: str
    overlap_s: float | None
    utterance_id: str
    interrupted_utterance_id: str
    how: str
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return _record_dict(self)


@dataclass
class QuarterMetrics:
    """Talk-time figures of one quarter of the call (``index`` 0-3)."""

    index: int
    start: float
    end: float
    talk_s: dict[str, float]
    talk_ratio: dict[str, float]
    non_talk_s: float
    overlap_s: float

    def to_dict(self) -> dict[str, Any]:
        return _record_dict(self)


@dataclass
class ConversationMetrics:
    """Timing facts of one call.

    Per-role dicts always hold ``agent`` and ``customer``, plus any other role that spoke
    (``unknown``). ``talk_ratio`` is each role's share of all the roles' talk time (0 when
    nobody spoke); ``non_talk_s`` is the time nobody speaks (``duration_s`` minus the union
    of everyone's speech); ``overlap_s`` the time two roles speak at once.
    ``words_per_minute`` is a role's words over its talk time (None if it did not speak);
    ``turns`` counts each role's turns (runs of its spurts, backchannels left out), and
    ``backchannels`` its backchannels. ``dead_air`` and ``hold_candidates`` are chosen from
    every pause between speech, whatever ``min_silence_s``; ``longest_silence_s`` is the
    longest such pause (0 with fewer than two stretches of speech).
    """

    duration_s: float
    stereo: bool
    talk_s: dict[str, float]
    talk_ratio: dict[str, float]
    non_talk_s: float
    overlap_s: float
    longest_silence_s: float
    silences: list[Silence]
    dead_air: list[Silence]
    hold_candidates: list[Silence]
    interruptions: list[Interruption]
    interruptions_by: dict[str, int]
    backchannels: dict[str, int]
    words_per_minute: dict[str, float | None]
    turns: dict[str, int]
    quarters: list[QuarterMetrics]

    def to_dict(self) -> dict[str, Any]:
        return _record_dict(self)


# -- speech as spans ------------------------------------------------------------------------


@dataclass
class _Token:
    """A word (or a whole utterance without word times) with its role and utterance."""

    start: float
    end: float
    text: str
    words: int
    role: str
    utterance_id: str


@dataclass
class _Spurt:
    """One role's continuous talk: its tokens, pauses under ``bridge_gap_s`` bridged."""

    role: str
    start: float
    end: float
    tokens: list[_Token]

    @property
    def words(self) -> int:
        return sum(t.words for t in self.tokens)


Span = tuple[float, float]


def _tokens(utterances: list[Utterance], duration_s: float) -> list[_Token]:
    """Every word of the call in time order, clipped to the call (utterances without word
    times as one token)."""

    def token(w: Word | Utterance, text: str, words: int, u: Utterance) -> _Token | None:
        start, end = max(0.0, float(w.start)), min(duration_s, float(w.end))
        if end < start:
            return None
        return _Token(start, end, text, words, u.role or UNKNOWN, u.id)

    out = []
    for u in utterances:
        made = [token(w, w.word, 1, u) for w in u.words] if u.words else [token(u, u.text, len(u.text.split()), u)]
        out.extend(t for t in made if t is not None)
    return sorted(out, key=lambda t: (t.start, t.end))


def _spurts(tokens: list[_Token], bridge_gap_s: float, across_others: bool) -> list[_Spurt]:
    """Each role's talk spurts, all roles together in order of start. ``across_others``: a
    pause is bridged even if another role speaks in it (stereo: a backchannel does not end
    the speaker's spurt); else only pauses nobody speaks in are (mono: a change of speaker
    ends a spurt)."""
    open_by_role: dict[str, _Spurt] = {}
    spurts: list[_Spurt] = []
    for t in tokens:
        current = open_by_role.get(t.role)
        if (current is not None and t.start - current.end < bridge_gap_s
                and (across_others or spurts[-1] is current)):
            current.tokens.append(t)
            current.end = max(current.end, t.end)
        else:
            open_by_role[t.role] = _Spurt(t.role, t.start, t.end, [t])
            spurts.append(open_by_role[t.role])
    return sorted(spurts, key=lambda s: s.start)


def _union(spans: list[Span]) -> list[Span]:
    """Sorted, disjoint union of spans (touching spans merged)."""
    out: list[list[float]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def _length(spans: list[Span], lo: float, hi: float) -> float:
    """Total length of disjoint spans inside [lo, hi]."""
    return sum(max(0.0, min(e, hi) - max(s, lo)) for s, e in spans)


def _overlap_spans(by_role: dict[str, list[Span]]) -> list[Span]:
    """Where at least two roles speak at once."""
    events = sorted((t, d) for spans in by_role.values() for s, e in spans for t, d in ((s, 1), (e, -1)))
    out, active, since = [], 0, 0.0
    for t, d in events:
        if active >= 2 and t > since:
            out.append((since, t))
        active += d
        since = t
    return _union(out)


# -- silences ---------------------------------------------------------------------------------


def _silences(spurts: list[_Spurt]) -> list[Silence]:
    """Every pause between two stretches of speech with nobody talking, in order."""
    out = []
    last_end, last_role = None, None
    for s in spurts:
        if last_end is not None and s.start > last_end:
            out.append(Silence(last_end, s.start, last_role, s.role))
        if last_end is None or s.end >= last_end:
            last_end, last_role = s.end, s.role
    return out


# -- interruptions ----------------------------------------------------------------------------


def _quote(tokens: list[_Token]) -> str:
    return " ".join(t.text for t in tokens)


def _is_backchannel(s: _Spurt, other: _Spurt, options: ConversationOptions) -> bool:
    return s.words <= options.backchannel_max_words and other.start < s.start < other.end and s.end <= other.end


def _talks(role: str) -> bool:
    return role != UNKNOWN


def _overlap_interruptions(spurts: list[_Spurt], options: ConversationOptions) -> list[Interruption]:
    """Spurts starting inside the other party's spurt with enough overlap, backchannels
    left out."""
    out = []
    latest: dict[str, _Spurt] = {}  # each role's spurt that started last so far
    for s in spurts:
        for other in latest.values():
            if other.role == s.role or not (_talks(s.role) and _talks(other.role)):
                continue
            if not other.start < s.start < other.end:
                continue
            overlap = min(s.end, other.end) - s.start
            if overlap < options.interruption_min_overlap_s or _is_backchannel(s, other, options):
                continue
            before = [t for t in other.tokens if t.start < s.start]
            during = [t for t in other.tokens if t.end > s.start]
            out.append(Interruption(
                start=s.start, by=s.role, over=other.role, overlap_s=overlap,
                utterance_id=s.tokens[0].utterance_id,
                interrupted_utterance_id=before[-1].utterance_id,
                how="overlap",
                evidence=(f'{s.role} "{_quote(s.tokens[:EVIDENCE_WORDS])}" starts {overlap:.1f} s before '
                          f'{other.role} stops ("{_quote(during[:EVIDENCE_WORDS])}")'),
            ))
        latest[s.role] = s
    return out


def _backchannels(spurts: list[_Spurt], options: ConversationOptions) -> set[int]:
    """Indices of the spurts that are backchannels inside another role's spurt."""
    out = set()
    latest: dict[str, _Spurt] = {}
    for n, s in enumerate(spurts):
        if any(o.role != s.role and _is_backchannel(s, o, options) for o in latest.values()):
            out.add(n)
        latest[s.role] = s
    return out


def _ends_sentence(text: str) -> bool:
    return text.rstrip("\"')]}\u201d\u2019 ").endswith(FINAL_PUNCTUATION)


def _cutoff_interruptions(tokens: list[_Token], options: ConversationOptions) -> list[Interruption]:
    """Mono: changes of speaker with no pause where the earlier speaker is cut
    mid-sentence."""
    tokens = [t for t in tokens if _talks(t.role)]

    def run_end(j: int) -> int:
        """Index after the run of tokens of ``tokens[j]``'s role starting at ``j``."""
        while j < len(tokens) and tokens[j].role == tokens[j - 1].role:
            j += 1
        return j

    def tight(k: int) -> bool:
        return 0 < k < len(tokens) and tokens[k].start - tokens[k - 1].end <= options.mono_max_gap_s

    out = []
    i = 1
    while i < len(tokens):
        prev = tokens[i - 1]
        if tokens[i].role == prev.role or not tight(i):
            i += 1
            continue
        first, last = i, i  # the burst's first change, and the start of its final run
        end = run_end(i + 1)
        while tight(end) and tokens[end].start - tokens[first].start < options.mono_burst_s:
            last, end = end, run_end(end + 1)
        i = end
        by = tokens[last].role
        if by == prev.role or _ends_sentence(prev.text):
            continue
        final_run = tokens[last:end]
        if len(final_run) <= options.backchannel_max_words and tight(end) and tokens[end].role == prev.role:
            continue  # a backchannel: the interrupted party carries on without a pause
        if len(final_run) < options.mono_min_cut_in_words:
            continue  # a fragment does not take the floor
        said = [t for t in tokens[:first] if t.role == prev.role][-EVIDENCE_WORDS:]
        cut_in = [t for t in tokens[first:end] if t.role == by]
        out.append(Interruption(
            start=cut_in[0].start, by=by, over=prev.role, overlap_s=None,
            utterance_id=cut_in[0].utterance_id, interrupted_utterance_id=prev.utterance_id,
            how="cut-off",
            evidence=(f'{prev.role} cut off mid-sentence ("...{_quote(said)}") by {by} with no pause '
                      f'("{_quote(cut_in[:EVIDENCE_WORDS])}")'),
        ))
    return out


def _is_inside(cut: Interruption, found: list[Interruption], slack_s: float) -> bool:
    return any(f.start - slack_s <= cut.start <= f.start + (f.overlap_s or 0.0) + slack_s for f in found)


# -- the metrics ------------------------------------------------------------------------------


def _quarters(by_role: dict[str, list[Span]], speech: list[Span], overlap: list[Span],
              duration_s: float) -> list[QuarterMetrics]:
    out = []
    for q in range(4):
        lo, hi = duration_s * q / 4, duration_s * (q + 1) / 4
        talk = {r: _length(spans, lo, hi) for r, spans in by_role.items()}
        total = sum(talk.values())
        out.append(QuarterMetrics(
            index=q, start=lo, end=hi, talk_s=talk,
            talk_ratio={r: (v / total if total else 0.0) for r, v in talk.items()},
            non_talk_s=(hi - lo) - _length(speech, lo, hi), overlap_s=_length(overlap, lo, hi),
        ))
    return out


def _turns(spurts: list[_Spurt], backchannels: set[int], roles: list[str]) -> dict[str, int]:
    """Runs of one role's spurts in order of start, backchannels left out."""
    turns = dict.fromkeys(roles, 0)
    last = None
    for n, s in enumerate(spurts):
        if n not in backchannels and s.role != last:
            turns[s.role] += 1
            last = s.role
    return turns


def conversation_metrics(utterances: list[Utterance], duration_s: float, stereo: bool,
                         options: ConversationOptions | None = None) -> ConversationMetrics:
    """Talk time, silences, holds, interruptions, talk speed and turns of one call.

    ``utterances`` come from the speaker stage (role on each, words with times; an utterance
    with no role counts as ``unknown``), ``duration_s`` is the recording's length (speech
    past it is clipped), ``stereo`` says each party is on its own channel (their overlaps are
    real and visible in the word times) rather than diarized from one channel.
    """
    options = options or ConversationOptions()
    validate(options)
    if duration_s < 0:
        raise ValueError(f"duration_s must be >= 0, not {duration_s!r}")
    tokens = _tokens(utterances, duration_s)
    spurts = _spurts(tokens, options.bridge_gap_s, across_others=stereo)
    roles = list(ROLES) + sorted({s.role for s in spurts} - set(ROLES))
    by_role = {r: _union([(s.start, s.end) for s in spurts if s.role == r]) for r in roles}
    speech = _union([span for spans in by_role.values() for span in spans])
    overlap = _overlap_spans(by_role)
    talk = {r: _length(spans, 0.0, duration_s) for r, spans in by_role.items()}
    total_talk = sum(talk.values())

    gaps = _silences(spurts)
    interruptions = _overlap_interruptions(spurts, options)
    if not stereo:
        found = list(interruptions)
        interruptions += [c for c in _cutoff_interruptions(tokens, options)
                          if not _is_inside(c, found, options.bridge_gap_s)]
        interruptions.sort(key=lambda i: i.start)
    backchannels = _backchannels(spurts, options)
    words = {r: sum(t.words for t in tokens if t.role == r) for r in roles}
    return ConversationMetrics(
        duration_s=duration_s,
        stereo=stereo,
        talk_s=talk,
        talk_ratio={r: (v / total_talk if total_talk else 0.0) for r, v in talk.items()},
        non_talk_s=duration_s - _length(speech, 0.0, duration_s),
        overlap_s=_length(overlap, 0.0, duration_s),
        longest_silence_s=max((g.duration_s for g in gaps), default=0.0),
        silences=[g for g in gaps if g.duration_s >= options.min_silence_s],
        dead_air=[g for g in gaps if g.duration_s > options.dead_air_s],
        hold_candidates=[g for g in gaps if g.duration_s >= options.hold_min_s],
        interruptions=interruptions,
        interruptions_by={r: sum(i.by == r for i in interruptions) for r in roles},
        backchannels={r: sum(spurts[n].role == r for n in backchannels) for r in roles},
        words_per_minute={r: (words[r] / (talk[r] / 60) if talk[r] > 0 else None) for r in roles},
        turns=_turns(spurts, backchannels, roles),
        quarters=_quarters(by_role, speech, overlap, duration_s),
    )

"""Items about the timing of the conversation: dead air, interruptions, holds.

They read the call's conversation metrics (pipeline/analysis/conversation.py) and, for holds, what the
agent says around them (phrase matching as in pipeline/analysis/detectors/phrases.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.interaction.record import AUDIO_SOURCES
from pipeline.analysis.detectors.base import NA, NO, YES, CallContext, Detection, Detector, Evidence, confidence_from_margin, register
from pipeline.analysis.detectors.context import AGENT, CUSTOMER
from pipeline.analysis.detectors.phrases import PhraseParams, find_matches


@dataclass
class DeadAirParams:
    """Parameters of ``dead_air``."""

    max_silence_s: float = 10.0
    """Yes when no silence (nobody speaking) inside the conversation lasts longer than this."""


@register("dead_air")
class DeadAirDetector(Detector):
    """Yes when no silence inside the conversation is longer than ``max_silence_s``."""

    sources = AUDIO_SOURCES  # silences and talk over exist only in audio

    Params = DeadAirParams

    def detect(self, ctx: CallContext) -> Detection:
        limit = self.params.max_silence_s
        looked_for = f"a silence longer than {limit:g} s between the first and the last word"
        silences = [s for s in ctx.metrics.silences if s.end - s.start > limit]
        longest = max(ctx.metrics.silences, key=lambda s: s.end - s.start, default=None)
        if silences:
            ev = [Evidence(s.start, s.end, f"silence of {s.end - s.start:.1f} s") for s in silences[:3]]
            worst = max(s.end - s.start for s in silences)
            return Detection(NO, confidence_from_margin(worst - limit, 2.0), ev, looked_for,
                             {"decision": self._decision(worst)})
        if longest is None:
            return Detection(YES, 0.9, [], looked_for, {"longest_silence_s": round(ctx.metrics.longest_silence_s, 2),
                                                        "decision": self._decision(0.0)})
        length = longest.end - longest.start
        ev = [Evidence(longest.start, longest.end, f"longest silence {length:.1f} s")]
        return Detection(YES, confidence_from_margin(limit - length, 2.0), ev, looked_for,
                         {"longest_silence_s": round(length, 2), "decision": self._decision(length)})

    @staticmethod
    def _decision(longest: float) -> dict:
        """The recorded decision score (for callqa tune): the longest silence."""
        return {"param": "max_silence_s", "score": float(longest), "op": ">", "then": NO, "else": YES, "fixed": False}


@dataclass
class InterruptionParams:
    """Parameters of ``interruptions``."""

    by: str = AGENT
    """Who interrupts (agent or customer); the other party is the one interrupted."""
    max_allowed: int = 1
    """Yes when there are at most this many interruptions."""


@register("interruptions")
class InterruptionDetector(Detector):
    """Yes when ``by`` interrupts the other party at most ``max_allowed`` times."""

    sources = AUDIO_SOURCES  # silences and talk over exist only in audio

    Params = InterruptionParams

    def detect(self, ctx: CallContext) -> Detection:
        p = self.params
        over = CUSTOMER if p.by == AGENT else AGENT
        found = [i for i in ctx.metrics.interruptions if i.by == p.by and i.over == over]
        looked_for = f"the {p.by} starting to speak while the {over} is speaking (at most {p.max_allowed} allowed)"
        ev = [Evidence(i.start, i.start + max(i.overlap_s or 0.0, 1.0), f"{p.by} interrupts {over} ({i.how})",
                       i.utterance_id, p.by, None) for i in found[:5]]
        details = {"count": len(found), "stereo": ctx.facts.stereo,
                   "decision": {"param": "max_allowed", "score": len(found), "op": ">", "then": NO, "else": YES,
                                "fixed": False}}
        answer = YES if len(found) <= p.max_allowed else NO
        conf = 0.85 if ctx.facts.stereo else 0.65  # overlaps are seen directly only on stereo calls
        if answer == YES and len(found) == p.max_allowed and found:
            conf -= 0.1
        return Detection(answer, conf, ev, looked_for, details)


HOLD_ANNOUNCEMENT = PhraseParams(
    role=AGENT,
    phrases=["put you on hold", "place you on hold", "on a short hold", "on a brief hold", "bear with me",
             "one moment", "just a moment", "give me a moment", "give me a second", "give me a minute",
             "just a second", "while i check", "while i look", "let me check", "let me look", "let me see",
             "let me pull up", "let me find", "hold on", "hang on", "hold the line", "won't be long",
             "i'll be right back", "stay on the line", "stay on the phone", "take a little while", "need to check"],
    patterns=[r"\bwhile i\b", r"\b(please )?hold (the line|on|for)\b", r"\b(stay|hold) on the (line|phone)\b", r"\b(one|a|just a) (moment|sec|second|minute)\b",
              r"\b(bear|stay) with me\b"],
    examples=["I'm going to place you on a brief hold while I look into this.",
              "Please bear with me for a moment while I check.",
              "Let me just pull up your details, it'll take a minute.",
              "I need to check something with my team, can you hold for a moment?",
              "Give me a few seconds while the system loads."],
    semantic_threshold=0.6,
)
"""What an agent says when putting the caller on hold or going quiet for a lookup."""

HOLD_THANKS = PhraseParams(
    role=AGENT,
    phrases=["thank you for holding", "thanks for holding", "thank you for waiting", "thanks for waiting",
             "thank you for your patience", "thanks for your patience", "appreciate your patience",
             "thank you for bearing with me", "thanks for bearing with me", "thanks for hanging on",
             "thank you for hanging on", "sorry for the wait", "sorry to keep you waiting",
             "sorry for keeping you waiting", "thanks for staying on the line"],
    patterns=[r"\b(thank|thanks|cheers)\b.{0,25}\b(patience|patient|waiting|holding|hanging on|bearing with|staying on)\b",
              r"\bsorry (for|about) the wait", r"\bkeep(ing)? you waiting\b"],
    examples=["Thank you so much for holding.", "Thanks for your patience while I checked that.",
              "I appreciate you waiting, I'm back now.", "Sorry to have kept you waiting."],
    semantic_threshold=0.62,
)
"""What an agent says coming back from a hold."""


@dataclass
class HoldParams:
    """Parameters of ``hold_etiquette``."""

    min_silence_s: float = 5.0
    """A silence this long inside the call is a hold (or a silent lookup)."""
    announced_min_silence_s: float = 2.0
    """After a hold announcement, a silence this long is a hold too."""
    announce_window_s: float = 20.0
    """The announcement must come in the agent's words this long before the hold starts."""
    thanks_window_s: float = 20.0
    """The thanks for waiting must come in the agent's words this long after the hold ends."""
    announcement_phrases: list[str] = field(default_factory=list)
    """Extra announcement phrases beside the built-in ones."""
    thanks_phrases: list[str] = field(default_factory=list)
    """Extra thanks-for-waiting phrases beside the built-in ones."""


@register("hold_etiquette")
class HoldEtiquetteDetector(Detector):
    """Na without a hold; yes when every hold was announced before and thanked after."""

    sources = AUDIO_SOURCES  # silences and talk over exist only in audio

    Params = HoldParams

    def _rules(self, base: PhraseParams, extra: list[str]) -> PhraseParams:
        return PhraseParams(**{**base.__dict__, "phrases": base.phrases + extra})

    def detect(self, ctx: CallContext) -> Detection:
        p = self.params
        announce = self._rules(HOLD_ANNOUNCEMENT, p.announcement_phrases)
        thanks = self._rules(HOLD_THANKS, p.thanks_phrases)
        announced_units = {u.index: (u, rule) for u, _, rule in find_matches(announce, ctx)[0]}
        holds = []
        for s in ctx.metrics.silences:
            length = s.end - s.start
            before = [a for a in announced_units.values() if s.start - p.announce_window_s <= a[0].end <= s.start + 0.5]
            if length >= p.min_silence_s or (before and length >= p.announced_min_silence_s):
                holds.append((s, before))
        looked_for = (f"silences of {p.min_silence_s:g} s or more (or {p.announced_min_silence_s:g} s after an "
                      f"announcement); before each the agent announces it, after it thanks the caller for waiting")
        if not holds:
            return Detection(NA, 0.8, [], looked_for + ": no hold found")
        ev: list[Evidence] = []
        ok = True
        for s, before in holds:
            ev.append(Evidence(s.start, s.end, f"hold / silence of {s.end - s.start:.1f} s"))
            after_units = ctx.select(AGENT, after=s.end - 0.5, before=s.end + p.thanks_window_s)
            thanked = find_matches(thanks, ctx, after_units)[0]
            if before:
                u, rule = before[-1]
                ev.append(Evidence.of_unit(u, f"announced: {rule}"))
            else:
                ok = False
                ev.append(Evidence(max(0.0, s.start - p.announce_window_s), s.start, "not announced before the hold"))
            if thanked:
                u, _, rule = thanked[0]
                ev.append(Evidence.of_unit(u, f"thanked for waiting: {rule}"))
            else:
                ok = False
                ev.append(Evidence(s.end, s.end + p.thanks_window_s, "no thanks for waiting after the hold"))
        return Detection(YES if ok else NO, 0.8, ev, looked_for, {"holds": len(holds)})

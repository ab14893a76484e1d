"""Personal data (PII) in call transcripts: found at the word level, redacted in outputs and audio.

Speech recognisers write numbers in many ways ("4 5 6 7", "four five six seven", "double five",
"oh" for zero, "forty two", split over words with punctuation), so digit sequences are first
normalised from the words (pipeline/text/spoken_numbers.py), keeping which words they came from:
every finding is a range of words of one utterance (a :class:`PiiSpan`) with its time span,
never a character offset into text that a later stage may rebuild. Types are decided by the
digits themselves (Luhn, length, grouping) and by cue words said just before or asked in the
previous turn ("account number", "date of birth"); digits read out one by one are masked whatever
was said before them (the cue is often misheard). Names and addresses favour precision: a name
needs spaCy's PERSON label or a self-introduction pattern, and a street needs a house number or
an address question; a name found once is then masked wherever it recurs in the call, also in
the recogniser's other spellings of it. Masking the spans in the call's audio is pipeline/pii/audio.py
(:func:`redact_audio`, re-exported here).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.pii.audio import redact_audio
from pipeline.pii.options import AUDIO_METHODS, ENTITY_TYPES, PiiOptions, PiiSpan, masks_audio, validate
from pipeline.interaction.utterances import Utterance, Word
from pipeline.text.spoken_numbers import NumberRun, clean_word, luhn, number_runs, punct_after, word_atoms

__all__ = ["PiiOptions", "validate", "masks_audio", "PiiSpan", "ENTITY_TYPES", "AUDIO_METHODS", "find_pii",
           "redact_utterances", "redact_audio"]

# -- vocabulary --------------------------------------------------------------------------------

_ORDINALS = {w: i + 1 for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
    "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split())}
_ORDINALS["thirtieth"] = 30
_MONTHS = set("january february march april may june july august september october november december "
              "jan feb mar apr jun jul aug sep sept oct nov dec".split())
_UNIT_WORDS = set("dollars dollar pounds pound quid euros euro cents pence p percent minutes minute hours hour "
                  "days day weeks week months month years year times pm am gb mb o'clock".split())
_STREET = set("street st road rd lane ln avenue ave drive close way court ct place crescent terrace "
              "boulevard blvd grove gardens square mews parkway highway walk row hill".split())
_COMPANY_WORDS = set("bank energy mobile broadband services service support insurance group ltd limited inc "
                     "corp company telecom airlines care team department billing sales credit finance financial utilities "
                     "water gas electric power health travel".split())
_NAME_STOP = set("i i'm i've i'll i'd hi hello hey yes yeah no okay ok oh well so thanks thank sorry please "
                 "sure right great good fine morning afternoon evening dear sir madam the a an this that it "
                 "it's here there just calling speaking mister mr mrs ms miss dr customer agent bye goodbye "
                 "monday tuesday wednesday thursday friday saturday sunday today tomorrow".split()) | _MONTHS
_STOP = set("is it's its was my the a an at on in to of and yes yeah sure it that's that i i'm we our your "
            "please so um uh er ok okay".split())
_NAME_QUESTION = re.compile(r"(?<![a-z])(your|full|maiden|first|last|sur) ?name( on the account)?(?![a-z])")
_NOT_NAMES = {"DATE", "TIME", "NORP", "MONEY", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT"}
"""spaCy labels that rule a capitalised word out as a name (GPE and ORG do not: the small
model gives them to many first names)."""
_TLDS = "com|net|org|co|uk|io|edu|gov|us|ca|au|de|fr|ie|info|biz|me"

_CUES = [  # (type, cue words said before a number of that type), over cleaned tokens
    ("CREDIT_CARD", r"card (number|no|num)|long number|cvv|cvc|cv2|security (code|number)|expiry|expiration"
                    r"|valid (until|thru|through)|last (four|4)"),
    ("SSN", r"social security|ssn|tax id"),
    ("PHONE", r"phone|telephone|mobile|cell|landline|contact number|call you back|reach you|callback"),
    ("DATE_OF_BIRTH", r"date of birth|birth ?date|birthday|born|dob|d o b"),
    ("ADDRESS", r"zip|zip code|postcode|post code|postal code"),
    ("ACCOUNT_NUMBER", r"account|reference|ref|membership|pin|passcode|iban|sort code|routing"
                       r"|(member|policy|order|customer|booking|confirmation|invoice|case|ticket|claim|tracking"
                       r"|serial) (number|no|num|id|code|reference)"),
]
_CUE_RE = {t: re.compile(rf"(?<![a-z0-9])(?:{p})(?![a-z0-9])") for t, p in _CUES}
_ADDRESS_CUE = re.compile(r"(?<![a-z])(address|live at|living at|moved to|first line|house number|street)(?![a-z])")
_NAME_CUE = re.compile(r"(?<![a-z'])(my name is|my name's|name is|name's|the name on the account is|account holder is"
                       r"|this is|i'm|i am|speaking with|speaking to|call me|mr|mrs|ms|miss|dr|mister)$")
_NAME_CUE_ENDS = ("is", "name's", "i'm", "am", "with", "to", "me", "mr", "mrs", "ms", "miss", "dr", "mister")
"""The last words of the cues of :data:`_NAME_CUE` (a text it matches ends with one of them)."""
_EMAIL_RE = re.compile(rf"(?<![^ ])(?:[a-z0-9] )*[a-z0-9]+(?: ?[._+-] ?[a-z0-9]+| [0-9]+)* ?@ ?"
                       rf"[a-z0-9]+(?: ?[.-] ?[a-z0-9]+)* ?\. ?(?:{_TLDS})(?![a-z0-9])")
_POSTCODE = re.compile(r"[A-Z]{1,2}\d[A-Z\d]?")
_POSTCODE_IN = re.compile(r"\d[A-Z]{2}")
_POSTCODE_WHOLE = re.compile(r"[A-Z]{1,2}\d[A-Z\d]?\d[A-Z]{2}")
"""A UK postcode written as one word."""
_INITIAL = re.compile(r"[A-Z]\.")
"""An initial ("P."): its full stop does not end the name."""
_NUMERIC_DATE = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-](\d{2}|\d{4})")
_PRIORITY = {t: i for i, t in enumerate(("CREDIT_CARD", "SSN", "PHONE", "ACCOUNT_NUMBER", "EMAIL", "DATE_OF_BIRTH",
                                          "ADDRESS", "PERSON"))}
"""Which type an overlap of equal length goes to: the more specific pattern first."""




# -- tokens of the call ------------------------------------------------------------------------

@dataclass
class _Utt:
    """One utterance as tokens, with what the detectors need around it."""

    index: int
    utt: Utterance
    raw: list[str]
    clean: list[str]
    context: list[str] = field(default_factory=list)
    """Cleaned tokens of the previous turns (up to two, within 30 s) before this one's."""
    offset: int = 0
    """Index in ``context`` of this utterance's first token."""
    parsed: tuple[Any, list[int], list[str | None]] | None = None
    """(spaCy doc, the word of each of its tokens, each word's tag) once worked out: the names
    and their repeats read them from one pass over the doc."""

    def times(self, first: int, last: int) -> tuple[float, float]:
        if not self.utt.words:
            return self.utt.start, self.utt.end
        return self.utt.words[first].start, self.utt.words[last].end


def _utts(utterances: Sequence[Utterance]) -> list[_Utt]:
    order = sorted(range(len(utterances)), key=lambda i: (utterances[i].start, i))
    out: list[_Utt] = []
    for i in order:
        u = utterances[i]
        raw = [w.word for w in u.words] if u.words else u.text.split()
        cur = _Utt(i, u, raw, [clean_word(w) for w in raw])
        prev = [p for p in out[-2:] if u.start - p.utt.end <= 30.0]
        cur.context = [t for p in prev for t in p.clean] + cur.clean
        cur.offset = len(cur.context) - len(cur.clean)
        out.append(cur)
    return out


def _cues(u: _Utt, at: int, window: int = 20) -> list[tuple[str, int]]:
    """Cue types found before own token ``at`` (within ``window`` tokens), nearest first, each
    with the number of tokens between the cue's end and ``at``; cues from the previous turns
    count as immediate only when ``at`` opens this turn (an answer to the question)."""
    stop = u.offset + at
    text = " ".join(u.context[max(0, stop - window):stop])
    found = []
    for kind, rx in _CUE_RE.items():
        for m in rx.finditer(text):
            gap = text[m.end():].count(" ")
            found.append((kind, at if gap >= at else gap, gap))
    return [(kind, eff) for kind, eff, _ in sorted(found, key=lambda f: f[1:])]


# -- numbers -----------------------------------------------------------------------------------

def _spelled(u: _Utt, run: NumberRun) -> bool:
    """Whether the run was said digit by digit ("four four eight", "4 4 8", "double two",
    "eight-two-one"), not as a number ("forty eight", "nineteen ninety", "448")."""
    for raw in u.raw[run.first:run.last + 1]:
        for kind, v in word_atoms(raw) or []:
            if kind not in ("unit", "mult", "sep", "filler") and not (kind == "lit" and len(v) == 1):
                return False
    return True


def _classify(run: NumberRun, u: _Utt, nxt: str, options: PiiOptions, spelled: bool = False) -> tuple[str, str] | None:
    """(type, detector) of a digit run, or None when it is not personal data. ``spelled``: said
    digit by digit (see :func:`_spelled`)."""
    n, d = len(run.digits), run.digits
    cues = _cues(u, run.first)
    near = cues[0][0] if cues else None
    immediate = {kind for kind, gap in cues if gap <= 5}
    is_quantity = nxt in _UNIT_WORDS
    if near == "DATE_OF_BIRTH" and "DATE_OF_BIRTH" in immediate and 4 <= n <= 8:
        return "DATE_OF_BIRTH", "context"
    if 13 <= n <= 19 and luhn(d):
        return "CREDIT_CARD", "luhn"
    if run.groups == [3, 2, 4] or (n == 9 and near == "SSN"):
        return "SSN", "digits" if near != "SSN" else "context"
    if near == "PHONE" and (10 <= n <= 15 or (n >= 7 and "PHONE" in immediate)):
        return "PHONE", "context"
    short = not is_quantity and n >= 3
    if near == "CREDIT_CARD" and short and ("CREDIT_CARD" in immediate or n >= options.min_account_digits):
        return "CREDIT_CARD", "context"
    if near == "ACCOUNT_NUMBER" and short and ("ACCOUNT_NUMBER" in immediate or n >= options.min_account_digits):
        return "ACCOUNT_NUMBER", "context"
    if "ADDRESS" in immediate and n in (5, 9) and not is_quantity:
        return "ADDRESS", "context"
    if n in (10, 11):
        return "PHONE", "digits"
    if n == 9:
        return "SSN", "digits"
    if n >= options.min_account_digits:
        return "ACCOUNT_NUMBER", "digits"
    if spelled and n >= options.min_spelled_digits and not is_quantity:
        return "ACCOUNT_NUMBER", "spelled"
    return None


def _number_spans(utts: list[_Utt], options: PiiOptions) -> list[PiiSpan]:
    """Digit runs classified; a run that ends one turn and opens the same speaker's next turn
    (within 2 s) counts as one number, with a span in each."""
    runs = {u.index: number_runs(u.raw) for u in utts}
    position = {u.index: k for k, u in enumerate(utts)}
    spans: list[PiiSpan] = []
    for u in utts:
        for run in runs[u.index]:
            if run.continued:
                continue
            parts, whole = [(u, run)], NumberRun(run.first, run.last, run.digits, list(run.groups))
            while parts[-1][1].last == len(parts[-1][0].raw) - 1:
                tail = parts[-1][0]
                later = [v for v in utts[position[tail.index] + 1:position[tail.index] + 4]
                         if v.utt.channel == tail.utt.channel and v.utt.speaker == tail.utt.speaker]
                nxt_runs = runs[later[0].index] if later else []
                if not nxt_runs or nxt_runs[0].first != 0 or later[0].utt.start - tail.utt.end > 2.0:
                    break
                nxt_runs[0].continued = True
                parts.append((later[0], nxt_runs[0]))
                whole.digits += nxt_runs[0].digits
                whole.groups += nxt_runs[0].groups
            last_u, last_run = parts[-1]
            after = last_u.clean[last_run.last + 1] if last_run.last + 1 < len(last_u.clean) else ""
            found = _classify(whole, u, after, options, all(_spelled(pu, pr) for pu, pr in parts))
            if found and found[0] == "ACCOUNT_NUMBER":  # letters said before the digits: "A B 1 2 3 4"
                while run.first > 0 and re.fullmatch(r"[A-Z]", u.raw[run.first - 1].strip(".,")) and u.raw[run.first - 1] != "I":
                    run.first -= 1
            if found:
                for pu, pr in parts:
                    spans.append(PiiSpan(found[0], pu.utt.id, pr.first, pr.last, *pu.times(pr.first, pr.last), found[1]))
    return spans


# -- e-mails, dates, addresses -----------------------------------------------------------------

_SPOKEN_EMAIL = {"at": "@", "dot": ".", "period": ".", "point": ".", "underscore": "_", "dash": "-",
                 "hyphen": "-", "dotcom": ".com", "plus": "+"}


def _starts(tokens: list[str]) -> list[int]:
    """Character offset of each token in the tokens joined by single spaces."""
    return list(itertools.accumulate((len(t) + 1 for t in tokens[:-1]), initial=0)) if tokens else []


def _token_matches(tokens: list[str], rx: re.Pattern) -> list[tuple[int, int]]:
    """Token ranges (first, last) of the matches of ``rx`` over the tokens joined by spaces."""
    starts = _starts(tokens)
    return [(bisect.bisect_right(starts, m.start()) - 1, bisect.bisect_left(starts, m.end()) - 1)
            for m in rx.finditer(" ".join(tokens))]


def _emails(u: _Utt) -> list[tuple[int, int, str]]:
    tokens = [_SPOKEN_EMAIL.get(c, c) or "~" for c in u.clean]
    return [(a, b, "regex" if "@" in u.raw[a] or "@" in u.raw[b] else "spoken")
            for a, b in _token_matches(tokens, _EMAIL_RE)]


def _day_at(clean: list[str], i: int) -> int:
    """Tokens used by a day of the month said from ``clean[i]`` ("4th", "fourth", "twenty first", "4")."""
    c = clean[i] if 0 <= i < len(clean) else ""
    if c in ("twenty", "thirty") and i + 1 < len(clean) and clean[i + 1] in _ORDINALS:
        return 2
    return int(bool(re.fullmatch(r"([12]?\d|3[01])(st|nd|rd|th)?", c)) or c in _ORDINALS)


def _day_ending(clean: list[str], j: int) -> int | None:
    """First token of a day of the month whose last token is ``clean[j]``."""
    if j >= 1 and _day_at(clean, j - 1) == 2:
        return j - 1
    return j if j >= 0 and _day_at(clean, j) == 1 else None


def _dates(u: _Utt) -> list[tuple[int, int]]:
    """Dates said as words ("the fourth of May, 1982", "May 4th 82") or written "04/05/1982"."""
    out = []
    for i, c in enumerate(u.clean):
        if _NUMERIC_DATE.fullmatch(c):
            out.append((i, i))
        if c not in _MONTHS or (c == "may" and not u.raw[i][:1].isupper()):
            continue
        first = last = i
        if i >= 2 and u.clean[i - 1] == "of" and (day := _day_ending(u.clean, i - 2)) is not None:
            first = day
        elif (day := _day_ending(u.clean, i - 1)) is not None:
            first = day
        else:
            skip = int(u.clean[i + 1:i + 2] == ["the"])
            if used := _day_at(u.clean, i + 1 + skip):
                last = i + skip + used
        year = next((r for r in number_runs(u.raw[last + 1:last + 5]) if r.first == 0), None)
        if year is not None and len(year.digits) in (2, 4):
            last += year.last + 1
        if last > first:
            out.append((first, last))
    return out


def _is_number_word(c: str) -> bool:
    atoms = word_atoms(c)
    return bool(atoms) and all(a[0] in ("unit", "teen", "tens", "lit") for a in atoms) and c not in ("oh", "o")


def _streets(u: _Utt) -> list[tuple[int, int]]:
    """Street addresses: [house number] name words + street word, said with a house number or
    right after an address question; a town said straight after is included."""
    out = []
    asked = bool(_ADDRESS_CUE.search(" ".join(u.context[max(0, u.offset - 25):])))
    for i, raw in enumerate(u.raw):
        parts = u.clean[i].split("-")  # clean_word(raw)
        if parts[-1] not in _STREET:
            continue
        names = [p for p in parts[:-1] if p.isalpha()]
        has_number = bool(re.fullmatch(r"\d+[a-z]?", parts[0]))
        first = i
        while not has_number and first > 0 and len(names) < 4:
            c = u.clean[first - 1]
            if re.fullmatch(r"\d+[a-z]?", c) or _is_number_word(c):
                has_number, first = True, first - 1
                while first > 0 and _is_number_word(u.clean[first - 1]):  # "twenty four"
                    first -= 1
            elif c.replace("'", "").isalpha() and c not in _STOP and (asked or u.raw[first - 1][:1].isupper()):
                names.append(c)
                first -= 1
            else:
                break
        capitalised = raw[:1].isupper() or u.raw[min(first + 1, i)][:1].isupper()
        if not names or not (asked or (has_number and capitalised)):
            continue
        last = i
        while (last + 1 < len(u.raw) and last - i < 2 and not u.raw[last].endswith((".", "?", "!"))
               and u.raw[last + 1][:1].isupper() and u.clean[last + 1] not in _NAME_STOP):
            last += 1
        out.append((first, last))
    return out


def _postcodes(u: _Utt) -> list[tuple[int, int]]:
    out = []
    for i, raw in enumerate(u.raw):
        w = raw.strip(".,;:!?")
        if _POSTCODE_WHOLE.fullmatch(w):
            out.append((i, i))
        elif _POSTCODE.fullmatch(w) and i + 1 < len(u.raw) and _POSTCODE_IN.fullmatch(u.raw[i + 1].strip(".,;:!?")):
            out.append((i, i + 1))
    return out


# -- names -------------------------------------------------------------------------------------

def _name_word(raw: str, tag: str | None, clean: str | None = None) -> bool:
    """Whether the word ``raw`` (``clean``: its :func:`clean_word`, when known) can be (part of)
    a name: capitalised, letters only, no common or company word, a proper noun if tagged."""
    c = (clean_word(raw) if clean is None else clean).removesuffix("'s")
    return (raw[:1].isupper() and c.replace("-", "").replace("'", "").isalpha() and c not in _NAME_STOP
            and c not in _COMPANY_WORDS and (tag is None or tag in ("NNP", "NNPS")))


def _token_words(u: _Utt, doc: Any) -> tuple[list[int], list[str | None]]:
    """The word of each spaCy token of ``doc`` (the utterance's words joined by spaces), and
    spaCy's part-of-speech tag of each word (of its first token; None without spaCy); worked
    out once per utterance and doc."""
    if u.parsed is not None and u.parsed[0] is doc:
        return u.parsed[1], u.parsed[2]
    tags: list[str | None] = [None] * len(u.raw)
    word_of: list[int] = []
    if doc is not None:
        starts = _starts(u.raw)
        for t in doc:
            w = bisect.bisect_right(starts, t.idx) - 1
            word_of.append(w)
            tags[w] = tags[w] or t.tag_
    u.parsed = (doc, word_of, tags)
    return word_of, tags


def _word_tags(u: _Utt, doc: Any) -> list[str | None]:
    """spaCy's part-of-speech tag of each word (of its first token), None without spaCy."""
    return _token_words(u, doc)[1]


def _names(u: _Utt, doc: Any) -> list[tuple[int, int, str]]:
    """PERSON names: spaCy PERSON entities, and capitalised proper nouns after an introduction
    ("my name is", "this is", "speaking with", "Mrs"), whatever label the small model gave them."""
    word_of, tags = _token_words(u, doc)
    labels: list[str | None] = [None] * len(u.raw)
    out = []
    if doc is not None:
        for ent in doc.ents:
            words = sorted({word_of[t.i] for t in ent})
            for w in words:
                labels[w] = ent.label_
            if ent.label_ == "PERSON":
                keep = [w for w in words if _name_word(u.raw[w], tags[w], u.clean[w])]
                if keep and keep == list(range(keep[0], keep[-1] + 1)):
                    out.append((keep[0], keep[-1], "ner"))
    def name_at(i: int, introduced: bool = False) -> bool:
        """Word ``i`` can be (part of) a name; right after an introduction any capitalised word
        can, whatever its tag (a misheard name is often tagged as an adverb: "Only Grant") or
        its NORP label (the small model calls many first names a nationality: "Priya")."""
        ruled_out = _NOT_NAMES - {"NORP"} if introduced else _NOT_NAMES
        return _name_word(u.raw[i], None if introduced else tags[i], u.clean[i]) and labels[i] not in ruled_out

    asked = _NAME_QUESTION.search(" ".join(u.context[max(0, u.offset - 12):u.offset]))
    for i in range(len(u.raw)):
        opening = i <= 2 and all(c in _STOP for c in u.clean[:i])  # the answer to "and your full name?"
        # a cue ends the words before i (``$``: or a line break after them), so the word before
        # i ends as the cue does: only then is the cue looked for
        cued = (i > 0 and u.clean[i - 1].rstrip("\n").endswith(_NAME_CUE_ENDS)
                and _NAME_CUE.search(" ".join(u.clean[max(0, i - 6):i])))
        if cued or (asked and opening):
            last = i - 1
            while last + 1 < len(u.raw) and last - i < 2 and name_at(last + 1, introduced=True):
                last += 1
                if punct_after(u.raw[last]) and not _INITIAL.fullmatch(u.raw[last]):
                    break
            company = last + 1 < len(u.clean) and u.clean[last + 1] in _COMPANY_WORDS
            if last >= i and not company:
                out.append((i, last, "pattern"))
        if u.clean[i] in ("speaking", "here") and i > 0 and not punct_after(u.raw[i - 1]):
            first = i  # "Sam speaking", "it's Ben Gilbert here"
            while first > 0 and i - first < 3 and name_at(first - 1) and (first == i or not punct_after(u.raw[first - 1])):
                first -= 1
            opener = " ".join(u.clean[max(0, first - 2):first])
            if first < i and (u.clean[i] == "speaking" or opener.endswith(("it's", "this is"))):
                out.append((first, i - 1, "pattern"))
    return out


def _nlp_docs(utts: list[_Utt], options: PiiOptions) -> list[Any]:
    if not options.names:
        return [None] * len(utts)
    from models.ner import parse

    return parse([" ".join(u.raw) for u in utts], options.spacy_model)


# -- the detector ------------------------------------------------------------------------------

def find_pii(utterances: Sequence[Utterance], options: PiiOptions | None = None,
             organisation: str | None = None, known_names: Iterable[str] = ()) -> list[PiiSpan]:
    """Every span of personal data in the utterances of one call (ids unique), non-overlapping,
    in the order the utterances were said. ``organisation`` is the company the agent speaks
    for: its name is no person's (NER often takes "Keystone" or "Orbit" for one).
    ``known_names``: words that name the people of the conversation (a written conversation's
    From names), masked wherever they are written."""
    options = options or PiiOptions()
    if not options.enabled or not options.entities:
        return []
    if len({u.id for u in utterances}) != len(utterances):
        raise ValueError("find_pii takes the utterances of one call: their ids must be unique")
    utts = _utts(utterances)
    org = {clean_word(w) for w in (organisation or "").split()} - {""}
    spans = _number_spans(utts, options)
    want_names = "PERSON" in options.entities
    known = {clean_word(w) for w in known_names} - org - {""}
    docs = _nlp_docs(utts, options) if want_names else [None] * len(utts)
    for u, doc in zip(utts, docs):
        found: list[tuple[str, int, int, str]] = [("EMAIL", a, b, det) for a, b, det in _emails(u)]
        asked = " ".join(u.context[max(0, u.offset - 25):u.offset])
        for a, b in _dates(u):
            said = " ".join(u.clean[max(0, a - 20):a])
            if _CUE_RE["DATE_OF_BIRTH"].search(said) or (a <= 6 and _CUE_RE["DATE_OF_BIRTH"].search(asked)):
                found.append(("DATE_OF_BIRTH", a, b, "date"))
        found += [("ADDRESS", a, b, "pattern") for a, b in _streets(u)]
        found += [("ADDRESS", a, b, "regex") for a, b in _postcodes(u)]
        if want_names:
            found += [("PERSON", a, b, det) for a, b, det in _names(u, doc)
                      if not (org and set(u.clean[a : b + 1]) <= org)]
            found += [("PERSON", i, i, "known name") for i, w in enumerate(u.clean) if w in known]
        spans += [PiiSpan(t, u.utt.id, a, b, *u.times(a, b), det) for t, a, b, det in found]
    spans = _resolve(spans, options)
    if want_names:
        spans = _resolve(spans + _repeated_names(utts, docs, spans, org), options)
    order = {u.utt.id: k for k, u in enumerate(utts)}
    return sorted(spans, key=lambda s: (order[s.utterance_id], s.first_word))


def _resolve(spans: list[PiiSpan], options: PiiOptions) -> list[PiiSpan]:
    """Keep wanted types; overlapping spans of one type are joined; where spans of different
    types overlap, the longer wins, then the more specific type."""
    joined: list[PiiSpan] = []
    for s in sorted((s for s in spans if s.type in options.entities), key=lambda s: (s.utterance_id, s.type, s.first_word)):
        last = joined[-1] if joined else None
        if last and (last.utterance_id, last.type) == (s.utterance_id, s.type) and s.first_word <= last.last_word:
            if s.last_word > last.last_word:
                joined[-1] = replace(last, last_word=s.last_word, end=max(last.end, s.end))
        else:
            joined.append(s)
    kept: list[PiiSpan] = []
    for s in sorted(joined, key=lambda s: (s.first_word - s.last_word, _PRIORITY[s.type],
                                           s.detector in ("repeat", "sounds-like"))):
        if not any(k.utterance_id == s.utterance_id and k.first_word <= s.last_word and s.first_word <= k.last_word
                   for k in kept):
            kept.append(s)
    return kept


_SOUNDEX = {c: d for d, letters in enumerate(("bfpv", "cgjkqsxz", "dt", "l", "mn", "r"), 1) for c in letters}


def _sound_key(word: str) -> str:
    """The first three characters of the word's Soundex code: the same for the spellings a
    recogniser gives one name across a call ("Marka" / "Marcus", "Brooks" / "Brooke")."""
    code, prev = word[0], _SOUNDEX.get(word[0])
    for c in word[1:]:
        d = _SOUNDEX.get(c)
        if d is not None and d != prev:
            code += str(d)
        if c not in "hw":
            prev = d
    return code[:3]


def _repeated_names(utts: list[_Utt], docs: list[Any], spans: list[PiiSpan], org: set[str]) -> list[PiiSpan]:
    """A name found once in the call is redacted wherever else it is said ("thank you, Andrew"):
    the same word capitalised (opening a sentence only when tagged a proper noun: "Only one
    card?" after a name misheard as "Only Grant"), or said alone in a turn; and a capitalised
    word inside a sentence that sounds like it (the recogniser's other spelling of the name)."""
    by_id = {u.utt.id: u for u in utts}
    names = {by_id[s.utterance_id].clean[i].removesuffix("'s") for s in spans if s.type == "PERSON"
             for i in range(s.first_word, s.last_word + 1)}
    names = {n for n in names if len(n) > 1 and n not in _NAME_STOP}
    sounds = {_sound_key(n) for n in names if len(n) >= 4 and n.isalpha()}
    out = []
    for u, doc in zip(utts, docs):
        alone = [i for i, c in enumerate(u.clean) if c not in _STOP and c not in _NAME_STOP]
        tags = _word_tags(u, doc)
        for i, raw in enumerate(u.raw):
            c = u.clean[i].removesuffix("'s")
            inside = i > 0 and not punct_after(u.raw[i - 1])
            proper = inside or tags[i] in (None, "NNP", "NNPS")
            if c in names and ((raw[:1].isupper() and proper) or alone == [i]):
                out.append(PiiSpan("PERSON", u.utt.id, i, i, *u.times(i, i), "repeat"))
            elif (inside and len(c) >= 4 and _name_word(raw, None, u.clean[i]) and c not in org
                  and _sound_key(c) in sounds):
                out.append(PiiSpan("PERSON", u.utt.id, i, i, *u.times(i, i), "sounds-like"))
    return out


# -- redaction ---------------------------------------------------------------------------------

def redact_utterances(utterances: Sequence[Utterance], spans: Sequence[PiiSpan]) -> list[Utterance]:
    """Copies of the utterances in which each span's words are one word ``[TYPE]`` (start of its
    first word, end of its last, the lowest probability) and the text is the words joined;
    utterances without a span come back as they are. Overlapping spans are merged."""
    by_utt: dict[str, list[PiiSpan]] = {}
    for s in spans:
        by_utt.setdefault(s.utterance_id, []).append(s)
    out = []
    for u in utterances:
        mine = sorted(by_utt.get(u.id, []), key=lambda s: (s.first_word, -s.last_word))
        if not mine:
            out.append(u)
            continue
        merged: list[list[Any]] = []
        for s in mine:
            if merged and s.first_word <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], s.last_word)
            else:
                merged.append([s.first_word, s.last_word, s.type])
        if u.words:
            words = list(u.words)
            for a, b, kind in reversed(merged):
                group = words[a:b + 1]
                words[a:b + 1] = [Word(f"[{kind}]", group[0].start, group[-1].end, min(w.probability for w in group))]
            out.append(replace(u, words=words, text=" ".join(w.word for w in words)))
        else:
            tokens = u.text.split()
            for a, b, kind in reversed(merged):
                tokens[a:b + 1] = [f"[{kind}]"]
            out.append(replace(u, text=" ".join(tokens)))
    return out

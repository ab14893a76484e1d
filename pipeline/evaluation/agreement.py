"""Agreement metrics between callqa's output and gold labels (shared by tests, benchmarks and
the evaluation harness)."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

FRAME_S = 0.01


def _role_frames(spans: Iterable[tuple[float, float, str]], n: int) -> np.ndarray:
    """A role label (or '') per 10 ms frame."""
    frames = np.full(n, "", dtype=object)
    for start, end, role in spans:
        a, b = int(round(start / FRAME_S)), int(round(end / FRAME_S))
        frames[max(0, a) : max(0, min(n, b))] = role
    return frames


def _hyp_words(hyp_utterances: list[dict[str, Any]]) -> list[tuple[float, float, str, str]]:
    """(start, end, role, text) of every recognised word in time order (an utterance without
    words counts as one word)."""
    out = []
    for u in hyp_utterances:
        role = u.get("role") or "unknown"
        words = u.get("words") or []
        if words:
            out += [(w["start"], w["end"], role, w.get("word", "")) for w in words]
        else:
            out.append((u["start"], u["end"], role, u.get("text", "")))
    return sorted(out, key=lambda w: (w[0], w[1]))


def _aligned_roles(hyp_words: list[tuple[float, float, str, str]], gold: list[dict[str, Any]]) -> list[str | None]:
    """For each hypothesis word, the role of the gold word it aligns with (the word streams
    of both sides, in time order, aligned as text), or None when it aligns with none."""
    from difflib import SequenceMatcher

    from pipeline.text.normalize import plain

    gold_tokens: list[str] = []
    gold_roles: list[str] = []
    for u in sorted(gold, key=lambda u: u["start"]):
        tokens = plain(u.get("text", "")).split()
        gold_tokens += tokens
        gold_roles += [u["role"]] * len(tokens)
    hyp_tokens = [plain(w[3]) or "\0" for w in hyp_words]
    roles: list[str | None] = [None] * len(hyp_words)
    for block in SequenceMatcher(None, hyp_tokens, gold_tokens, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            roles[block.a + k] = gold_roles[block.b + k]
    return roles


def role_accuracy(hyp_utterances: list[dict[str, Any]], gold_utterances: list[dict[str, Any]]) -> dict[str, float]:
    """Share of speech time given the right role.

    ``accuracy``: each recognised word's role against the truth, weighted by the word's
    duration. The truth of a word is the role of the gold word it aligns with as text (both
    sides' words in time order); a word that aligns with none (misrecognised) is judged by
    time: against the gold utterance(s) at its midpoint (either party is right where both talk
    at once), else the one it overlaps most; a word overlapping no gold utterance is not
    judged. So a word timestamp running into the other party's turn is not a role error.
    ``frame_accuracy``: the stricter share of 10 ms frames that both sides call speech and
    give the same role (timing errors count). ``coverage``: share of gold speech time the
    hypothesis labels. ``seconds``: word time judged. ``aligned``: share of that time judged
    by text alignment.
    """
    words = _hyp_words(hyp_utterances)
    gold_spans = [(u["start"], u["end"], u["role"]) for u in gold_utterances]
    right = judged = aligned = 0.0
    if gold_spans:
        g_start = np.array([s for s, _, _ in gold_spans])
        g_end = np.array([e for _, e, _ in gold_spans])
        g_role = np.array([r for _, _, r in gold_spans], dtype=object)
        for (start, end, role, _), by_text in zip(words, _aligned_roles(words, gold_utterances)):
            weight = max(end - start, FRAME_S)
            if by_text is not None:
                truth = {by_text}
                aligned += weight
            else:
                overlap = np.minimum(g_end, end) - np.maximum(g_start, start)
                best = int(np.argmax(overlap))
                if overlap[best] <= 0:
                    continue
                mid = (start + end) / 2
                truth = set(g_role[(g_start <= mid) & (mid <= g_end)]) or {g_role[best]}
            judged += weight
            right += weight * (role in truth)
    hyp_spans = [(s, e, r) for s, e, r, _ in words]
    end = max([e for _, e, _ in hyp_spans + gold_spans], default=0.0)
    n = int(np.ceil(end / FRAME_S)) + 1
    hyp, gold = _role_frames(hyp_spans, n), _role_frames(gold_spans, n)
    both = (hyp != "") & (gold != "")
    gold_total = int((gold != "").sum())
    return {
        "accuracy": right / judged if judged else float("nan"),
        "frame_accuracy": float((hyp[both] == gold[both]).mean()) if both.any() else float("nan"),
        "coverage": int(both.sum()) / gold_total if gold_total else float("nan"),
        "seconds": round(judged, 2),
        "aligned": aligned / judged if judged else float("nan"),
    }

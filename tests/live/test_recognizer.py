"""The live recogniser's view of a call (pipeline/live/recognizer.py): words confirmed after the
latest analysis show at once, beside the analysed (PII-masked) transcript, before the
unconfirmed tail; and the worker's ``confirmed`` messages carry digits masked."""

from __future__ import annotations

from pipeline.live.analysis import mask_partial
from pipeline.live.recognizer import merge_view


def _w(word: str, start: float, confirmed: bool = True) -> dict:
    return {"word": word, "start": start, "end": start + 0.3, "confirmed": confirmed}


def test_words_confirmed_since_the_analysis_show_at_once_and_in_time_order() -> None:
    analysed = {"id": "a0001", "role": "agent", "start": 0.0, "end": 1.3, "text": "Hello, [NAME] speaking.",
                "words": [_w("Hello,", 0.0), _w("[NAME]", 0.5), _w("speaking.", 1.0)]}
    analysis = {"utterances": [analysed], "items": [{"id": "opening.greeting", "answer": "yes"}],
                "sentiment": {}, "covered": {"agent": 3, "customer": 0}}
    confirmed = {"agent": [_w("Hello,", 0.0), _w("Anna", 0.5), _w("speaking.", 1.0), _w("How", 4.0), _w("can", 4.4)],
                 "customer": [_w("Hi", 2.0)]}
    partial = {"agent": [_w("I", 4.8, False), _w("help?", 5.1, False)], "customer": []}
    view = merge_view(analysis, confirmed, partial)
    assert "covered" not in view and view["items"] == analysis["items"]
    texts = [(u["role"], u["text"], {w["confirmed"] for w in u["words"]}) for u in view["utterances"]]
    assert texts == [("agent", "Hello, [NAME] speaking.", {True}),   # analysed: the name masked
                     ("customer", "Hi", {True}),                      # confirmed since, shown at once
                     ("agent", "How can", {True}),
                     ("agent", "I help?", {False})]                   # the unconfirmed tail last
    assert "Anna" not in str(view["utterances"])  # words the analysis covered come from it only
    assert analysis["covered"] == {"agent": 3, "customer": 0}  # the stored analysis is not changed


def test_an_analysis_covering_every_word_adds_nothing() -> None:
    confirmed = {"agent": [_w("Thanks.", 0.0)], "customer": []}
    analysis = {"utterances": [{"id": "a0001", "role": "agent", "start": 0.0, "end": 0.3, "text": "Thanks.",
                                "words": confirmed["agent"]}], "covered": {"agent": 1, "customer": 0}}
    assert [u["text"] for u in merge_view(analysis, confirmed, {"agent": [], "customer": []})["utterances"]] == ["Thanks."]


def test_confirmed_words_are_sent_with_digits_masked() -> None:
    words = [_w("account", 0.0), _w("4417", 0.4), _w("twelve", 0.8)]
    assert [w["word"] for w in mask_partial(words)] == ["account", "[NUMBER]", "twelve"]


def test_the_worker_ignores_audio_and_ends_for_calls_it_does_not_hold() -> None:
    """Audio after a call's finish (a leg that drains late), or a second finish, is dropped: the
    worker carries on with the other calls instead of dying on a missing call."""
    import os
    import queue

    from pipeline.live.recognizer import _serve

    inbox: queue.Queue = queue.Queue()
    outbox: queue.Queue = queue.Queue()
    silence = bytes(2 * 800)  # 0.1 s at 8 kHz, 16-bit
    for msg in [("feed", "never-opened", "agent", silence), ("open", "c1", {}), ("feed", "c1", "agent", silence),
                ("finish", "c1"), ("feed", "c1", "customer", silence), ("finish", "c1"), None]:
        inbox.put(msg)
    _serve(inbox, outbox, None, 1, os.getppid())  # returns at None instead of raising KeyError
    kinds = []
    while not outbox.empty():
        kinds.append(outbox.get()[0])
    assert kinds[0] == "ready" and kinds.count("finished") == 1 and "analysis" in kinds


def test_analysis_waits_while_recognition_is_behind_but_not_for_ever() -> None:
    """Words come first: a call's analysis is put off while a stream has audio waiting, until
    its last analysis is ANALYSIS_MAX_WAIT_S old; when recognition keeps up, the share rule
    alone decides."""
    from pipeline.live.recognizer import ANALYSIS_MAX_WAIT_S, analysis_due

    state = {"dirty": True, "next_analysis": 10.0, "analysed_at": 9.0}
    assert not analysis_due(state, 9.5, behind=False)              # its share: not yet
    assert analysis_due(state, 10.0, behind=False)
    assert not analysis_due(state, 10.0, behind=True)              # words first
    assert not analysis_due(state, 9.0 + ANALYSIS_MAX_WAIT_S - 0.1, behind=True)
    assert analysis_due(state, 9.0 + ANALYSIS_MAX_WAIT_S, behind=True)  # never starved
    assert not analysis_due({**state, "dirty": False}, 100.0, behind=False)  # nothing new to analyse

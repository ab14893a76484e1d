"""The packaged spaCy pipeline as callqa loads it: the attribute ruler replaced by the one thing
of it callqa reads (the tag of whitespace tokens) gives the same tags and entities."""

from __future__ import annotations

import importlib

import pytest

from models.ner import DEFAULT_MODEL, SPACE_TAG, UNUSED_PIPES, lighten, load_nlp, ruler_only_maps

TEXTS = [
    "Hi Anna, thanks for getting back to me so quickly about order 4471.",
    "My name is Priyanka Desai and I live at 14 Hazel Grove, Stockport.",
    "Kind regards,\nTom Becker\nCustomer Care Team",
    "Hello  John\n\nSmith here.\tThanks a lot",
    " a leading space, then Maria O'Neill from Dublin ",
    "i spoke to mark on tuesday and he said it would be fixed by friday",
    "Can you confirm the refund of £40 to my Visa card ending 8821?",
    "",
]


@pytest.fixture(scope="module")
def full():
    """The pipeline as spaCy loads it (the attribute ruler in place)."""
    return importlib.import_module(DEFAULT_MODEL).load(exclude=list(UNUSED_PIPES))


def _with_ruler(*patterns: tuple[list, dict]):
    """A small pipeline (tagger, attribute ruler with ``patterns``, NER) as a spaCy English
    pipeline is laid out: the ruler's patterns are what is judged."""
    from models.ner import _import_spacy

    nlp = _import_spacy().blank("en")
    nlp.add_pipe("tagger")
    ruler = nlp.add_pipe("attribute_ruler")
    for pattern, attrs in patterns:
        ruler.add([pattern], attrs)
    nlp.add_pipe("ner")
    return nlp


SPACE = ([{"IS_SPACE": True}], {"TAG": SPACE_TAG, "POS": "SPACE"})


def test_the_lightened_pipeline_gives_the_same_tags_and_entities(full):
    light = load_nlp()
    assert "attribute_ruler" in full.pipe_names and "attribute_ruler" not in light.pipe_names
    spaces = 0
    for a, b in zip(full.pipe(TEXTS), light.pipe(TEXTS)):
        assert [(t.text, t.tag_) for t in a] == [(t.text, t.tag_) for t in b]
        assert [(e.start_char, e.end_char, e.label_) for e in a.ents] == \
            [(e.start_char, e.end_char, e.label_) for e in b.ents]
        spaces += sum(t.tag_ == SPACE_TAG for t in b)
    assert spaces >= 4  # the whitespace tokens were there, and tagged as the ruler tags them


def test_the_packaged_ruler_only_maps(full):
    assert ruler_only_maps(full)


def test_a_ruler_that_sets_what_callqa_reads_is_kept():
    light = lighten(_with_ruler(SPACE, ([{"TAG": "NN"}], {"POS": "NOUN"}), ([{"LOWER": "be"}], {"LEMMA": "be"})))
    assert "attribute_ruler" not in light.pipe_names and light.pipe_names.index("ner") == len(light.pipe_names) - 1
    for patterns in ((SPACE, ([{"LOWER": "anna"}], {"TAG": "NN"})),  # a tag on a word
                     (SPACE, ([{"LOWER": "hi"}], {"NORM": "hello"}))):  # what the NER reads
        nlp = _with_ruler(*patterns)
        assert not ruler_only_maps(nlp) and "attribute_ruler" in lighten(nlp).pipe_names


def test_a_pipeline_without_a_ruler_is_left_as_it_is():
    nlp = _with_ruler(SPACE)
    nlp.remove_pipe("attribute_ruler")
    names = list(nlp.pipe_names)
    assert not ruler_only_maps(nlp) and lighten(nlp).pipe_names == names


@pytest.mark.parametrize("text", ["Hello  there", "one\ntwo", "\tTabbed"])
def test_whitespace_tokens_get_the_space_tag(text: str):
    doc = load_nlp()(text)
    assert [t.tag_ for t in doc if t.is_space] and all(t.tag_ == SPACE_TAG for t in doc if t.is_space)

"""Utterance boundaries from timed words: sentences, caps, merges, wordless speech (pure, no models)."""

from __future__ import annotations

import pytest

from pipelines.options import SegmentOptions
from pipelines.segment import cap, merge_short, sentences, utterances
from pipelines.words import Word


def words(spec: str, start: float = 0.0, step: float = 0.4, gap: float = 0.0) -> list[Word]:
    """Words of `spec` spoken back to back, `step` seconds each, `gap` seconds between them."""
    out, t = [], start
    for token in spec.split():
        out.append(Word(t, t + step, " " + token, 0.9))
        t += step + gap
    return out


def test_splits_at_sentence_punctuation_and_long_pauses() -> None:
    timed = words("I loved it. Really great! No", step=0.4) + words("punctuation here", start=5.0)
    groups = sentences(timed, pause_seconds=0.8)
    assert ["".join(w.text for w in g).strip() for g in groups] == [
        "I loved it.",
        "Really great!",
        "No",
        "punctuation here",
    ]


def test_quotes_after_the_full_stop_still_end_a_sentence() -> None:
    groups = sentences(words('He said "stop." Then left'), pause_seconds=5)
    assert len(groups) == 2


def test_long_sentences_are_split_at_the_longest_pause() -> None:
    first = words("one two three four five six", step=0.5)
    second = words("seven eight nine ten eleven twelve", start=first[-1].end + 0.6, step=0.5)
    pieces = cap(first + second, max_seconds=4.0)
    assert [len(p) for p in pieces] == [6, 6]
    assert all(p[-1].end - p[0].start <= 4.0 for p in pieces)


def test_splitting_recurses_until_every_piece_fits() -> None:
    pieces = cap(words(" ".join(["word"] * 40), step=0.5), max_seconds=3.0)
    assert sum(len(p) for p in pieces) == 40
    assert all(p[-1].end - p[0].start <= 3.0 for p in pieces)


def test_short_fragments_join_the_nearer_neighbour() -> None:
    a = words("this is the first sentence.")
    yes = words("Yes.", start=a[-1].end + 0.2)
    b = words("and here is another sentence.", start=yes[-1].end + 1.5)
    merged = merge_short([a, yes, b], min_seconds=1.0, max_seconds=15.0)
    assert [len(g) for g in merged] == [6, 5]


def test_merging_never_exceeds_the_maximum() -> None:
    long = words(" ".join(["w"] * 10), step=0.5)  # 5 s
    tiny = words("Yes.", start=long[-1].end + 0.1)
    assert len(merge_short([long, tiny], min_seconds=1.0, max_seconds=5.2)) == 2


def test_utterances_carry_text_times_and_mean_word_probability() -> None:
    timed = [
        Word(0.5, 1.0, " Hello", 0.8),
        Word(1.0, 1.6, " world.", 0.6),
        Word(3.0, 3.5, " Bye", 1.0),
        Word(3.5, 4.4, " now.", 1.0),
    ]
    found = utterances(timed, speech=[(0.3, 1.8), (2.8, 4.6)])
    assert [(u.start, u.end, u.text) for u in found] == [(0.5, 1.6, "Hello world."), (3.0, 4.4, "Bye now.")]
    assert found[0].asr_confidence == pytest.approx(0.7)


def test_speech_without_words_becomes_a_wordless_utterance() -> None:
    timed = words("A spoken sentence here.", start=0.0)
    found = utterances(timed, speech=[(0.0, 1.7), (4.0, 6.5), (8.0, 8.3)], options=SegmentOptions(min_seconds=1.0))
    assert [(u.text, u.start, u.end, u.asr_confidence) for u in found] == [
        ("A spoken sentence here.", 0.0, pytest.approx(1.6), pytest.approx(0.9)),
        ("", 4.0, 6.5, None),  # the 0.3 s blip at 8 s is dropped
    ]


def test_long_wordless_speech_is_cut_into_equal_pieces() -> None:
    found = utterances([], speech=[(0.0, 40.0)], options=SegmentOptions(max_seconds=15.0))
    third = pytest.approx(40 / 3)
    assert [(u.start, u.end) for u in found] == [
        (0.0, third),
        (third, pytest.approx(80 / 3)),
        (pytest.approx(80 / 3), 40.0),
    ]


def test_nothing_in_nothing_out() -> None:
    assert utterances([], speech=[]) == []

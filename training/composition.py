"""Composed training rows: real voices and real words, put together under one written rule.

The fused head can only learn to weigh what each modality carries from rows
in which either one carries it. No corpus here has informative words and an
informative voice in the same clip, so some rows are composed from real
parts, each part labelled by its own corpus:

* **voiced transcript**: an informative transcript without media (MOSI,
  MOSEI) heard in a *neutral* voice (label 0) lent by a `lends_voices`
  corpus (RAVDESS's neutral training clips). Targets: fused and text the
  transcript's label, audio the voice's own (0). A share of them
  (`composition.other_speakers`) hear the voice as another speaker's, its
  pitch and rate moved, still neutral.
* **words over a voice**: a share of the voiced transcripts
  (`composition.emotional`) is lent any of the lender's voices, emotional
  ones included. Targets as above: fused and text the transcript's label,
  audio the voice's own. Where words carry sentiment they decide the fused
  score (on MOSI text alone reaches 84 % Non0 Acc2, speech alone far less);
  the voice decides where the words say nothing (RAVDESS's own rows and
  the wordless ones). Without such rows a voice the audio head hears as
  sad or angry drags the fused score of any sentence with it.
* **wordless voice**: a voice-labelled row (RAVDESS, `labels=audio`) with
  its words left out. Targets: fused and audio the voice's label, text none.
  It trains the audio-only path that annotation takes for languages the
  text encoder does not read.

The rule, in one line: each head's target is its own part's label, and the
fused target is the words' label where the row has informative words, else
the voice's. Only training splits are
composed; validation and test rows stay as their corpora give them.
The draw depends on the run's seed alone, so a resumed run composes the
same rows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from .config import Composition
from .examples import Example


def neutral_voices(examples: Sequence[Example]) -> list[Example]:
    """The rows whose voice says nothing: decoded audio labelled exactly 0."""
    return [e for e in examples if e.audio is not None and e.clip.label_audio == 0.0]


def voiced(transcript: Example, voice: Example, speaker: int | None = None) -> Example:
    """`transcript` heard in `voice`'s audio (as another `speaker` would say it); its audio head then learns the
    voice's label."""
    return replace(transcript, audio=voice.audio, voice=voice.clip, speaker=speaker)


def wordless(example: Example) -> Example:
    """`example` with its words left out."""
    return replace(example, words=False)


def compose_training(
    splits: Sequence[Sequence[Example]], lenders: Sequence[bool], composition: Composition, seed: int
) -> list[list[Example]]:
    """Each corpus's training rows, some replaced by composed ones; every corpus keeps its size and order.

    `lenders[k]` says whether corpus k lends its neutral voices. A
    transcript row (no audio, its label about the text) is voiced with
    probability `composition.voiced`; a voice-labelled row loses its words
    with probability `composition.wordless`.
    """
    rng = random.Random(seed)
    voices = [v for rows, lends in zip(splits, lenders) if lends for v in neutral_voices(rows)]
    every_voice = [v for rows, lends in zip(splits, lenders) if lends for v in rows if v.audio is not None]
    composed = []
    for rows in splits:
        out = []
        for example in rows:
            draw = rng.random()
            if example.audio is None and "text" in example.labels and voices and draw < composition.voiced:
                emotional = composition.emotional and rng.random() < composition.emotional
                voice = rng.choice(every_voice if emotional else voices)
                changed = composition.other_speakers and rng.random() < composition.other_speakers
                out.append(voiced(example, voice, rng.getrandbits(32) if changed else None))
            elif example.audio is not None and example.labels == ("audio",) and draw < composition.wordless:
                out.append(wordless(example))
            else:
                out.append(example)
        composed.append(out)
    return composed

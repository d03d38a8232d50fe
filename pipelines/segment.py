"""Stage 3b: cut a transcript into utterances, the unit MMML scores.

MMML is trained on sentence-like clips (MOSI clips run 2-10 s; the model
reads at most its `max_seconds` of audio), so utterances follow sentences:

1. words are grouped into sentences at sentence-final punctuation and at
   pauses of at least `pause_seconds` (ASR does not always punctuate);
2. a sentence longer than `max_seconds` is split at its most natural word
   boundary (longest pause, clause punctuation breaking ties), recursively;
3. a fragment shorter than `min_seconds` joins the neighbour it is closer to
   in time, as long as the result stays within `max_seconds`;
4. speech that VAD heard but ASR found no words in (laughter, music, a
   language the ASR model lacks) becomes a wordless utterance, so it still
   gets an audio score.

Everything here is pure: words and speech regions in, utterances out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .options import SAMPLE_RATE, SegmentOptions
from .words import Word

SENTENCE_END = (".", "!", "?", "。", "！", "？", "…", "؟", "।")
CLAUSE_END = (",", ";", ":", "，", "；", "：", "、", "—")
_TRAILING_QUOTES = "\"'”’)]}»"
_CLAUSE_BONUS_S = 0.3  # a comma counts as much as a 0.3 s pause when choosing where to split


@dataclass(frozen=True)
class Utterance:
    start: float
    end: float
    text: str  # "" when ASR heard no words
    asr_confidence: float | None  # mean Whisper word probability; None without words

    @property
    def duration(self) -> float:
        return self.end - self.start


def utterances(
    words: Sequence[Word], speech: Sequence[tuple[float, float]], options: SegmentOptions = SegmentOptions()
) -> list[Utterance]:
    """Sentence-like utterances from timed words, plus wordless ones from uncovered speech regions."""
    groups = [piece for s in sentences(words, options.pause_seconds) for piece in cap(s, options.max_seconds)]
    groups = merge_short(groups, options.min_seconds, options.max_seconds)
    spoken = [_from_words(group) for group in groups]
    wordless = wordless_utterances(speech, [(u.start, u.end) for u in spoken], options)
    return sorted(spoken + wordless, key=lambda u: u.start)


def sentences(words: Sequence[Word], pause_seconds: float) -> list[list[Word]]:
    """Split after sentence-final punctuation and at long pauses."""
    groups: list[list[Word]] = []
    for word in words:
        if groups and not _ends_sentence(groups[-1][-1]) and word.start - groups[-1][-1].end < pause_seconds:
            groups[-1].append(word)
        else:
            groups.append([word])
    return groups


def cap(group: list[Word], max_seconds: float) -> list[list[Word]]:
    """Split `group` at its best boundaries until every piece lasts at most `max_seconds`."""
    if len(group) < 2 or _span(group) <= max_seconds:
        return [group]
    centre = (group[0].start + group[-1].end) / 2

    def quality(i: int) -> tuple[float, float]:  # boundary between word i-1 and word i
        pause = group[i].start - group[i - 1].end
        bonus = _CLAUSE_BONUS_S if _stripped(group[i - 1].text).endswith(CLAUSE_END) else 0.0
        return pause + bonus, -abs(group[i].start - centre)

    best = max(range(1, len(group)), key=quality)
    return cap(group[:best], max_seconds) + cap(group[best:], max_seconds)


def merge_short(groups: list[list[Word]], min_seconds: float, max_seconds: float) -> list[list[Word]]:
    """Join fragments shorter than `min_seconds` to their nearer neighbour while the result fits."""
    groups = [list(g) for g in groups]
    i = 0
    while i < len(groups):
        if _span(groups[i]) >= min_seconds:
            i += 1
            continue
        target = _nearer_neighbour(groups, i, max_seconds)
        if target is None:
            i += 1
            continue
        low, high = sorted((i, target))
        groups[low : high + 1] = [groups[low] + groups[high]]
        i = low  # the merged group may still be short
    return groups


def wordless_utterances(
    speech: Sequence[tuple[float, float]], spoken: Sequence[tuple[float, float]], options: SegmentOptions
) -> list[Utterance]:
    """Speech regions no spoken utterance overlaps, joined across short gaps, dropped if tiny, capped."""
    free = [(s, e) for s, e in speech if not any(s < b and a < e for a, b in spoken)]
    joined: list[tuple[float, float]] = []
    for start, end in free:
        if joined and start - joined[-1][1] < options.pause_seconds:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    pieces = []
    for start, end in joined:
        if end - start < options.min_seconds:
            continue
        count = int(-(-(end - start) // options.max_seconds))  # ceil
        step = (end - start) / count
        pieces += [Utterance(start + k * step, start + (k + 1) * step, "", None) for k in range(count)]
    return pieces


def utterance_audio(waveform: np.ndarray, start: float, end: float) -> np.ndarray:
    """The samples between `start` and `end` seconds (a view, not a copy)."""
    return waveform[max(0, int(round(start * SAMPLE_RATE))) : int(round(end * SAMPLE_RATE))]


def _nearer_neighbour(groups: list[list[Word]], i: int, max_seconds: float) -> int | None:
    candidates = []
    if i > 0:
        candidates.append((groups[i][0].start - groups[i - 1][-1].end, i - 1))
    if i + 1 < len(groups):
        candidates.append((groups[i + 1][0].start - groups[i][-1].end, i + 1))
    for _, j in sorted(candidates):
        low, high = sorted((i, j))
        if groups[high][-1].end - groups[low][0].start <= max_seconds:
            return j
    return None


def _from_words(group: Sequence[Word]) -> Utterance:
    text = "".join(w.text for w in group).strip()
    confidence = sum(w.probability for w in group) / len(group)
    return Utterance(group[0].start, group[-1].end, text, confidence)


def _span(group: Sequence[Word]) -> float:
    return group[-1].end - group[0].start


def _stripped(text: str) -> str:
    return text.strip().rstrip(_TRAILING_QUOTES)


def _ends_sentence(word: Word) -> bool:
    return _stripped(word.text).endswith(SENTENCE_END)

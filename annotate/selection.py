"""What to label next: `mmml-label export --select N` picks the utterances worth a person's minute.

A corpus run yields far more utterances than a team can label. Each strategy ranks them by what a
label would teach the model, and every choice is reproducible from its seed and saved beside the export
(`selection.json`):

* `disagreement`: where the text and audio heads disagree most (|score_text - score_audio|): the words
  say one thing and the voice another, the case the fused head is least sure how to weigh;
* `uncertainty`: where models trained with other seeds disagree most about the fused score (the standard
  deviation over this annotation and `--ensemble` re-annotations of the same utterances, e.g.
  `mmml-annotate --transcripts scores.parquet --model runs/x/seed-2222/best`): a seed ensemble's spread
  is the usual cheap estimate of a model's uncertainty;
* `spread`: an even share of each half-point fused-score bin from -3 to +3, and within a bin the videos
  with the fewest picks so far: a labelled sample that covers the corpus rather than its commonest case;
* `random`: the baseline every other strategy is measured against (`training/RESULTS.md`).

Ties are broken by the seeded random order, so the same inputs and seed give the same choice.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

STRATEGIES: tuple[str, ...] = ("disagreement", "uncertainty", "spread", "random")
Key = tuple[str, int]  # (video_id, utterance)
SPREAD_BINS = np.arange(-3.0, 3.01, 0.5)


class SelectionError(ValueError):
    """A selection that cannot be made as asked (an unknown strategy, an ensemble that misses utterances)."""


@dataclass(frozen=True)
class Selection:
    strategy: str
    n: int
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SelectionError(f"unknown selection strategy {self.strategy!r} (use {', '.join(STRATEGIES)})")
        if self.n < 1:
            raise SelectionError(f"--select must be at least 1, got {self.n}")


def key(utterance: Mapping[str, Any]) -> Key:
    return (utterance["video_id"], int(utterance["utterance"]))


def select(
    utterances: Sequence[Mapping[str, Any]],
    selection: Selection,
    ensemble: Sequence[Mapping[Key, float | None]] = (),
) -> list[tuple[int, float]]:
    """(index into `utterances`, the strategy's score) of the chosen ones, most worth labelling first."""
    order = list(range(len(utterances)))
    random.Random(selection.seed).shuffle(order)  # the tie-break, and the whole of `random`
    if selection.strategy == "random":
        return [(i, 0.0) for i in order[: selection.n]]
    if selection.strategy == "spread":
        return spread(utterances, order, selection.n)
    if selection.strategy == "disagreement":
        scores = [head_disagreement(u) for u in utterances]
    else:
        scores = seed_spread(utterances, ensemble)
    ranked = sorted(order, key=lambda i: -scores[i])  # stable: equal scores keep the seeded order
    return [(i, scores[i]) for i in ranked[: selection.n]]


def head_disagreement(utterance: Mapping[str, Any]) -> float:
    """|text head - audio head|; 0 where either head has no score (no words, or no voice)."""
    text, audio = utterance.get("score_text"), utterance.get("score_audio")
    return 0.0 if text is None or audio is None else abs(float(text) - float(audio))


def seed_spread(utterances: Sequence[Mapping[str, Any]], ensemble: Sequence[Mapping[Key, float | None]]) -> list[float]:
    """Sample standard deviation of each utterance's fused score over this annotation and the ensemble's."""
    if not ensemble:
        raise SelectionError("--strategy uncertainty needs at least one --ensemble annotation of the same utterances")
    for n, other in enumerate(ensemble, 1):
        missing = [k for k in map(key, utterances) if k not in other]
        if missing:
            video, utterance = missing[0]
            raise SelectionError(
                f"--ensemble annotation {n} lacks {len(missing)} of the utterances (first: {video} #{utterance}): "
                "re-annotate with --transcripts from this annotation"
            )
    spreads = []
    for u in utterances:
        fused = [u["score_fused"], *(other[key(u)] for other in ensemble)]
        values = np.array([v for v in fused if v is not None], dtype=np.float64)
        spreads.append(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
    return spreads


def spread(utterances: Sequence[Mapping[str, Any]], order: Sequence[int], n: int) -> list[tuple[int, float]]:
    """Round-robin over fused-score bins; within a bin, the video picked least so far (then the seeded order)."""
    bins: dict[int, list[int]] = {}
    for i in order:
        fused = utterances[i]["score_fused"]
        if fused is not None:
            bins.setdefault(int(np.digitize(float(fused), SPREAD_BINS[1:-1])), []).append(i)
    picks: dict[str, int] = {}
    chosen: list[tuple[int, float]] = []
    while len(chosen) < n and any(bins.values()):
        for b in sorted(bins):
            if not bins[b] or len(chosen) == n:
                continue
            i = min(bins[b], key=lambda j: picks.get(utterances[j]["video_id"], 0))  # first of the least picked
            bins[b].remove(i)
            video = utterances[i]["video_id"]
            picks[video] = picks.get(video, 0) + 1
            chosen.append((i, float(SPREAD_BINS[b])))  # the bin's lower edge
    return chosen

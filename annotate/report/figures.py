"""The figures of one annotation: corpus summary, per-head spread, agreement, videos, extremes.

Pure functions from Arrow tables to plain dataclasses, columnar throughout:
counts and means by `pyarrow.compute` and `Table.group_by`, orderings by
`sort_indices`, correlations by numpy on whole columns.

Conventions, the same wherever a figure appears:
* a head's standard deviation is the sample one (n - 1);
* sign agreement counts two scores as agreeing when both are >= 0 or both
  < 0 (MOSI's "has-0" binary split);
* Pearson's r is undefined (NaN, shown "n/a") for fewer than two pairs or a
  constant column (`mmml.metrics.pearson`);
* orderings break ties by video path, then utterance, so a page is the same
  on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmml.metrics import pearson
from pipelines.write import unread_words

from .columns import grouped, paired, scores
from .runs import HEADS, Run, score_column

VideoOrder = Literal["length", "name", "positive", "negative", "disagreement"]
VIDEO_ORDERS: tuple[VideoOrder, ...] = ("length", "name", "positive", "negative", "disagreement")
LOW_CONFIDENCE = 0.5  # mean Whisper word probability below which a transcript is called unsure
HISTOGRAM_BINS = 48


@dataclass(frozen=True)
class Failure:
    stage: str
    error_type: str
    videos: int


@dataclass(frozen=True)
class Corpus:
    videos: int  # videos with at least one utterance (copies under other paths once)
    copies: int  # further paths holding one of these videos
    utterances: int
    hours: float  # of utterances (the speech that was scored), not of whole videos
    without_words: int  # utterances ASR heard no words in (no text score)
    languages: list[tuple[str, int]]  # utterances per language, most first
    unread: int | None  # utterances whose words the text encoder does not read; None: the run did not record it
    failed_videos: int | None  # None when there is no errors file
    failures: list[Failure]  # by stage and error type, most first
    model_ids: list[str]
    asr_models: list[str]


@dataclass(frozen=True)
class HeadSpread:
    head: str
    n: int
    mean: float
    std: float
    min: float
    max: float
    counts: np.ndarray  # histogram over `edges`
    edges: np.ndarray


@dataclass(frozen=True)
class Agreement:
    """Two score columns over the utterances that have both."""

    n: int
    pearson: float
    sign: float  # share of pairs on the same side of zero


@dataclass(frozen=True)
class VideoSummary:
    video_id: str
    video_path: str
    utterances: int
    seconds: float
    mean_fused: float
    rows: pa.Table  # its utterances, in time order


def corpus(run: Run) -> Corpus:
    table = run.utterances
    return Corpus(
        videos=pc.count_distinct(table["video_id"]).as_py(),
        copies=run.copies,
        utterances=table.num_rows,
        hours=(pc.sum(table["seconds"]).as_py() or 0.0) / 3600,
        without_words=pc.sum(pc.equal(table["text"], "")).as_py() or 0,
        languages=_counts(table, ["language"]),
        unread=unread_words(table, run.metadata["text_languages"]) if "text_languages" in run.metadata else None,
        failed_videos=None if run.errors is None else pc.count_distinct(run.errors["video_path"]).as_py(),
        failures=[Failure(s, e, n) for (s, e), n in _counts(run.errors, ["stage", "error_type"], "video_path")]
        if run.errors is not None
        else [],
        model_ids=sorted(pc.unique(table["model_id"]).to_pylist()),
        asr_models=sorted(pc.unique(table["asr_model"]).to_pylist()),
    )


def _counts(table: pa.Table, keys: list[str], distinct: str | None = None) -> list:
    """Rows (or distinct values of `distinct`) per key, most first, then by key."""
    counted = grouped(table, keys, {"n": (distinct, "count_distinct") if distinct else (keys[0], "count")})
    pairs = [(row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys), row["n"]) for row in counted.to_pylist()]
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))


def head_spreads(table: pa.Table) -> list[HeadSpread]:
    """Each head the model has (a head that is null everywhere is not in the model's variant)."""
    spreads = []
    for head in HEADS:
        values = scores(table, score_column(head))
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        low, high = min(-3.0, values.min()), max(3.0, values.max())
        counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(low, high))
        std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
        spreads.append(
            HeadSpread(
                head, values.size, float(values.mean()), std, float(values.min()), float(values.max()), counts, edges
            )
        )
    return spreads


def agreement(x: np.ndarray, y: np.ndarray) -> Agreement:
    x, y = paired(x, y)
    sign = float(np.mean((x >= 0) == (y >= 0))) if x.size else float("nan")
    return Agreement(int(x.size), pearson(x, y), sign)


def low_confidence(table: pa.Table) -> int:
    return pc.sum(pc.less(table["asr_confidence"], LOW_CONFIDENCE)).as_py() or 0


def extremes(table: pa.Table, column: str, k: int, descending: bool) -> pa.Table:
    """The `k` utterances furthest above zero in `column` (or below it): a "most positive" list holds no
    negative score however short the corpus, and nulls are never in it."""
    beyond = pc.greater if descending else pc.less
    table = table.filter(beyond(table[column], 0))
    return _ordered(table, [(column, "descending" if descending else "ascending")]).slice(0, k)


def _ordered(table: pa.Table, keys: Sequence[tuple[str, str]]) -> pa.Table:
    ties = [("video_path", "ascending"), ("utterance", "ascending")]
    return table.take(pc.sort_indices(table, sort_keys=[*keys, *ties]))


def videos(table: pa.Table, order: VideoOrder, n: int) -> list[VideoSummary]:
    """The first `n` videos by `order`.

    length: most seconds of speech first; name: by path; positive / negative: by mean fused score;
    disagreement: by mean |text - audio|.
    """
    summary = grouped(
        table,
        "video_path",
        {
            "video_id": ("video_id", "min"),
            "utterances": ("utterance", "count"),
            "seconds": ("seconds", "sum"),
            "mean_fused": ("score_fused", "mean"),
            "mean_disagreement": ("disagreement", "mean"),
        },
    )
    keys = {
        "length": [("seconds", "descending")],
        "name": [],
        "positive": [("mean_fused", "descending")],
        "negative": [("mean_fused", "ascending")],
        "disagreement": [("mean_disagreement", "descending")],
    }[order]
    summary = summary.take(pc.sort_indices(summary, sort_keys=[*keys, ("video_path", "ascending")])).slice(0, n)
    chosen = table.filter(pc.is_in(table["video_path"], summary["video_path"]))
    chosen = chosen.take(pc.sort_indices(chosen, sort_keys=[("video_path", "ascending"), ("utterance", "ascending")]))
    return [
        VideoSummary(
            row["video_id"],
            row["video_path"],
            row["utterances"],
            row["seconds"],
            _nan_for_null(row["mean_fused"]),
            chosen.filter(pc.equal(chosen["video_path"], row["video_path"])),
        )
        for row in summary.to_pylist()
    ]


def _nan_for_null(value: float | None) -> float:
    return float("nan") if value is None else float(value)

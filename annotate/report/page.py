"""The report as one self-contained HTML page: figures into a Jinja template, pictures inlined.

Transcripts, paths and error messages come from the corpus and are escaped
(autoescape on). Every number goes through `figure()`, which writes it as a
span naming the figure and carrying its unrounded value: the page can be
checked against the data it claims to show, and a reader can copy a value
at full precision.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc
from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from . import plots
from .compare import Comparison, compare
from .figures import (
    LOW_CONFIDENCE,
    VideoOrder,
    VideoSummary,
    agreement,
    corpus,
    extremes,
    head_spreads,
    low_confidence,
    scores,
    videos,
)
from .runs import HEADS, Run, score_column

FORMATS = {
    "count": "{:,.0f}",
    "score": "{:+.3f}",
    "spread": "{:.3f}",
    "r": "{:.3f}",
    "share": "{:.1%}",
    "seconds": "{:.1f}",
    "hours": "{:.2f}",
    "confidence": "{:.2f}",
}
MISSING = "n/a"
FAILED_LISTED = 50
ORDER_WORDS = {
    "length": "longest speech first",
    "name": "by path",
    "positive": "most positive mean fused score first",
    "negative": "most negative mean fused score first",
    "disagreement": "largest mean gap between text and audio first",
}


@dataclass(frozen=True)
class ReportOptions:
    videos: int = 10  # videos shown one by one
    order: VideoOrder = "length"
    top: int = 10  # rows of each "most ..." list


def shown(value: float | int | None, kind: str) -> str:
    """A figure as the page prints it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return FORMATS[kind].format(value)


def figure(value: float | int | None, key: str, kind: str) -> Markup:
    """`n(...)` in the template: the printed figure, with its name and unrounded value for checking and copying."""
    exact = "nan" if value is None else repr(value.item() if isinstance(value, np.generic) else value)
    return Markup('<span class="figure" data-figure="{}" data-value="{}">{}</span>').format(
        key, exact, shown(value, kind)
    )


_ENVIRONMENT = Environment(loader=PackageLoader("annotate.report"), autoescape=True, keep_trailing_newline=True)
_ENVIRONMENT.globals["n"] = figure


def render(run: Run, options: ReportOptions, other: Run | None = None) -> str:
    return _ENVIRONMENT.get_template("report.html").render(_context(run, options, other))


def _context(run: Run, options: ReportOptions, other: Run | None) -> dict[str, Any]:
    table = run.utterances
    fused, text, audio = (scores(table, score_column(h)) for h in HEADS)
    confidence = scores(table, "asr_confidence")
    spreads = head_spreads(table)
    heads = [s.head for s in spreads]
    text_audio = agreement(text, audio)
    confidence_agreement = agreement(confidence, fused)
    chosen = videos(table, options.order, options.videos)
    comparison = compare(run, other, options.top) if other else None
    return {
        "run": run,
        "heads": heads,
        "corpus": corpus(run),
        "failed": _first_failed(run, FAILED_LISTED),
        "failed_more": max(0, (run.errors.num_rows if run.errors is not None else 0) - FAILED_LISTED),
        "configuration": json.dumps(run.metadata, indent=2, sort_keys=True),
        "spreads": spreads,
        "text_audio": text_audio,
        "confidence": confidence_agreement,
        "unsure": low_confidence(table),
        "threshold": LOW_CONFIDENCE,
        "extremes": [
            ("positive", "Most positive (fused)", extremes(table, "score_fused", options.top, True).to_pylist()),
            ("negative", "Most negative (fused)", extremes(table, "score_fused", options.top, False).to_pylist()),
            (
                "disagreeing",
                "Text and audio disagree most",
                extremes(table, "disagreement", options.top, True).to_pylist(),
            ),
        ],
        "video_order": ORDER_WORDS[options.order],
        "videos": [_video_view(v, heads) for v in chosen],
        "comparison": comparison,
        "other": other,
        "other_corpus": corpus(other) if other else None,
        "unmatched": [
            ("only_here", "utterances only in this run", comparison.first_only_here),
            ("only_other", "utterances only in the other run", comparison.first_only_other),
        ]
        if comparison
        else [],
        "plots": {
            "histograms": plots.histograms(spreads) if spreads else None,
            "text_audio": plots.density(text, audio, "text head", "audio head") if text_audio.n else None,
            "confidence": plots.density(confidence, fused, "ASR confidence", "fused score")
            if confidence_agreement.n
            else None,
            "compare": _comparison_plot(comparison)
            if comparison and any(h.head == "fused" for h in comparison.heads)
            else None,
        },
    }


def _first_failed(run: Run, n: int) -> list[dict[str, Any]]:
    if run.errors is None:
        return []
    order = pc.sort_indices(run.errors, sort_keys=[("video_path", "ascending"), ("stage", "ascending")])
    return run.errors.take(order[:n]).to_pylist()


def _video_view(video: VideoSummary, heads: list[str]) -> dict[str, Any]:
    rows = video.rows
    series = {h: scores(rows, score_column(h)) for h in heads}
    plot = plots.timeline(scores(rows, "start"), scores(rows, "end"), series) if heads else None
    return {**vars(video), "rows": rows.to_pylist(), "plot": plot}


def _comparison_plot(comparison: Comparison) -> str:
    matched = comparison.matched
    return plots.density(
        scores(matched, "other_fused"), scores(matched, "score_fused"), "other run, fused", "this run, fused", True
    )

"""The report's pictures, as PNG data URIs embedded in the page (it must open with no network).

matplotlib's object API (`Figure`, no pyplot state) with the Agg canvas.
Two-score plots of many utterances are density plots (hexagonal bins, log
counts): a million points would be a blot, while a hexbin is one pass and
shows where the mass is. A few thousand are drawn as points.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from .figures import HeadSpread, paired

COLOURS = {"fused": "#1f4e99", "text": "#c0392b", "audio": "#27864a"}
_DPI = 100
_MOST_POINTS = 5000  # drawn one by one; more become a density


def _data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def histograms(spreads: Sequence[HeadSpread]) -> str:
    figure = Figure(figsize=(3.2 * len(spreads), 2.6))
    for i, spread in enumerate(spreads):
        axes = figure.add_subplot(1, len(spreads), i + 1)
        axes.stairs(spread.counts, spread.edges, fill=True, color=COLOURS[spread.head], alpha=0.8)
        axes.set_title(f"{spread.head} head")
        axes.set_xlabel("score")
        axes.axvline(0, color="grey", linewidth=0.5)
        if i == 0:
            axes.set_ylabel("utterances")
    figure.tight_layout()
    return _data_uri(figure)


def density(x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str, diagonal: bool = False) -> str:
    """Where the pairs (x, y) lie; pairs with a missing value are left out."""
    x, y = paired(x, y)
    figure = Figure(figsize=(4.2, 3.6))
    axes = figure.add_subplot()
    if x.size > _MOST_POINTS:
        cells = axes.hexbin(x, y, gridsize=40, bins="log", mincnt=1, cmap="viridis")
        figure.colorbar(cells, ax=axes, label="utterances")
    else:
        axes.scatter(x, y, s=16, alpha=0.7, color=COLOURS["fused"], linewidths=0)
    if diagonal:
        low, high = (min(x.min(), y.min()), max(x.max(), y.max())) if x.size else (-3, 3)
        axes.plot([low, high], [low, high], color="grey", linewidth=0.7)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    figure.tight_layout()
    return _data_uri(figure)


def timeline(start: np.ndarray, end: np.ndarray, heads: dict[str, np.ndarray]) -> str:
    """Sentiment through one video: each head's score held over its utterance's time span."""
    figure = Figure(figsize=(9, 2.2))
    axes = figure.add_subplot()
    for head, values in heads.items():
        known = np.isfinite(values)
        width = 2.2 if head == "fused" else 1.0
        axes.hlines(values[known], start[known], end[known], color=COLOURS[head], linewidth=width, label=head)
        middle = (start[known] + end[known]) / 2
        axes.plot(middle, values[known], color=COLOURS[head], linewidth=width * 0.4, alpha=0.6)
    axes.axhline(0, color="grey", linewidth=0.5)
    known = np.concatenate([v[np.isfinite(v)] for v in heads.values()])
    bound = max(3.2, float(np.abs(known).max()) * 1.05) if known.size else 3.2  # scores are not clipped to +-3
    axes.set_ylim(-bound, bound)
    axes.set_xlabel("seconds")
    axes.set_ylabel("score")
    axes.legend(loc="lower left", bbox_to_anchor=(0, 1), fontsize="small", ncols=len(heads), frameon=False)
    figure.tight_layout()
    return _data_uri(figure)

"""Results across seeds: mean ± standard deviation, as JSON and as the paper prints them.

The paper's ablation tables (3–6) show accuracies and F1 in percent and MAE
and Corr multiplied by 100, one row per configuration; `markdown_table`
lays results out the same way so they can be read side by side.
The standard deviation is the sample one (ddof=1); a single seed has 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmml.atomic import write_text_atomic

Metrics = Mapping[str, float]
Summary = dict[str, dict[str, float]]  # metric -> {"mean": ..., "std": ...}

COLUMNS = {
    "mosi": ("Has0_acc_2", "Has0_F1", "Non0_acc_2", "Non0_F1", "Acc5", "Acc7", "MAE", "Corr"),
    "sims": ("Acc2", "Acc3", "Acc5", "F1", "MAE", "Corr"),
}
HEADERS = {
    "Has0_acc_2": "Has0 Acc2",
    "Has0_F1": "Has0 F1",
    "Non0_acc_2": "Non0 Acc2",
    "Non0_F1": "Non0 F1",
    "Acc2": "Acc2",
    "Acc3": "Acc3",
    "Acc5": "Acc5",
    "Acc7": "Acc7",
    "F1": "F1",
    "MAE": "MAE×100",
    "Corr": "Corr×100",
}


def aggregate(runs: Sequence[Metrics]) -> Summary:
    """Mean and sample standard deviation of each metric over runs (seeds)."""
    if not runs:
        raise ValueError("no runs to aggregate")
    summary: Summary = {}
    for name in runs[0]:
        values = np.array([run[name] for run in runs], dtype=np.float64)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        summary[name] = {"mean": round(float(np.mean(values)), 4), "std": round(std, 4)}
    return summary


def metric_set(dataset: str) -> str:
    """Which metrics a dataset is judged by: 'sims' ([-1, 1] labels) or 'mosi' (every other dataset)."""
    return "sims" if dataset.lower() == "sims" else "mosi"


def metric_columns(dataset: str) -> tuple[str, ...]:
    return COLUMNS[metric_set(dataset)]


def format_cell(cell: Mapping[str, float]) -> str:
    """'mean ± std' scaled by 100, two decimals, as the paper prints every metric; a lone run has no '± std'."""
    mean = cell["mean"]
    if math.isnan(mean):
        return "n/a"
    return f"{100 * mean:.2f}" + (f" ± {100 * cell['std']:.2f}" if "std" in cell else "")


def markdown_table(
    rows: Mapping[str, Summary],
    dataset: str,
    caption: str | None = None,
    columns: Sequence[str] | None = None,
    row_header: str = "",
) -> str:
    """One row per configuration, one column per metric (every metric of the dataset by default), paper style."""
    columns = columns or metric_columns(dataset)
    lines = [
        "| " + (f"{row_header} " if row_header else "") + "| " + " | ".join(HEADERS[c] for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name, summary in rows.items():
        lines.append(f"| {name} | " + " | ".join(format_cell(summary[c]) for c in columns) + " |")
    if caption:
        lines += ["", caption]
    return "\n".join(lines) + "\n"


def spread(scores: np.ndarray, near: float = 0.05, edges: Sequence[float] = tuple(np.arange(-3.0, 3.01, 0.5))) -> dict:
    """How graded a model's scores are: range, share piled within `near` of either end, a histogram.

    A model that has learned little answers with nearly the same score for
    everything; this makes that visible next to the metrics.
    """
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    if not scores.size:
        raise ValueError("no finite score to describe")
    low, high = float(scores.min()), float(scores.max())
    counts, _ = np.histogram(np.clip(scores, edges[0], edges[-1]), bins=np.asarray(edges))
    return {
        "min": round(low, 4),
        "max": round(high, 4),
        "std": round(float(scores.std()), 4),
        "share_near_min": round(float(np.mean(scores <= low + near)), 4),
        "share_near_max": round(float(np.mean(scores >= high - near)), 4),
        "histogram": {f"[{a:+.1f}, {b:+.1f})": int(n) for a, b, n in zip(edges[:-1], edges[1:], counts)},
    }


def write_json(data: Any, path: Path) -> None:
    """JSON written atomically, NaN kept as `NaN` (Python's json reads it back)."""
    write_text_atomic(json.dumps(data, indent=2, sort_keys=True) + "\n", path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())

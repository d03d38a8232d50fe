"""Two annotations of one corpus side by side: what retraining (or a new ASR) changed.

Utterances are matched by (video_id, start, end), the times rounded to the
millisecond: a re-annotation with `--transcripts` keeps every utterance's
times exactly, so all of them match; two independent transcriptions cut
utterances differently, and what has no partner is counted and listed, not
guessed at. (Rounding, not a tolerance: times that differ only by float
noise across a half millisecond would not match; no run of this pipeline
makes such pairs.) Changes are "this run - the other run". Copies of a video
are compared once (`runs.load_run`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .columns import grouped, paired, scores
from .figures import Agreement, agreement
from .runs import HEADS, ReportError, Run, score_column

KEYS = ["video_id", "start_ms", "end_ms"]
_LIGHT = ["video_path", "video_id", "utterance", "start", "end", *(score_column(h) for h in HEADS)]


@dataclass(frozen=True)
class HeadChange:
    head: str
    agreement: Agreement  # this run's head against the other run's
    mean_change: float
    mean_abs_change: float


@dataclass(frozen=True)
class Comparison:
    matched: pa.Table  # one row per matched utterance: this run's scores, `other_<head>`, `change` (no text)
    only_here: int  # utterances of this run without a partner in the other
    only_other: int
    first_only_here: pa.Table  # the first `k` of them by path and time, with their text
    first_only_other: pa.Table
    heads: list[HeadChange]
    changes: pa.Table  # the matched utterances whose fused score changed most, with their text
    moved: pa.Table  # videos whose mean fused score moved most


def compare(this: Run, other: Run, k: int) -> Comparison:
    here, there = _keyed(this), _keyed(other)
    renamed = {score_column(h): f"other_{h}" for h in HEADS}
    there_scores = there.select([*KEYS, *renamed]).rename_columns([*KEYS, *renamed.values()])
    matched = here.join(there_scores, keys=KEYS, join_type="inner")
    matched = matched.append_column("change", pc.subtract(matched["score_fused"], matched["other_fused"]))
    only_here = here.join(there.select(KEYS), keys=KEYS, join_type="left anti")
    only_other = there.join(here.select(KEYS), keys=KEYS, join_type="left anti")
    return Comparison(
        matched=matched,
        only_here=only_here.num_rows,
        only_other=only_other.num_rows,
        first_only_here=_with_text(_by_time(only_here).slice(0, k), this),
        first_only_other=_with_text(_by_time(only_other).slice(0, k), other),
        heads=[_head_change(matched, h) for h in HEADS if _present(matched, h)],
        changes=_with_text(_largest(matched, "change", k), this),
        moved=_moved_videos(matched, k),
    )


def _keyed(run: Run) -> pa.Table:
    """The utterances without their text (joins of a million rows stay light) and with integer millisecond times;
    `row` points back into the run's table."""
    table = run.utterances.select(_LIGHT).append_column("row", pa.array(np.arange(run.utterances.num_rows)))
    for name, column in (("start_ms", "start"), ("end_ms", "end")):
        table = table.append_column(name, pc.cast(pc.round(pc.multiply(table[column], 1000.0)), pa.int64()))
    counts = grouped(table, KEYS, {"n": ("row", "count")})
    repeated = counts.filter(pc.greater(counts["n"], 1))
    if repeated.num_rows:
        first = repeated.slice(0, 1).to_pylist()[0]
        raise ReportError(
            f"{run.path}: video {first['video_id']} has {first['n']} utterances from {first['start_ms'] / 1000:.3f} "
            f"to {first['end_ms'] / 1000:.3f} s; the file is not one run"
        )
    return table


def _with_text(rows: pa.Table, run: Run) -> pa.Table:
    return rows.append_column("text", run.utterances["text"].take(rows["row"]))


def _present(matched: pa.Table, head: str) -> bool:
    """Both runs' models have this head (a head a model lacks is null everywhere)."""
    return all(matched[c].null_count < matched.num_rows for c in (score_column(head), f"other_{head}"))


def _head_change(matched: pa.Table, head: str) -> HeadChange:
    new, old = scores(matched, score_column(head)), scores(matched, f"other_{head}")
    known_new, known_old = paired(new, old)
    change = known_new - known_old
    nan = float("nan")
    return HeadChange(
        head,
        agreement(new, old),
        float(change.mean()) if change.size else nan,
        float(np.abs(change).mean()) if change.size else nan,
    )


def _by_time(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table, sort_keys=[("video_path", "ascending"), ("start", "ascending")]))


def _largest(table: pa.Table, column: str, k: int, ties: tuple[str, ...] = ("video_path", "start")) -> pa.Table:
    """The `k` rows with the largest |column|, ties by `ties`."""
    table = table.filter(pc.is_valid(table[column]))
    magnitude = pc.abs(table[column])
    keys = [("magnitude", "descending"), *((name, "ascending") for name in ties)]
    order = pc.sort_indices(table.append_column("magnitude", magnitude), sort_keys=keys)
    return table.take(order).slice(0, k)


def _moved_videos(matched: pa.Table, k: int) -> pa.Table:
    """Per video, over its matched utterances: the mean fused score in each run and how far it moved."""
    aggregations = {
        "video_path": ("video_path", "min"),
        "utterances": ("utterance", "count"),
        "other_mean": ("other_fused", "mean"),
        "this_mean": ("score_fused", "mean"),
    }
    means = grouped(matched.filter(pc.is_valid(matched["change"])), "video_id", aggregations)
    means = means.append_column("moved", pc.subtract(means["this_mean"], means["other_mean"]))
    return _largest(means, "moved", k, ties=("video_path",))

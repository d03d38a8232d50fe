"""An annotation as the report reads it: its utterances, its failures and its configuration.

The utterance table is read once, as Arrow columns; every figure of the
report is computed from these columns with pyarrow compute or numpy, never by
looping over rows in Python, so a million-utterance file is reported in
seconds. On reading:

* copies of one video (the same content under several paths: `mmml-annotate`
  writes its rows once per path) are kept once, under their first path, so
  that no utterance weighs twice in a mean, a histogram or a list; the number
  of extra paths is kept (`Run.copies`);
* NaN scores (a file written by another tool) become nulls, as the pipeline
  writes them, so every figure treats a missing score alike;
* two columns are derived: `seconds`, an utterance's length, and
  `disagreement`, |text score - audio score| (null where either head is).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from annotate.run import RunPaths
from pipelines.write import ERRORS, UTTERANCES, read_metadata

from .columns import grouped

HEADS = ("fused", "text", "audio")
_MEASURES = ["score_fused", "score_text", "score_audio", "asr_confidence"]


class ReportError(ValueError):
    """A report that cannot be made: the file is missing, not Parquet, or not an mmml-annotate output."""


@dataclass(frozen=True)
class Run:
    """One `mmml-annotate` output and what was written beside it."""

    path: Path
    utterances: pa.Table  # UTTERANCES columns + `seconds` + `disagreement`, copies once
    copies: int  # paths that repeat a video found under another path
    errors: pa.Table | None  # None when no `<stem>.errors.parquet` lies beside the output
    metadata: dict[str, Any]  # the run configuration (empty when the file carries none)


def load_run(path: Path) -> Run:
    """Read an annotation, refusing a file that is not one with a message naming the file and the problem."""
    if not path.is_file():
        raise ReportError(f"{path}: no such file")
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as err:
        raise ReportError(f"{path}: not a Parquet file ({err})") from err
    missing = [name for name in UTTERANCES.names if name not in schema.names]
    if missing:
        raise ReportError(f"{path}: not an mmml-annotate output, it lacks the columns {', '.join(missing)}")
    try:
        table = pq.read_table(path, columns=UTTERANCES.names).cast(UTTERANCES)
    except pa.ArrowException as err:
        raise ReportError(f"{path}: not an mmml-annotate output ({err})") from err
    for name in _MEASURES:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.field(index), _nan_as_null(table[name]))
    table, copies = _first_copies(table)
    table = table.append_column("seconds", pc.subtract(table["end"], table["start"]))
    table = table.append_column("disagreement", pc.abs(pc.subtract(table["score_text"], table["score_audio"])))
    try:
        metadata = read_metadata(path)
    except (KeyError, TypeError, ValueError):
        metadata = {}
    return Run(path, table, copies, _errors_beside(path), metadata)


def _nan_as_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)


def _first_copies(table: pa.Table) -> tuple[pa.Table, int]:
    """The rows of each video under its first path, and how many other paths repeated one."""
    first = grouped(table, "video_id", {"video_path": ("video_path", "min")})
    keys = table.select(["video_id", "video_path"]).append_column("row", pa.array(np.arange(table.num_rows)))
    kept = keys.join(first, keys=["video_id", "video_path"], join_type="inner")["row"]
    kept = kept.take(pc.sort_indices(kept))  # in the file's order
    copies = pc.count_distinct(table["video_path"]).as_py() - first.num_rows
    return table.take(kept), copies


def _errors_beside(path: Path) -> pa.Table | None:
    errors = RunPaths(path).errors
    if not errors.is_file():
        return None
    try:
        return pq.read_table(errors, columns=[f.name for f in ERRORS if f.name != "traceback"])
    except (OSError, pa.ArrowException, KeyError) as err:
        raise ReportError(f"{errors}: not an mmml-annotate errors file ({err})") from err


def score_column(head: str) -> str:
    return f"score_{head}"

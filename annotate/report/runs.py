"""An annotation as the report reads it: its utterances, its failures and its configuration.

The utterance table is read once, as Arrow columns, with one derived column
(`seconds`, an utterance's length); every figure of the report is computed
from these columns with pyarrow compute or numpy, never by looping over rows
in Python, so a million-utterance file is reported in seconds.

Two columns are derived on reading: `seconds`, an utterance's length, and
`disagreement`, |text score - audio score| (null where either head is).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from annotate.run import RunPaths
from pipelines.write import ERRORS, UTTERANCES, read_metadata

HEADS = ("fused", "text", "audio")


class ReportError(ValueError):
    """A report that cannot be made: the file is missing, not Parquet, or not an mmml-annotate output."""


@dataclass(frozen=True)
class Run:
    """One `mmml-annotate` output and what was written beside it."""

    path: Path
    utterances: pa.Table  # UTTERANCES columns + `seconds` + `disagreement`
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
    table = pq.read_table(path, columns=UTTERANCES.names).cast(UTTERANCES)
    table = table.append_column("seconds", pc.subtract(table["end"], table["start"]))
    table = table.append_column("disagreement", pc.abs(pc.subtract(table["score_text"], table["score_audio"])))
    try:
        metadata = read_metadata(path)
    except (KeyError, TypeError, ValueError):
        metadata = {}
    return Run(path, table, _errors_beside(path), metadata)


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

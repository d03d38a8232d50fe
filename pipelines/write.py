"""Stage 5: the output tables (README, "Output"), written atomically.

Plain Parquet with primitive column types only (strings, int32, float64,
float32), so pandas, polars, duckdb and Spark read it without conversion.
Missing values are nulls, not NaN: `asr_confidence` and `score_text` are
null for an utterance without words, a head a model variant lacks is null.

Every write goes through `mmml.atomic.replacing_file` (a temporary file in
the target's folder, flushed to disk, then renamed over the target), so a
reader or a resumed run sees either the old file or the whole new one,
never a torn one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mmml.atomic import replacing_file

UTTERANCES = pa.schema(
    [
        pa.field("video_path", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("utterance", pa.int32(), nullable=False),  # 0-based, in time order within the video
        pa.field("start", pa.float64(), nullable=False),  # seconds from the start of the audio stream
        pa.field("end", pa.float64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),  # "" when ASR heard no words
        pa.field("language", pa.string(), nullable=False),
        pa.field("language_probability", pa.float64(), nullable=False),
        pa.field("asr_confidence", pa.float64()),  # mean Whisper word probability; null without words
        pa.field("score_fused", pa.float32()),
        pa.field("score_text", pa.float32()),  # null without words
        pa.field("score_audio", pa.float32()),
        pa.field("model_id", pa.string(), nullable=False),  # MMML checkpoint id (content hash)
        pa.field("asr_model", pa.string(), nullable=False),
    ]
)

ERRORS = pa.schema(
    [
        pa.field("video_path", pa.string(), nullable=False),
        pa.field("video_id", pa.string()),  # null when the file could not even be read
        pa.field("stage", pa.string(), nullable=False),  # discover | demux | asr | segment | score
        pa.field("error_type", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("traceback", pa.string()),  # where an unexpected exception (a bug, not a bad file) was raised
    ]
)

METADATA_KEY = b"mmml_annotate"
_ROW_GROUP = 65_536


def utterance_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    return _checked(pa.Table.from_pylist([_nulls_for_nan(r) for r in rows], schema=UTTERANCES))


def error_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    return _checked(pa.Table.from_pylist(list(rows), schema=ERRORS))


def _checked(table: pa.Table) -> pa.Table:
    """Arrow does not enforce `nullable=False` when building a table: a null there is a bug upstream."""
    for field in table.schema:
        if not field.nullable and table.column(field.name).null_count:
            raise ValueError(f"column {field.name!r} must not be null")
    return table


def with_metadata(table: pa.Table, metadata: dict[str, Any]) -> pa.Table:
    """Attach the run configuration and tool version as Parquet key-value metadata (one JSON value)."""
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True, default=str)})


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads(pq.read_schema(path).metadata[METADATA_KEY])


def unread_words(table: pa.Table, reads: Iterable[str]) -> int:
    """Utterances with words in a language the text encoder does not read (`pipelines.score.readable_words`):
    their text score is null and their fused score comes from the voice alone."""
    heard = pc.and_(pc.not_equal(table["text"], ""), pc.not_equal(table["language"], ""))
    unread = pc.and_(heard, pc.invert(pc.is_in(table["language"], pa.array(list(reads), pa.string()))))
    return int(pc.sum(unread).as_py() or 0)


def write_atomic(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write `table` to `path` so that `path` only ever holds a complete file."""
    with replacing_file(path) as handle:
        pq.write_table(table, handle, compression="zstd")
    return Path(path)


def write_concatenated(tables: Iterable[pa.Table], schema: pa.Schema, path: str | os.PathLike[str]) -> Path:
    """Stream many small tables into one Parquet file at `path` (atomically), in row groups of a sensible size.

    Memory holds one row group, not the whole output, however many videos were annotated.
    """
    pending: list[pa.Table] = []
    with replacing_file(path) as handle, pq.ParquetWriter(handle, schema, compression="zstd") as writer:
        for table in tables:
            pending.append(table.cast(schema))
            if sum(t.num_rows for t in pending) >= _ROW_GROUP:
                writer.write_table(pa.concat_tables(pending))
                pending = []
        writer.write_table(pa.concat_tables(pending) if pending else schema.empty_table())
    return Path(path)


def _nulls_for_nan(row: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}

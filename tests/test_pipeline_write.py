"""Output tables: the README's schema, nulls for missing values, metadata, atomic replacement."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.write import (
    ERRORS,
    UTTERANCES,
    error_table,
    read_metadata,
    utterance_table,
    with_metadata,
    write_atomic,
    write_concatenated,
)

ROW = {
    "video_path": "/v/a.mp4",
    "video_id": "0123456789abcdef",
    "utterance": 0,
    "start": 0.5,
    "end": 2.0,
    "text": "Hi.",
    "language": "en",
    "language_probability": 0.98,
    "asr_confidence": 0.9,
    "score_fused": 0.1,
    "score_text": 0.2,
    "score_audio": -0.3,
    "model_id": "m" * 16,
    "asr_model": "packaged:whisper-tiny.en",
}


def test_nan_becomes_null_so_every_reader_sees_a_missing_value() -> None:
    table = utterance_table([{**ROW, "text": "", "asr_confidence": float("nan"), "score_text": float("nan")}])
    assert table.column("score_text").null_count == table.column("asr_confidence").null_count == 1
    assert table.schema == UTTERANCES


def test_required_values_are_enforced() -> None:
    with pytest.raises(ValueError, match="video_id"):
        utterance_table([{**ROW, "video_id": None}])


def test_metadata_round_trip(tmp_path: Path) -> None:
    path = write_atomic(
        with_metadata(utterance_table([ROW]), {"version": "1", "config": {"a": [1, 2]}}), tmp_path / "o.parquet"
    )
    assert read_metadata(path) == {"version": "1", "config": {"a": [1, 2]}}
    assert pq.read_table(path).to_pylist()[0]["text"] == "Hi."


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = write_atomic(error_table([]), tmp_path / "e.parquet")
    with pytest.raises(AttributeError):
        write_atomic("not a table", path)  # type: ignore[arg-type]
    assert pq.read_table(path).schema == ERRORS
    assert os.listdir(tmp_path) == ["e.parquet"]  # no partial file left behind


def test_concatenation_streams_parts_into_one_file(tmp_path: Path) -> None:
    parts = (utterance_table([{**ROW, "utterance": i}]) for i in range(5))
    path = write_concatenated(parts, with_metadata(UTTERANCES.empty_table(), {"k": 1}).schema, tmp_path / "all.parquet")
    assert pq.read_table(path).column("utterance").to_pylist() == [0, 1, 2, 3, 4]
    assert read_metadata(path) == {"k": 1}
    assert pq.read_table(write_concatenated([], ERRORS, tmp_path / "none.parquet")).num_rows == 0

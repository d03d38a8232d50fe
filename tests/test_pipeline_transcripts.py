"""Stored utterances of an earlier output: the wanted videos only, in time order, each utterance once."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.transcripts import TranscriptsError, stored_settings, stored_utterances, utterance_fields
from pipelines.write import utterance_table, with_metadata, write_atomic

IDENTITY = {"model_id": "m", "score": {}, "asr": {"model": "tiny"}, "segment": {"max_seconds": 15.0}}


def _row(path: str, video_id: str, utterance: int, start: float, text: str) -> dict:
    return {
        "video_path": path,
        "video_id": video_id,
        "utterance": utterance,
        "start": start,
        "end": start + 1,
        "text": text,
        "language": "en",
        "language_probability": 0.9,
        "asr_confidence": 0.5 if text else None,
        "score_fused": 0.0,
        "score_text": 0.0,
        "score_audio": 0.0,
        "model_id": "m",
        "asr_model": "tiny",
    }


@pytest.fixture
def earlier(tmp_path):
    rows = [
        _row("/b.mp4", "b", 1, 3.0, "second"),
        _row("/b.mp4", "b", 0, 1.0, "first"),
        _row("/copy of b.mp4", "b", 0, 1.0, "first"),
        _row("/copy of b.mp4", "b", 1, 3.0, "second"),
        _row("/a.mp4", "a", 0, 0.0, ""),
        _row("/c.mp4", "c", 0, 2.0, "unwanted"),
    ]
    path = tmp_path / "earlier.parquet"
    write_atomic(with_metadata(utterance_table(rows), {"identity": IDENTITY}), path)
    return path


def test_wanted_videos_come_back_in_time_order_without_copies(earlier) -> None:
    stored = stored_utterances(earlier, {"a", "b", "not there"})
    assert sorted(stored) == ["a", "b"]
    b = utterance_fields(stored["b"])
    assert [(u["start"], u["text"]) for u in b] == [(1.0, "first"), (3.0, "second")]
    assert set(b[0]) == {"start", "end", "text", "language", "language_probability", "asr_confidence", "asr_model"}
    (a,) = utterance_fields(stored["a"])
    assert a["text"] == "" and a["asr_confidence"] != a["asr_confidence"]  # null in Parquet, NaN for the stage
    assert json.loads(stored["b"])[0]["asr_confidence"] == 0.5
    assert stored_utterances(earlier, set()) == {}


def test_settings_come_from_the_metadata_and_other_files_are_named(earlier, tmp_path) -> None:
    assert stored_settings(earlier) == {"asr": {"model": "tiny"}, "segment": {"max_seconds": 15.0}}
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1]}), plain)
    for call in (lambda: stored_settings(plain), lambda: stored_utterances(plain, {"a"})):
        with pytest.raises(TranscriptsError, match=f"{plain}: not an mmml-annotate output"):
            call()
